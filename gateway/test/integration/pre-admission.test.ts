/**
 * Pre-admission (gateway/src/limits/limiter.ts): busy (key, address) pairs with large limits are
 * admitted from tickets Redis granted ahead of time, so the request does not wait for Redis — and
 * yet nothing is admitted that Redis did not admit, unused tickets are handed back (requests,
 * tokens, concurrency slots), refused prefetches are not violations, and a dropped connection
 * discards them. Real Redis; several Limiters stand for several replicas.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { Redis } from "ioredis";
import { testEnv } from "@crosslogic/testenv/test-env";
import { Limiter, TICKET_MAX_AGE_MS, type KeyLimits, type LimitSettings } from "../../src/limits/limiter.ts";
import { suffix } from "../fixtures.ts";
import { eventually } from "../harness.ts";

const env = testEnv();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("pre-admission", () => {
  const prefix = `gwpre:${suffix()}:`;
  const clients: Redis[] = [];
  const limiters: Limiter[] = [];
  const settings = (over: Partial<LimitSettings> = {}): LimitSettings => ({
    globalRpm: 0, clientRpm: 0, clientGenerationRpm: 0, leaseTtlMs: 30_000, violationWindowMs: 60_000, delayAfter: 1000, blockAfter: 1000,
    maxDelayMs: 0, blockMs: 60_000, failurePolicy: "fail-closed", keyPrefix: prefix, ...over,
  });
  /** A limiter on its own connection, counting the script calls it sends. */
  async function replica(over: Partial<LimitSettings> = {}): Promise<{ limiter: Limiter; redis: Redis; calls: () => number; tickets: Record<string, number> }> {
    const redis = new Redis(env.REDIS_URL, { enableAutoPipelining: false, maxRetriesPerRequest: 0, enableOfflineQueue: false, lazyConnect: true });
    await redis.connect();
    let calls = 0;
    const send = redis.sendCommand.bind(redis);
    redis.sendCommand = ((cmd: { name: string }) => { if (cmd.name === "evalsha" || cmd.name === "eval") calls++; return send(cmd as never); }) as typeof redis.sendCommand;
    const tickets: Record<string, number> = { used: 0, refunded: 0, discarded: 0 };
    const limiter = new Limiter(redis, settings(over), { redisFailure: () => undefined, tickets: (outcome, n) => { tickets[outcome]! += n; } });
    clients.push(redis);
    limiters.push(limiter);
    return { limiter, redis, calls: () => calls, tickets };
  }
  const key = (over: Partial<KeyLimits> = {}): KeyLimits => ({
    hash: `h${suffix()}`, tenant: `t${suffix()}`, environment: `e${suffix()}`, tenantRpm: 0, environmentRpm: 0, rpm: 1_000_000,
    tenantTpm: 0, environmentTpm: 0, tpm: 0, concurrency: 0, reserve: 0, leaseId: "", ...over,
  });
  let n = 0;
  const admit = (l: Limiter, k: KeyLimits, client = `a-${k.hash}`) => l.admit({ client, generation: true, key: { ...k, leaseId: `req${++n}` } });
  const inspector = new Redis(env.REDIS_URL);

  after(async () => {
    for (const l of limiters) l.close();
    await sleep(50);
    for (const c of clients) c.disconnect();
    const keys = await inspector.keys(`${prefix}*`);
    if (keys.length) await inspector.del(...keys);
    inspector.disconnect();
  });

  it("admits a steady stream mostly from tickets: far fewer script calls than requests", async () => {
    const { limiter, calls, tickets } = await replica();
    const k = key();
    for (let i = 0; i < 500; i++) assert.equal((await admit(limiter, k)).admitted, true);
    // One call admits a whole batch of tickets; without pre-admission it would be one call per request.
    assert.ok(calls() <= 60, `${calls()} script calls for 500 requests`);
    assert.ok(tickets.used! >= 450, `${tickets.used} of 500 admitted from tickets`);
  });

  it("never admits more than Redis granted across replicas, and hands back what it did not use", async () => {
    const L = 1000; // a replica may hold 1000/50 = 20 tickets
    const k = key({ rpm: L });
    const reps = await Promise.all([replica(), replica(), replica()]);
    const t0 = Date.now();
    let admitted = 0;
    // Ten times the limit, from three replicas at once, in waves (pools grow, refill, run dry).
    await Promise.all(reps.map(async ({ limiter }) => {
      for (let wave = 0; wave < 50; wave++) {
        const ds = await Promise.all(Array.from({ length: 67 }, () => admit(limiter, k)));
        admitted += ds.filter((d) => d.admitted).length;
      }
    }));
    const refill = Math.ceil((L * (Date.now() - t0)) / 60_000) + 1;
    assert.ok(admitted <= L + refill, `admitted ${admitted} of ${10 * L} with a limit of ${L} (+${refill} refilled)`);
    assert.ok(admitted >= L - 3 * 20, `admitted ${admitted}: no more than the replicas' tickets may go unused`);
    // Stop: what the replicas still hold goes back to the key's bucket.
    const bucket = `${prefix}{gw}k:${k.hash}`;
    const before = Number(await inspector.hget(bucket, "t"));
    await eventually(() => reps.every((r) => r.limiter.ticketsHeld === 0), TICKET_MAX_AGE_MS * 8, 20);
    await sleep(100);
    const afterRefund = Number(await inspector.hget(bucket, "t"));
    assert.ok(afterRefund >= before, `the bucket got its unused requests back (${before} → ${afterRefund})`);
  });

  it("refunds unused tickets' requests, tokens and concurrency slots", async () => {
    const { limiter, tickets } = await replica();
    const k = key({ rpm: 100_000, tpm: 1_000_000, concurrency: 400, reserve: 100 });
    const leases = [];
    for (let i = 0; i < 40; i++) {
      const d = await admit(limiter, k);
      assert.equal(d.admitted, true);
      leases.push(d.lease!);
    }
    assert.ok(limiter.ticketsHeld > 0, "the pool holds pre-admitted requests");
    for (const l of leases) await limiter.settle(l, 100); // each used exactly its reservation
    const set = `${prefix}{gw}c:${k.hash}`;
    const bucket = `${prefix}{gw}k:${k.hash}`;
    // Once handed back: no slot left taken, and the buckets hold what 40 requests of 100 tokens leave.
    await eventually(async () => limiter.ticketsHeld === 0 && (await inspector.zcard(set)) === 0, TICKET_MAX_AGE_MS * 8, 20);
    await sleep(100);
    const [t, kt] = (await inspector.hmget(bucket, "t", "kt")).map(Number);
    assert.ok(t! >= 100_000 - 40 - 1 && t! <= 100_000, `requests left ${t}`);
    assert.ok(kt! >= 1_000_000 - 40 * 100 - 1 && kt! <= 1_000_000, `tokens left ${kt}`);
    assert.ok(tickets.refunded! > 0 && tickets.used! + tickets.refunded! >= 40, `counted: ${JSON.stringify(tickets)}`);
  });

  it("does not count a refused prefetch as a violation: only the caller's own refusals count", async () => {
    const { limiter } = await replica({ blockAfter: 5 });
    const k = key({ rpm: 100 }); // 2 tickets at most
    let refused = 0;
    for (let i = 0; i < 103 && refused < 3; i++) if (!(await admit(limiter, k)).admitted) refused++;
    assert.equal(refused, 3);
    const [v, b] = await inspector.hmget(`${prefix}{gw}k:${k.hash}`, "v", "b");
    assert.equal(Number(v), 3, "three violations: the requests that were refused, not the prefetches");
    assert.equal(b, null, "not blocked");
  });

  it("decides the caller's own request before the prefetch that rides with it: the last unit goes to the caller", async () => {
    const { limiter, tickets } = await replica({ blockAfter: 5 });
    const k = key({ rpm: 200 }); // 4 tickets at most
    for (let i = 0; i < 10; i++) assert.equal((await admit(limiter, k)).admitted, true);
    await eventually(() => limiter.ticketsHeld > 0, 1000, 5); // the last top-up arrived
    await eventually(() => limiter.ticketsHeld === 0 && tickets.refunded! > 0, TICKET_MAX_AGE_MS * 8, 20); // handed back; the pool still counts as busy
    await sleep(50);
    // One request's worth left in the key's bucket.
    const [sec, usec] = await inspector.time();
    await inspector.hset(`${prefix}{gw}k:${k.hash}`, "t", 1.2, "ts", Number(sec) * 1000 + Math.floor(Number(usec) / 1000));
    const d = await admit(limiter, k);
    assert.equal(d.admitted, true, `refused (${d.layer}): the prefetch took the last request`);
    assert.equal(await inspector.hget(`${prefix}{gw}k:${k.hash}`, "v"), null, "no violation recorded");
  });

  it("small limits stay exact, one Redis decision per request", async () => {
    const { limiter, calls } = await replica();
    const k = key({ rpm: 60 }); // 60/50 < 2: no tickets
    const before = calls();
    const ds = [];
    for (let i = 0; i < 62; i++) ds.push(await admit(limiter, k));
    assert.deepEqual(ds.map((d) => d.admitted).lastIndexOf(true), 59);
    assert.equal(ds.filter((d) => d.admitted).length, 60);
    assert.equal(calls() - before, 62);
    assert.equal(limiter.ticketsHeld, 0);
    // The seed's default concurrency (10): an unused ticket would hold a slot others could need.
    const c = key({ concurrency: 10 });
    const at = calls();
    for (let i = 0; i < 30; i++) { const d = await admit(limiter, c); assert.equal(d.admitted, true); await limiter.settle(d.lease!, 0); }
    assert.equal(calls() - at, 60, "one admission and one settle call per request");
    assert.equal(limiter.ticketsHeld, 0);
  });

  it("holds a key to new limits at once when its config changes, and hands back what it held", async () => {
    const { limiter, calls, tickets } = await replica();
    const k = key();
    for (let i = 0; i < 50; i++) await admit(limiter, k);
    assert.ok(limiter.ticketsHeld > 0);
    // Lowered to 60/min: decided by Redis, one by one, against the new limit.
    const before = calls();
    const d = await admit(limiter, { ...k, rpm: 60 });
    assert.equal(d.limit, 60);
    assert.ok(calls() > before, "asked Redis");
    await eventually(() => limiter.ticketsHeld === 0 && tickets.refunded! > 0, TICKET_MAX_AGE_MS * 8, 20);
  });

  it("discards its tickets when the Redis connection drops: fail-closed refuses at once", async () => {
    const { limiter, redis, tickets } = await replica();
    const k = key();
    for (let i = 0; i < 50; i++) await admit(limiter, k);
    assert.ok(limiter.ticketsHeld > 0);
    redis.disconnect();
    await eventually(() => redis.status !== "ready", 1000, 5);
    const d = await admit(limiter, k);
    assert.equal(d.admitted, false);
    assert.equal(d.degraded, true);
    assert.equal(limiter.ticketsHeld, 0);
    assert.ok(tickets.discarded! > 0);
  });
});

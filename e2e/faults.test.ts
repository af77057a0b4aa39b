/**
 * Fault injection against real processes, each fault with the policy the gateway documents
 * (gateway/README.md) and a test that fails when the policy does not hold:
 * - Redis frozen (SIGSTOP) and killed under load: fail-closed answers 503 `rate_limiter_unavailable`
 *   with Retry-After, fail-open admits; nothing waits longer than REDIS_TIMEOUT_MS plus a margin;
 *   service recovers when Redis is back (a restarted Redis on the same port).
 * - PostgreSQL down: inference continues, usage is buffered, and after PostgreSQL returns every
 *   record is there exactly once.
 * - The API server restarted while keys are being created: the gateway keeps serving its last good
 *   config throughout, and the operator converges (every key usable).
 * - Upstream model servers failing, resetting and hanging: 502/504 with the security headers, and
 *   the key's concurrency slots return to zero.
 * - A gateway replica SIGKILLed mid-stream: the client sees the stream end with an error (no hang),
 *   the other replica serves, and the dead replica's concurrency lease expires (LEASE_TTL_MS).
 * - Clock skew between replicas: limits run on Redis TIME, so two replicas whose wall clocks are
 *   four minutes apart still admit at most L.
 * Redis and PostgreSQL here are this file's own (startRedis/startPostgres), the API server too.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { Pool, request } from "undici";
import { createTestDatabase, startControlPlane, startPostgres, startRedis, type ControlPlane, type Service } from "@crosslogic/testenv";
import { killGroup, type ManagedProcess } from "@crosslogic/testenv/process";
import { migrateDatabase, repoRoot, startProduct, type Product } from "@crosslogic/testenv/product";
import { testEnv } from "@crosslogic/testenv/test-env";
import { b64, kube, startLoopbackModelServer } from "./support.ts";
import { makeDoc, makeKey, responseProblems, SEED_HEADERS, sleep, startGatewayProcess, startGatewayProcesses, suffix, until, writeDoc, type GatewayProcess, type TestKey } from "./support/gateway.ts";
import { restartPostgres } from "./support/postgres.ts";

const env = testEnv();
const id = suffix(3);
const logDir = fs.mkdtempSync(path.join(os.tmpdir(), `e2e-faults-${id}-`));
const ADMIN_TOKEN = randomBytes(32).toString("base64url");
const CHAT = JSON.stringify({ model: "llama-3-8b", messages: [{ role: "user", content: "hi" }], max_tokens: 4 });
const json = { "content-type": "application/json" };

interface Shot { status: number; ms: number; headers: Record<string, string | string[] | undefined>; body: string }

async function shoot(base: string, key: string, o: { path?: string; body?: string; timeoutMs?: number } = {}): Promise<Shot> {
  const t0 = performance.now();
  const r = await request(`${base}${o.path ?? "/v1/chat/completions"}`, {
    method: o.body === undefined && o.path === "/v1/models" ? "GET" : "POST", headers: { ...json, authorization: `Bearer ${key}` },
    body: o.path === "/v1/models" ? null : (o.body ?? CHAT), headersTimeout: o.timeoutMs ?? 15_000, bodyTimeout: o.timeoutMs ?? 15_000,
  });
  const body = await r.body.text();
  return { status: r.statusCode, ms: performance.now() - t0, headers: r.headers, body };
}

/** `concurrency` loops sending chat requests for `ms` milliseconds through one keep-alive pool. */
async function load(base: string, key: string, ms: number, concurrency = 6): Promise<Shot[]> {
  const pool = new Pool(base, { connections: concurrency });
  const shots: Shot[] = [];
  const end = Date.now() + ms;
  try {
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (Date.now() < end) {
        const t0 = performance.now();
        const r = await pool.request({ path: "/v1/chat/completions", method: "POST", headers: { ...json, authorization: `Bearer ${key}` }, body: CHAT, headersTimeout: 15_000, bodyTimeout: 15_000 });
        const body = await r.body.text();
        shots.push({ status: r.statusCode, ms: performance.now() - t0, headers: r.headers, body });
      }
    }));
  } finally { await pool.close(); }
  return shots;
}

const summary = (shots: Shot[]) => {
  const by = new Map<number, number>();
  for (const s of shots) by.set(s.status, (by.get(s.status) ?? 0) + 1);
  const max = Math.max(0, ...shots.map((s) => s.ms));
  return `${shots.length} requests, ${[...by].map(([k, v]) => `${k}×${v}`).join(" ")}, slowest ${max.toFixed(0)} ms`;
};
const figures: string[] = [];

describe("fault injection", { timeout: 300_000 }, () => {
  let model: { url: string; process: ManagedProcess };
  const control = async (patch: object) => { const r = await fetch(`${model.url}/_control`, { method: "POST", body: JSON.stringify(patch) }); assert.ok(r.ok); await r.body?.cancel(); };

  before(async () => { model = await startLoopbackModelServer(`faults-${id}`, ["llama-3-8b", "bge-small"], logDir); });
  after(async () => {
    for (const f of figures) console.log(`faults: ${f}`);
    await model?.process.stop();
    fs.rmSync(logDir, { recursive: true, force: true });
  });

  describe("Redis frozen and killed under load", () => {
    const TIMEOUT = 200;
    const MARGIN = 1000;
    let redis: Service;
    let restarted: Service | undefined;
    let closed: GatewayProcess;
    let open: GatewayProcess;
    const key = makeKey();
    const cfg = fs.mkdtempSync(path.join(os.tmpdir(), `e2e-faults-redis-${id}-`));

    before(async () => {
      redis = await startRedis({ logDir });
      writeDoc(cfg, "t", makeDoc({ tenant: `fr-${id}`, modelUrl: model.url, keys: [key] }));
      const common = { logDir, configDir: cfg, redisUrl: redis.url, adminToken: ADMIN_TOKEN, redisKeyPrefix: `e2e-fr-${id}:` };
      [closed, open] = await startGatewayProcesses(
        { ...common, name: "gateway-fail-closed", env: { REDIS_FAILURE_POLICY: "fail-closed", REDIS_TIMEOUT_MS: String(TIMEOUT) } },
        { ...common, name: "gateway-fail-open", redisKeyPrefix: `e2e-fo-${id}:`, env: { REDIS_FAILURE_POLICY: "fail-open", REDIS_TIMEOUT_MS: String(TIMEOUT) } },
      ) as [GatewayProcess, GatewayProcess];
      await until("both gateways to serve", async () => (await shoot(closed.url, key.key)).status === 200 && (await shoot(open.url, key.key)).status === 200, 15_000);
    });
    after(async () => {
      killGroup(redis.process.pid, "SIGCONT");
      await closed?.stop();
      await open?.stop();
      await redis?.stop();
      await restarted?.stop();
      fs.rmSync(cfg, { recursive: true, force: true });
    });

    /** The documented policy for one gateway during an outage. */
    function holds(shots: Shot[], policy: "fail-closed" | "fail-open"): string[] {
      const p: string[] = [];
      for (const s of shots) {
        if (s.ms > TIMEOUT + MARGIN) p.push(`a request took ${s.ms.toFixed(0)} ms`);
        if (policy === "fail-open" && s.status !== 200) p.push(`fail-open answered ${s.status}`);
        if (policy === "fail-closed" && s.status !== 200) {
          if (s.status !== 503) p.push(`fail-closed answered ${s.status}`);
          else {
            if (JSON.parse(s.body).error?.code !== "rate_limiter_unavailable") p.push(`503 code ${s.body.slice(0, 100)}`);
            if (s.headers["retry-after"] !== "1") p.push(`Retry-After ${String(s.headers["retry-after"])}`);
            p.push(...responseProblems(s.status, s.headers, s.body, { allow5xx: true }));
          }
        }
      }
      return [...new Set(p)].slice(0, 10);
    }

    it("frozen (SIGSTOP): fail-closed refuses with 503 + Retry-After, fail-open admits, nothing hangs; recovers on SIGCONT", async () => {
      killGroup(redis.process.pid, "SIGSTOP");
      try {
        const [c, o] = await Promise.all([load(closed.url, key.key, 2500), load(open.url, key.key, 2500)]);
        figures.push(`Redis frozen: fail-closed ${summary(c)}; fail-open ${summary(o)}`);
        assert.deepEqual(holds(c, "fail-closed"), []);
        assert.deepEqual(holds(o, "fail-open"), []);
        assert.ok(c.filter((s) => s.status === 503).length > c.length / 2, "fail-closed refused while Redis was frozen");
        const ready = await fetch(`${closed.adminUrl}/readyz`);
        await ready.body?.cancel();
      } finally {
        killGroup(redis.process.pid, "SIGCONT");
      }
      const t0 = Date.now();
      await until("fail-closed to admit again", async () => (await shoot(closed.url, key.key)).status === 200, 10_000, 50);
      figures.push(`Redis thawed: fail-closed admits again after ${Date.now() - t0} ms`);
    });

    it("killed (SIGKILL): same policy, /readyz says not ready; a restarted Redis on the same port brings admission back", async () => {
      killGroup(redis.process.pid, "SIGKILL");
      await until("Redis to be gone", () => redis.process.exited(), 5000, 20);
      const [c, o] = await Promise.all([load(closed.url, key.key, 2000), load(open.url, key.key, 2000)]);
      figures.push(`Redis killed: fail-closed ${summary(c)}; fail-open ${summary(o)}`);
      assert.deepEqual(holds(c, "fail-closed"), []);
      assert.deepEqual(holds(o, "fail-open"), []);
      assert.ok(c.every((s) => s.status === 503), "fail-closed refuses every request while Redis is down");
      const ready = await fetch(`${closed.adminUrl}/readyz`);
      await ready.body?.cancel();
      assert.equal(ready.status, 503, "not ready without Redis");

      restarted = await startRedis({ logDir, port: redis.port, dir: fs.mkdtempSync(path.join(os.tmpdir(), "crosslogic-redis-")) });
      const t0 = Date.now();
      await until("fail-closed to admit after the restart", async () => (await shoot(closed.url, key.key)).status === 200, 15_000, 100);
      figures.push(`Redis restarted: fail-closed admits again after ${Date.now() - t0} ms`);
      await until("/readyz", async () => (await fetch(`${closed.adminUrl}/readyz`)).status === 200, 10_000);
      const after = await load(closed.url, key.key, 500, 3);
      assert.ok(after.every((s) => s.status === 200), summary(after));
    });
  });

  describe("PostgreSQL down", () => {
    let pgs: Service;
    let again: ManagedProcess | undefined;
    let gw: GatewayProcess;
    const key = makeKey();
    const cfg = fs.mkdtempSync(path.join(os.tmpdir(), `e2e-faults-pg-${id}-`));

    before(async () => {
      pgs = await startPostgres({ logDir });
      await migrateDatabase(pgs.url);
      writeDoc(cfg, "t", makeDoc({ tenant: `fp-${id}`, modelUrl: model.url, keys: [key] }));
      gw = await startGatewayProcess({
        name: "gateway-pg", logDir, configDir: cfg, redisUrl: env.REDIS_URL, databaseUrl: pgs.url, adminToken: ADMIN_TOKEN, redisKeyPrefix: `e2e-fp-${id}:`,
        env: { USAGE_FLUSH_INTERVAL_MS: "100" },
      });
    });
    after(async () => {
      await gw?.stop();
      await again?.stop(10_000);
      await pgs?.stop();
      fs.rmSync(cfg, { recursive: true, force: true });
    });

    it("inference continues while it is down; after it returns every usage record is there exactly once", async () => {
      const ids: string[] = [];
      const send = async (n: number) => {
        for (let i = 0; i < n; i++) {
          const s = await shoot(gw.url, key.key);
          assert.equal(s.status, 200, `inference answered ${s.status}: ${s.body.slice(0, 120)}`);
          ids.push(String(s.headers["x-request-id"]));
        }
      };
      await send(20);
      const db = () => new pg.Client({ connectionString: pgs.url, connectionTimeoutMillis: 2000 });
      const c1 = db();
      await c1.connect();
      await until("the first records", async () => Number((await c1.query(`select count(*) from "UsageRecord" where "requestId" = any($1)`, [ids])).rows[0].count) === 20, 10_000);
      await c1.end();

      await pgs.process.stop(10_000);
      const t0 = performance.now();
      await send(60);
      figures.push(`PostgreSQL down: 60 requests served in ${(performance.now() - t0).toFixed(0)} ms, all 200`);
      await sleep(1500); // failed flushes, with backoff

      again = await restartPostgres(pgs, logDir);
      const t1 = Date.now();
      const c2 = db();
      await c2.connect();
      try {
        const got = await until("every record after PostgreSQL returned", async () => {
          const r = await c2.query<{ n: string; d: string }>(`select count(*) as n, count(distinct "requestId") as d from "UsageRecord" where "requestId" = any($1)`, [ids]);
          return Number(r.rows[0]!.n) >= ids.length ? r.rows[0] : undefined;
        }, 60_000, 250);
        figures.push(`PostgreSQL back: all ${ids.length} usage records written ${Date.now() - t1} ms after it returned`);
        assert.equal(Number(got.d), ids.length, "0 records lost");
        assert.equal(Number(got.n), ids.length, "0 records duplicated");
        const total = await c2.query(`select count(*) from "UsageRecord"`);
        assert.equal(Number(total.rows[0].count), ids.length, "no record other than these requests'");
      } finally { await c2.end(); }
    });
  });

  describe("API server restarted during churn", () => {
    let cp: ControlPlane;
    let product: Product;
    let db: { url: string; drop(): Promise<void> };
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `e2e-faults-cp-${id}-`));
    const tenant = `churn-${id}`;
    const ns = `tenant-${tenant}`;
    const host = `churn-${id}.e2e.test`;
    const cr = (kind: string, name: string, namespace: string | undefined, spec: object) => ({ apiVersion: "crosslogic.ai/v1alpha1", kind, metadata: { name, ...(namespace ? { namespace } : {}) }, spec });

    before(async () => {
      cp = await startControlPlane({ dir, logDir: path.join(logDir, "cp"), certManagerCrds: false });
      db = await createTestDatabase(env.DATABASE_URL, "faults_churn");
      product = await startProduct({
        kubeconfig: cp.kubeconfig, kubectl: path.join(cp.binDir, "kubectl"), databaseUrl: db.url, redisUrl: env.REDIS_URL, adminToken: ADMIN_TOKEN,
        systemNamespace: `sys-${id}`, logDir, redisKeyPrefix: `e2e-churn-${id}:`,
      });
    });
    after(async () => {
      await product?.stop();
      await cp?.stop();
      await db?.drop().catch(() => {});
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it("the gateway keeps serving its last good config while the API server is down; the operator converges", async () => {
      const k = kube(cp.kubeconfig, path.join(cp.binDir, "kubectl"));
      const apply = (objs: object[]) => k.ok(["apply", "-f", "-"], objs.map((o) => JSON.stringify(o)).join("\n---\n"));
      await apply([cr("Tenant", tenant, undefined, { displayName: "Churn", plan: "pro", members: [] })]);
      await until("the tenant namespace", async () => (await k.run(["get", "namespace", ns])).code === 0, 30_000, 250);
      await apply([cr("Environment", "prod", ns, { tier: "production", hostnames: [host], routes: [{ model: "llama-3-8b", backend: { url: model.url } }] }), cr("ApiKey", "k0", ns, { environment: "prod" })]);
      const keyOf = async (name: string) => {
        const ak = await k.json<{ status?: { phase?: string; secretName?: string } }>(["get", "apikey", name, "-n", ns]);
        if (ak.status?.phase !== "Active" || !ak.status.secretName) return undefined;
        return b64((await k.json<{ data: { key: string } }>(["get", "secret", ak.status.secretName, "-n", ns])).data.key);
      };
      const k0 = await until("k0", () => keyOf("k0"), 60_000, 250);
      const hostShot = async (key: string) => {
        const r = await request(`${product.gatewayUrl}/v1/chat/completions`, { method: "POST", headers: { ...json, host, authorization: `Bearer ${key}` }, body: CHAT });
        await r.body.dump();
        return r.statusCode;
      };
      await until("k0 usable at the gateway", async () => (await hostShot(k0)) === 200, 30_000, 200);

      // Traffic with k0 for the whole churn; keys created before, during and after the restart.
      let stop = false;
      const statuses: number[] = [];
      const traffic = (async () => { while (!stop) { statuses.push(await hostShot(k0).catch(() => 0)); await sleep(50); } })();
      const names = Array.from({ length: 12 }, (_, i) => `churn-${i}`);
      await apply(names.slice(0, 4).map((n) => cr("ApiKey", n, ns, { environment: "prod" })));
      const restart = cp.restartApiServer(3000);
      await sleep(500);
      for (const n of names.slice(4, 8)) {
        // kubectl fails while the API server is down: retried until it is back.
        await until(`create ${n}`, async () => (await k.run(["apply", "-f", "-"], JSON.stringify(cr("ApiKey", n, ns, { environment: "prod" })))).code === 0, 60_000, 300);
      }
      await restart;
      await apply(names.slice(8).map((n) => cr("ApiKey", n, ns, { environment: "prod" })));
      const t0 = Date.now();
      const keys = await Promise.all(names.map((n) => until(`ApiKey ${n} Active`, () => keyOf(n), 90_000, 500)));
      for (const key of keys) await until("each new key usable at the gateway", async () => (await hostShot(key)) === 200, 30_000, 200);
      figures.push(`API server restart: all ${names.length} keys usable ${Date.now() - t0} ms after the restart finished`);
      stop = true;
      await traffic;
      const bad = statuses.filter((s) => s !== 200);
      figures.push(`API server restart: ${statuses.length} requests with an existing key during the churn, ${bad.length} not 200`);
      assert.deepEqual(bad, [], "the gateway kept serving its last good config");
      const ready = await fetch(`${product.operatorUrl}/readyz`);
      assert.equal(ready.status, 200, "the operator is ready after the restart");
      assert.ok(!product.operator.exited() && !product.gateway.exited());
    });
  });

  describe("upstream failures and a replica killed mid-stream", () => {
    const cfg = fs.mkdtempSync(path.join(os.tmpdir(), `e2e-faults-up-${id}-`));
    const C = 3;
    const key = makeKey({ limits: { requestsPerMinute: 0, tokensPerMinute: 0, concurrency: C } });
    const streamKey = makeKey({ limits: { requestsPerMinute: 0, tokensPerMinute: 0, concurrency: 1 } });
    const other = makeKey();
    let a: GatewayProcess;
    let b: GatewayProcess;
    const LEASE = 2000;
    const HEADERS_TIMEOUT = 800;

    before(async () => {
      writeDoc(cfg, "t", makeDoc({ tenant: `up-${id}`, modelUrl: model.url, keys: [key, streamKey, other] }));
      const common = { logDir, configDir: cfg, redisUrl: env.REDIS_URL, adminToken: ADMIN_TOKEN, redisKeyPrefix: `e2e-up-${id}:`, env: { UPSTREAM_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT), LEASE_TTL_MS: String(LEASE) } };
      [a, b] = await startGatewayProcesses({ ...common, name: "gateway-up-a" }, { ...common, name: "gateway-up-b" }) as [GatewayProcess, GatewayProcess];
    });
    after(async () => {
      await control({ failureMode: "none", failureRate: 0, latencyMs: 0, tokensPerSecond: 0 });
      await a?.stop();
      await b?.stop();
      fs.rmSync(cfg, { recursive: true, force: true });
    });

    /** Exactly C requests of the key run at once when its slots are all free: C admitted, the next refused. */
    async function slotsFree(gw: GatewayProcess, k: TestKey, c: number): Promise<void> {
      await control({ failureMode: "none", failureRate: 0, latencyMs: 100 }); // all C in flight together, well under UPSTREAM_HEADERS_TIMEOUT_MS (800)
      const shots = await Promise.all(Array.from({ length: c }, () => shoot(gw.url, k.key)));
      await control({ latencyMs: 0 });
      assert.deepEqual(shots.map((s) => s.status), Array(c).fill(200), `all ${c} slots free`);
    }

    it("failing (500/503), resetting and hanging upstreams: 502/504 with the security headers, slots back to 0", async () => {
      const results: string[] = [];
      for (const [mode, patch, want] of [
        ["error 500", { failureMode: "error", errorStatus: 500, failureRate: 1 }, 502],
        ["error 503", { failureMode: "error", errorStatus: 503, failureRate: 1 }, 502],
        ["reset", { failureMode: "reset", failureRate: 1 }, 502],
        ["hang", { failureMode: "hang", failureRate: 1 }, 504],
      ] as const) {
        await control(patch);
        const shots = await Promise.all(Array.from({ length: C }, () => shoot(a.url, key.key)));
        results.push(`${mode}: ${shots.map((s) => `${s.status} in ${s.ms.toFixed(0)} ms`).join(", ")}`);
        for (const s of shots) {
          assert.equal(s.status, want, `${mode} → ${s.status} ${s.body.slice(0, 120)}`);
          // The catalog's error, never the backend's body.
          assert.equal((JSON.parse(s.body) as { error: { code: string } }).error.code, want === 504 ? "upstream_timeout" : "upstream_error", `${mode}: ${s.body.slice(0, 120)}`);
          assert.deepEqual(responseProblems(s.status, s.headers, s.body, { allow5xx: true }), [], mode);
          assert.ok(s.ms < (mode === "hang" ? HEADERS_TIMEOUT + 2000 : 2000), `${mode} answered in ${s.ms.toFixed(0)} ms`);
        }
        for (const s of shots) for (const [h, v] of Object.entries(SEED_HEADERS)) assert.equal(s.headers[h], v, `${mode}: ${h}`);
        await slotsFree(a, key, C);
      }
      figures.push(`upstream failures: ${results.join("; ")}`);
    });

    it("a replica SIGKILLed mid-stream: the client sees an error, the other replica serves, the lease expires", async () => {
      await control({ failureMode: "none", failureRate: 0, latencyMs: 0, tokensPerSecond: 10 });
      const r = await request(`${a.url}/v1/chat/completions`, {
        method: "POST", headers: { ...json, authorization: `Bearer ${streamKey.key}` }, bodyTimeout: 10_000,
        body: JSON.stringify({ model: "llama-3-8b", messages: [{ role: "user", content: "hi" }], max_tokens: 100, stream: true }),
      });
      assert.equal(r.statusCode, 200);
      let text = "";
      const read = (async () => { for await (const c of r.body) text += (c as Buffer).toString(); })();
      await until("the first frames", () => text.includes("data: "), 5000, 20);
      a.signal("SIGKILL");
      const killedAt = Date.now();
      const outcome = await read.then(() => "ended", (e: Error) => `error: ${e.message}`);
      const ms = Date.now() - killedAt;
      figures.push(`replica killed mid-stream: client saw "${outcome}" after ${ms} ms`);
      assert.match(outcome, /^error/, "the stream ends with an error, not a clean end");
      assert.ok(!text.includes("[DONE]"), "no [DONE] after the replica died");
      assert.ok(ms < 3000, `the client learned it in ${ms} ms`);

      // The other replica serves other keys at once…
      assert.equal((await shoot(b.url, other.key)).status, 200);
      // …and the dead replica's lease holds the key's only slot until it expires.
      await control({ tokensPerSecond: 0 });
      // The replica refreshed its leases every LEASE_TTL_MS / 3 until it died (limiter.ts), each to a
      // full TTL: the lease ends between TTL - TTL/3 and TTL after the kill.
      const earliestExpiry = LEASE - Math.floor(LEASE / 3);
      const first = await shoot(b.url, streamKey.key);
      if (Date.now() - killedAt < earliestExpiry - 100) {
        assert.equal(first.status, 429, `the dead replica's lease still counts (${first.status})`);
        assert.equal(JSON.parse(first.body).error.code, "rate_limit_exceeded");
        assert.equal(first.headers["x-ratelimit-scope"], "concurrency");
      }
      await until("the lease to expire", async () => (await shoot(b.url, streamKey.key)).status === 200, LEASE * 3 + 2000, 100);
      const freed = Date.now() - killedAt;
      figures.push(`replica killed: its lease expired and the key was admitted at the other replica ${freed} ms after the kill (LEASE_TTL_MS ${LEASE})`);
      assert.ok(freed >= earliestExpiry - 100, `not before the lease could have expired (${freed} ms; earliest ${earliestExpiry} ms)`);
    });
  });

  describe("clock skew between replicas", () => {
    const cfg = fs.mkdtempSync(path.join(os.tmpdir(), `e2e-faults-skew-${id}-`));
    const L = 6;
    const key = makeKey({ limits: { requestsPerMinute: L, tokensPerMinute: 0, concurrency: 100 } });
    let fast: GatewayProcess;
    let slow: GatewayProcess;
    const SKEW = 120_000;

    before(async () => {
      writeDoc(cfg, "t", makeDoc({ tenant: `skew-${id}`, modelUrl: model.url, keys: [key] }));
      const preload = ["--import", path.join(repoRoot, "e2e/support/clock-skew.ts")];
      const common = { logDir, configDir: cfg, redisUrl: env.REDIS_URL, adminToken: ADMIN_TOKEN, redisKeyPrefix: `e2e-skew-${id}:`, nodeArgs: preload };
      [fast, slow] = await startGatewayProcesses(
        { ...common, name: "gateway-skew-ahead", env: { CLOCK_SKEW_MS: String(SKEW) } },
        { ...common, name: "gateway-skew-behind", env: { CLOCK_SKEW_MS: String(-SKEW) } },
      ) as [GatewayProcess, GatewayProcess];
    });
    after(async () => {
      await fast?.stop();
      await slow?.stop();
      fs.rmSync(cfg, { recursive: true, force: true });
    });

    it(`two replicas ${(2 * SKEW) / 60_000} minutes apart admit at most L=${L} of 10·L parallel requests`, async () => {
      const shots = await Promise.all(Array.from({ length: 10 * L }, (_, i) => shoot(i % 2 ? fast.url : slow.url, key.key, { path: "/v1/models" })));
      const admitted = shots.filter((s) => s.status === 200);
      // Refused: 429, or 403 `client_blocked` once the key's refusals pass VIOLATION_BLOCK_AFTER (graduated response).
      const refused = shots.filter((s) => s.status === 429 || (s.status === 403 && JSON.parse(s.body).error?.code === "client_blocked"));
      figures.push(`clock skew ±${SKEW / 1000} s: ${admitted.length} of ${shots.length} admitted (L=${L}), ${refused.length} refused`);
      assert.ok(admitted.length <= L, `${admitted.length} admitted`);
      assert.ok(admitted.length >= 1);
      assert.equal(admitted.length + refused.length, shots.length);
      // The skew is real: each replica's X-RateLimit-Reset (its wall clock + Redis's reset time) differs by ~2·SKEW.
      const reset = (g: GatewayProcess) => shots.filter((s, i) => (i % 2 ? fast : slow) === g && s.headers["x-ratelimit-reset"]).map((s) => Number(s.headers["x-ratelimit-reset"]));
      const gap = Math.min(...reset(fast)) - Math.max(...reset(slow));
      assert.ok(Math.abs(gap - (2 * SKEW) / 1000) < 70, `reset headers ${gap} s apart`);
      for (const s of refused.filter((x) => x.status === 429)) assert.ok(Number(s.headers["retry-after"]) >= 1 && Number(s.headers["retry-after"]) <= 60, `Retry-After ${String(s.headers["retry-after"])}`);
    });
  });
});

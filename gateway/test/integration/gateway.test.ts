/**
 * The gateway end to end against real Redis, PostgreSQL and model servers, through the official
 * `openai` SDK and raw HTTP.
 */
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import { after, before, describe, it } from "node:test";
import OpenAI from "openai";
import { Redis } from "ioredis";
import pg from "pg";
import { REVOCATION_CHANNEL } from "@crosslogic/crds";
import { createDatabase, createUsageStore, migrate } from "@crosslogic/data";
import { startModelServer, type ModelServer } from "@crosslogic/model-server";
import { createTestDatabase } from "@crosslogic/testenv";
import { testEnv } from "@crosslogic/testenv/test-env";
import { SEED_HEADERS } from "../../src/headers.ts";
import { ADMIN_TOKEN, makeDoc, makeKey, type TestKey } from "../fixtures.ts";
import { eventually, sleep, startHarness, type Harness } from "../harness.ts";

const env = testEnv();
const MB10 = 10 * 1024 * 1024;

function assertSecurityHeaders(h: Headers | http.IncomingHttpHeaders, what: string, redisDown = false): void {
  const get = (n: string) => (h instanceof Headers ? h.get(n) : (h[n.toLowerCase()] as string | undefined)) ?? undefined;
  for (const [name, value] of Object.entries(SEED_HEADERS)) assert.equal(get(name), value, `${what}: ${name}`);
  assert.match(get("x-request-id") ?? "", /^req_[0-9a-f]{32}$/, `${what}: request id`);
  assert.match(get("x-ratelimit-limit") ?? "", /^[1-9]\d*$/, `${what}: X-RateLimit-Limit is a configured limit`);
  if (redisDown) {
    // Redis unreachable: the limit is known, what is left of it is not, so Remaining and Reset are omitted.
    assert.ok(get("x-ratelimit-remaining") === undefined && get("x-ratelimit-reset") === undefined, `${what}: no invented X-RateLimit-Remaining/Reset`);
  } else {
    assert.ok(get("x-ratelimit-remaining") !== undefined && get("x-ratelimit-reset") !== undefined, `${what}: X-RateLimit-*`);
  }
}

/** Raw request with node:http (chunked bodies, exact bytes). */
function raw(url: string, opts: { method?: string; path: string; headers?: Record<string, string>; body?: Buffer | string; chunked?: boolean }): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = http.request({ host: u.hostname, port: u.port, method: opts.method ?? "POST", path: opts.path, headers: opts.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on("error", reject);
    if (opts.body !== undefined) {
      const b = Buffer.isBuffer(opts.body) ? opts.body : Buffer.from(opts.body);
      if (opts.chunked) { for (let i = 0; i < b.length; i += 1 << 20) req.write(b.subarray(i, i + (1 << 20))); }
      else req.write(b);
    }
    req.end();
  });
}

describe("gateway", () => {
  let model: ModelServer;
  let h: Harness;
  let db: { url: string; drop(): Promise<void> };
  let redis: Redis;
  const canary = makeKey();
  const keys: Record<string, TestKey> = {};
  let doc: ReturnType<typeof makeDoc>;

  before(async () => {
    model = await startModelServer({ name: "gw-it" });
    db = await createTestDatabase(env.DATABASE_URL, "gateway");
    await migrate(db.url);
    keys.dev = makeKey();
    keys.ro = makeKey({ role: "read-only" });
    keys.limited = makeKey({ models: ["bge-small"] });
    keys.rpm = makeKey({ limits: { requestsPerMinute: 5, tokensPerMinute: 0, concurrency: 10 } });
    keys.tpm = makeKey({ limits: { requestsPerMinute: 1000, tokensPerMinute: 100, concurrency: 10 } });
    keys.conc = makeKey({ limits: { requestsPerMinute: 1000, tokensPerMinute: 0, concurrency: 2 } });
    keys.revoke = makeKey();
    keys.expired = makeKey({ expiresAt: new Date(Date.now() - 1000).toISOString() });
    doc = makeDoc({ keys: [canary, ...Object.values(keys)], modelUrl: model.url, origins: ["https://app.example.com"], hostnames: [] });
    h = await startHarness({ REDIS_URL: env.REDIS_URL, DATABASE_URL: db.url, VIOLATION_DELAY_AFTER: "1000", VIOLATION_BLOCK_AFTER: "5000" }, { main: doc });
    redis = new Redis(env.REDIS_URL);
  });

  after(async () => {
    await h?.stop();
    await model?.close();
    const keysLeft = await redis.keys(`${h.prefix}*`);
    if (keysLeft.length) await redis.del(...keysLeft);
    redis.disconnect();
    await db?.drop();
  });

  const client = (k: TestKey, maxRetries = 0) => new OpenAI({ apiKey: k.key, baseURL: `${h.gw.url}/v1`, maxRetries });

  it("answers chat, completions, embeddings and models through the openai SDK", async () => {
    const c = client(canary);
    const chat = await c.chat.completions.create({ model: "llama-3-8b", messages: [{ role: "user", content: "hello there" }], max_tokens: 4 });
    assert.equal(chat.choices[0]!.message.content, "the model answers with");
    assert.equal(chat.usage!.completion_tokens, 4);
    const comp = await c.completions.create({ model: "llama-3-8b", prompt: "hi", max_tokens: 2 });
    assert.equal(comp.choices[0]!.text, "the model");
    const emb = await c.embeddings.create({ model: "bge-small", input: ["a", "b"] });
    assert.equal(emb.data.length, 2);
    const models = await c.models.list();
    assert.deepEqual(models.data.map((m) => m.id).sort(), ["bge-small", "llama-3-8b"]);
  });

  it("streams frames unmerged and in order, and meters streamed tokens", async () => {
    const stream = await client(canary).chat.completions.create({ model: "llama-3-8b", messages: [{ role: "user", content: "count" }], max_tokens: 40, stream: true });
    const deltas: string[] = [];
    let usage: { completion_tokens: number } | undefined;
    for await (const chunk of stream) {
      const content = chunk.choices[0]?.delta?.content;
      if (typeof content === "string") deltas.push(content);
      if (chunk.usage) usage = chunk.usage;
    }
    const words = ["the", "model", "answers", "with", "plain", "words", "so", "tests", "can", "count", "every", "token", "it", "streams", "back", "."];
    assert.deepEqual(deltas, Array.from({ length: 40 }, (_, i) => (i === 0 ? "" : " ") + words[i % words.length]));
    assert.equal(usage?.completion_tokens, 40, "include_usage was injected");
    const seen = model.stats().lastHeaders!;
    assert.equal(seen.authorization, undefined, "the client's key never reaches the backend");
  });

  it("forwards the raw request bytes", async () => {
    const body = '{"model":"llama-3-8b",  "messages":[{"role":"user","content":"caf\\u00e9"}], "max_tokens":1}';
    const r = await raw(h.gw.url, { path: "/v1/chat/completions", headers: { authorization: `Bearer ${keys.dev!.key}`, "content-type": "application/json" }, body });
    assert.equal(r.status, 200);
  });

  it("puts the security and rate-limit headers on every response, errors included", async () => {
    const auth = { authorization: `Bearer ${keys.dev!.key}` };
    const cases: Array<[string, Parameters<typeof raw>[1], number]> = [
      ["200", { method: "GET", path: "/v1/models", headers: auth }, 200],
      ["404 unknown route", { method: "GET", path: "/v2/secret", headers: auth }, 404],
      ["405 wrong method", { method: "DELETE", path: "/v1/models", headers: auth }, 405],
      ["415 not JSON", { path: "/v1/completions", headers: { ...auth, "content-type": "text/plain" }, body: "hi" }, 415],
      ["400 bad JSON", { path: "/v1/completions", headers: { ...auth, "content-type": "application/json" }, body: "{" }, 400],
      ["400 schema", { path: "/v1/completions", headers: { ...auth, "content-type": "application/json" }, body: '{"model":"llama-3-8b"}' }, 400],
      ["401", { method: "GET", path: "/v1/models", headers: { authorization: "Bearer nope" } }, 401],
      ["404 model", { path: "/v1/completions", headers: { ...auth, "content-type": "application/json" }, body: '{"model":"gpt-9","prompt":"x"}' }, 404],
    ];
    for (const [name, opts, status] of cases) {
      const r = await raw(h.gw.url, opts);
      assert.equal(r.status, status, name);
      assertSecurityHeaders(r.headers, name);
      if (status >= 400) {
        const body = JSON.parse(r.body) as { error: { code: string; type: string; message: string; request_id: string } };
        assert.equal(body.error.request_id, r.headers["x-request-id"], `${name}: request id in body`);
        assert.ok(body.error.code && body.error.type && body.error.message);
        assert.doesNotMatch(r.body, /at \w+ \(|\/work\/|node_modules|ECONN|redis|sql/i, `${name}: no internals`);
      }
    }
  });

  it("holds bodies to 10 MB exactly, chunked too", async () => {
    const headers = { authorization: `Bearer ${keys.dev!.key}`, "content-type": "application/json" };
    const json = '{"model":"llama-3-8b","prompt":"x","max_tokens":1}';
    const exact = Buffer.alloc(MB10, 0x20);
    exact.write(json);
    assert.equal((await raw(h.gw.url, { path: "/v1/completions", headers, body: exact })).status, 200);
    const over = Buffer.alloc(MB10 + 1, 0x20);
    over.write(json);
    const r = await raw(h.gw.url, { path: "/v1/completions", headers, body: over });
    assert.equal(r.status, 413);
    assertSecurityHeaders(r.headers, "413");
    assert.equal((await raw(h.gw.url, { path: "/v1/completions", headers, body: over, chunked: true }).catch(() => ({ status: 413 }))).status, 413);
    assert.equal((await raw(h.gw.url, { path: "/v1/completions", headers, body: exact, chunked: true })).status, 200);
  });

  it("refuses bad keys uniformly, with distinct internal reasons in the audit log", async () => {
    const refused: Array<[string, string | undefined, number]> = [
      ["missing", undefined, 401], ["malformed", "Bearer clsk_live_123", 401], ["malformed", `Bearer ${keys.dev!.key.slice(0, 40)}`, 401],
      ["unknown", `Bearer clsk_test_${"b".repeat(64)}`, 401], ["expired", `Bearer ${keys.expired!.key}`, 401],
      ["read_only_inference", `Bearer ${keys.ro!.key}`, 403], ["model_not_allowed", `Bearer ${keys.limited!.key}`, 403],
    ];
    const bodies = new Set<string>();
    for (const [reason, authorization, status] of refused) {
      const r = await raw(h.gw.url, { path: "/v1/chat/completions", headers: { "content-type": "application/json", ...(authorization ? { authorization } : {}) }, body: JSON.stringify({ model: "llama-3-8b", messages: [{ role: "user", content: "x" }] }) });
      assert.equal(r.status, status, reason);
      bodies.add(`${status}:${JSON.parse(r.body).error.message}`);
    }
    assert.equal(bodies.size, 2, "one message for 401, one for 403");
    const audit = h.audits().split("\n").filter(Boolean).map((l) => JSON.parse(l) as { action: string; details: { reason?: string }; actor_id: string | null; ip_address: string });
    for (const [reason] of refused) assert.ok(audit.some((a) => a.action === "auth_failed" && a.details.reason === reason), `audited: ${reason}`);
    const ro = audit.find((a) => a.details.reason === "read_only_inference")!;
    assert.equal(ro.actor_id, keys.ro!.entry.prefix);
    assert.equal(ro.ip_address, "127.0.0.1");
    // Read-only keys may still list models.
    assert.equal((await raw(h.gw.url, { method: "GET", path: "/v1/models", headers: { authorization: `Bearer ${keys.ro!.key}` } })).status, 200);
  });

  it("limits key requests per minute, naming the layer, with Retry-After", async () => {
    const c = client(keys.rpm!);
    const statuses: number[] = [];
    let refusal: { headers: Headers; body: string } | undefined;
    for (let i = 0; i < 7; i++) {
      const r = await c.models.list().withResponse().then(() => 200, (e: InstanceType<typeof OpenAI.APIError>) => { refusal ??= { headers: e.headers as Headers, body: JSON.stringify(e.error) }; return e.status ?? 0; });
      statuses.push(r);
    }
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429, 429]);
    assert.ok(Number(refusal!.headers.get("retry-after")) >= 1);
    assert.equal(refusal!.headers.get("x-ratelimit-scope"), "key");
    assert.equal(refusal!.headers.get("x-ratelimit-remaining"), "0");
    assert.equal(refusal!.headers.get("x-ratelimit-limit"), "5");
    assert.match(refusal!.body, /rate_limit_exceeded/);
  });

  it("reserves tokens from max_tokens and settles from real usage", async () => {
    const c = client(keys.tpm!);
    model.set({ latencyMs: 2000 });
    try {
      const inFlight = model.stats().inFlight;
      const first = c.completions.create({ model: "llama-3-8b", prompt: "a", max_tokens: 60 });
      // Admitted (its tokens reserved) once the model server has it.
      await eventually(() => model.stats().inFlight > inFlight, 5000, 5);
      // 60 of 100 reserved while the first runs: another 60 does not fit.
      await assert.rejects(c.completions.create({ model: "llama-3-8b", prompt: "a", max_tokens: 60 }), (e: InstanceType<typeof OpenAI.APIError>) => e.status === 429 && e.headers?.get("x-ratelimit-scope") === "tokens");
      assert.equal((await first).usage!.total_tokens, 61);
    } finally {
      model.set({ latencyMs: 0 });
    }
    await redis.hdel(`${h.prefix}{gw}k:${keys.tpm!.entry.hash}`, "kt", "kts");
    // An embedding reserves by input size (~100 tokens, the whole bucket) but uses 1: 99 come back,
    // so a 90-token completion fits right after; without the refund it could not.
    const emb = await c.embeddings.create({ model: "bge-small", input: "a".repeat(400) });
    assert.equal(emb.usage.total_tokens, 1);
    await eventually(async () => Number(await redis.hget(`${h.prefix}{gw}k:${keys.tpm!.entry.hash}`, "kt")) > 90, 2000);
    const comp = await c.completions.create({ model: "llama-3-8b", prompt: "a", max_tokens: 90 });
    assert.equal(comp.usage!.completion_tokens, 90);
  });

  it("holds the environment and the tenant to their tokens per minute, across keys", async () => {
    const a = makeKey(), b = makeKey(), c = makeKey();
    const envDoc = makeDoc({ keys: [a, b], modelUrl: model.url });
    envDoc.environment.limits.tokensPerMinute = 100;
    const tenantDoc = makeDoc({ keys: [c], modelUrl: model.url });
    tenantDoc.tenant.limits.tokensPerMinute = 50;
    h.write("envtok", envDoc);
    h.write("tenanttok", tenantDoc);
    await eventually(() => h.gw.store.key(b.entry.hash) && h.gw.store.key(c.entry.hash));
    const scope = (name: string) => (e: InstanceType<typeof OpenAI.APIError>) => e.status === 429 && e.headers?.get("x-ratelimit-scope") === name;
    // Key a uses 61 of the environment's 100: key b (its own key limits unlimited) cannot reserve 60.
    assert.equal((await client(a).completions.create({ model: "llama-3-8b", prompt: "a", max_tokens: 60 })).usage!.total_tokens, 61);
    await assert.rejects(client(b).completions.create({ model: "llama-3-8b", prompt: "a", max_tokens: 60 }), scope("environment-tokens"));
    assert.ok(await client(b).completions.create({ model: "llama-3-8b", prompt: "a", max_tokens: 10 }), "what is left still fits");
    // The tenant's 50: 31 used, 30 more do not fit.
    await client(c).completions.create({ model: "llama-3-8b", prompt: "a", max_tokens: 30 });
    await assert.rejects(client(c).completions.create({ model: "llama-3-8b", prompt: "a", max_tokens: 30 }), scope("tenant-tokens"));
  });

  it("sends no usage frame to a client that set include_usage: false, and still meters the tokens", async () => {
    const body = JSON.stringify({ model: "llama-3-8b", messages: [{ role: "user", content: "x" }], max_tokens: 7, stream: true, stream_options: { include_usage: false } });
    const r = await raw(h.gw.url, { path: "/v1/chat/completions", headers: { authorization: `Bearer ${keys.dev!.key}`, "content-type": "application/json" }, body });
    assert.equal(r.status, 200);
    const frames = r.body.split("\n\n").filter(Boolean);
    assert.equal(frames.at(-1), "data: [DONE]");
    assert.equal(frames.filter((f) => /"usage":\s*\{/.test(f)).length, 0, "no usage frame");
    assert.equal(frames.filter((f) => /"delta":\{[^}]*"content"/.test(f)).length, 7, "every content frame arrives");
    assert.ok(frames.every((f) => f.startsWith("data: ")));
    const id = String(r.headers["x-request-id"]);
    const database = createDatabase(db.url);
    try {
      const store = createUsageStore(database);
      const rec = await eventually(async () => (await store.query({ tenant: doc.tenant.name })).find((u) => u.requestId === id), 5000);
      assert.equal(rec.completionTokens, 7, "metered from the stripped frame");
    } finally {
      await database.close();
    }
  });

  it("holds a key to its concurrency, and slots return to zero after aborts and errors", async () => {
    const set = `${h.prefix}{gw}c:${keys.conc!.entry.hash}`;
    model.set({ tokensPerSecond: 20 });
    try {
      const controllers = [new AbortController(), new AbortController()];
      const c = client(keys.conc!);
      const streams = await Promise.all(controllers.map((ac) => c.chat.completions.create({ model: "llama-3-8b", messages: [{ role: "user", content: "x" }], max_tokens: 200, stream: true }, { signal: ac.signal })));
      assert.equal(await redis.zcard(set), 2);
      await assert.rejects(c.chat.completions.create({ model: "llama-3-8b", messages: [{ role: "user", content: "x" }], max_tokens: 1 }), (e: InstanceType<typeof OpenAI.APIError>) => e.status === 429 && e.headers?.get("x-ratelimit-scope") === "concurrency");
      const before = model.stats().aborted;
      for (const ac of controllers) ac.abort();
      for (const s of streams) await (async () => { try { for await (const _ of s) { /* drain */ } } catch { /* aborted */ } })();
      await eventually(async () => (await redis.zcard(set)) === 0, 3000);
      await eventually(() => model.stats().aborted >= before + 2, 3000);
    } finally {
      model.set({ tokensPerSecond: 0 });
    }
    model.set({ failureMode: "error", failureRate: 1, errorStatus: 500 });
    try {
      const r = await raw(h.gw.url, { path: "/v1/completions", headers: { authorization: `Bearer ${keys.conc!.key}`, "content-type": "application/json" }, body: '{"model":"llama-3-8b","prompt":"x"}' });
      // Upstream 5xx → the catalog's 502; the backend's body never reaches the client.
      assert.equal(r.status, 502);
      assertSecurityHeaders(r.headers, "upstream 500");
      const body = JSON.parse(r.body) as { error: { code: string; request_id: string } };
      assert.equal(body.error.code, "upstream_error");
      assert.equal(body.error.request_id, r.headers["x-request-id"]);
      assert.doesNotMatch(r.body, /injected/);
      // Upstream 4xx pass through (client-relevant messages such as context length).
      model.set({ failureMode: "error", failureRate: 1, errorStatus: 400 });
      const four = await raw(h.gw.url, { path: "/v1/completions", headers: { authorization: `Bearer ${keys.conc!.key}`, "content-type": "application/json" }, body: '{"model":"llama-3-8b","prompt":"x"}' });
      assert.equal(four.status, 400);
      assert.match(four.body, /injected failure/);
      assertSecurityHeaders(four.headers, "upstream 400");
    } finally {
      model.set({ failureMode: "none", failureRate: 0 });
    }
    await eventually(async () => (await redis.zcard(set)) === 0, 1000); // settled right after the response
  });

  it("answers 502 with the headers when the backend is unreachable", async () => {
    const dead = makeKey();
    const port = await new Promise<number>((r) => { const s = net.createServer(); s.listen(0, "127.0.0.1", () => { const p = (s.address() as net.AddressInfo).port; s.close(() => r(p)); }); });
    h.write("dead", makeDoc({ keys: [dead], modelUrl: `http://127.0.0.1:${port}` }));
    await eventually(() => h.gw.store.key(dead.entry.hash));
    const r = await raw(h.gw.url, { path: "/v1/completions", headers: { authorization: `Bearer ${dead.key}`, "content-type": "application/json" }, body: '{"model":"llama-3-8b","prompt":"x"}' });
    assert.equal(r.status, 502);
    assertSecurityHeaders(r.headers, "502");
    assert.equal(JSON.parse(r.body).error.code, "upstream_error");
  });

  it("applies a revocation broadcast within a second, and keeps the last good config on a bad update", async () => {
    const c = client(keys.revoke!);
    await c.models.list();
    const pub = new Redis(env.REDIS_URL);
    const t0 = Date.now();
    await pub.publish(REVOCATION_CHANNEL, JSON.stringify({ type: "key_revoked", hash: keys.revoke!.entry.hash, prefix: keys.revoke!.entry.prefix }));
    await eventually(async () => (await c.models.list().then(() => false, (e: { status?: number }) => e.status === 401)), 1000, 10);
    assert.ok(Date.now() - t0 < 1000);
    pub.disconnect();
    h.write("main", "{ broken");
    await sleep(300);
    assert.ok(h.gw.store.key(keys.dev!.entry.hash), "last good document kept");
    h.write("main", doc);
  });

  it("never lets a key appear in logs, responses, Redis or PostgreSQL", async () => {
    const database = createDatabase(db.url);
    const store = createUsageStore(database);
    const usage = await eventually(async () => { const r = await store.query({ tenant: doc.tenant.name }); return r.some((u) => u.streamed) ? r : undefined; }, 5000);
    await database.close();
    assert.ok(usage.some((u) => u.keyPrefix === canary.entry.prefix && u.streamed && u.completionTokens === 40), "the streamed request was metered");
    const secret = canary.key.slice(18); // the part after the prefix
    const client2 = new pg.Client({ connectionString: db.url });
    await client2.connect();
    const tables = (await client2.query("select table_name from information_schema.tables where table_schema = 'public'")).rows.map((r: { table_name: string }) => r.table_name);
    for (const t of tables) {
      const dump = JSON.stringify((await client2.query(`select * from "${t}"`)).rows);
      assert.ok(!dump.includes(secret), `PostgreSQL table ${t}`);
    }
    await client2.end();
    for (const k of await redis.keys("*")) {
      const type = await redis.type(k);
      const v = type === "string" ? await redis.get(k) : type === "hash" ? JSON.stringify(await redis.hgetall(k)) : type === "zset" ? JSON.stringify(await redis.zrange(k, 0, -1)) : "";
      assert.ok(!k.includes(secret) && !String(v).includes(secret), `Redis key ${k}`);
    }
    assert.ok(!h.logs().includes(secret) && !h.audits().includes(secret), "logs");
    // A refused canary (wrong host) is logged by prefix only.
    const r = await raw(h.gw.url, { method: "GET", path: "/v1/models", headers: { authorization: `Bearer ${canary.key}x` } });
    assert.ok(!r.body.includes(secret) && !JSON.stringify(r.headers).includes(secret));
    assert.ok(!h.audits().includes(secret));
  });

  it("large documents rewritten while one waits to be applied: none is read over another, and the newest wins", async () => {
    // A large document is read into a reused buffer, lent until the document is applied. Applies
    // are held back here until all three versions were read, so the second and third must be read
    // elsewhere; sizes differ, so bytes read over the first would not parse as it.
    const store = h.gw.store;
    const others = store.keyCount;
    const applyLarge = store.applyLarge.bind(store);
    let open!: () => void;
    const gate = new Promise<void>((r) => { open = r; });
    store.applyLarge = async (...args) => { await gate; return applyLarge(...args); };
    try {
      const versions = [16_000, 12_000, 14_000].map((n) => Array.from({ length: n }, () => makeKey()));
      for (const keys of versions) {
        h.write("big", makeDoc({ keys, modelUrl: model.url, tenant: "t-big" }));
        await sleep(200); // past the directory watcher's 50 ms debounce, and read
      }
      open();
      const last = versions[2]!;
      await eventually(() => store.keyCount === others + last.length && store.key(last[0]!.entry.hash) && store.key(last[13_999]!.entry.hash), 20_000);
      for (const k of [last[0]!, last[7_777]!, last[13_999]!]) assert.equal((await client(k).models.list()).data[0]?.id, "llama-3-8b");
      for (const k of [versions[0]![0]!, versions[1]![11_999]!]) {
        await assert.rejects(client(k).models.list(), (e: { status?: number }) => e.status === 401, "an older version's key is refused");
      }
      const rejected = h.logs().split("\n").filter((l) => l.includes("Rejected gateway config") && l.includes("file/big.json"));
      assert.deepEqual(rejected, [], "no version was refused as corrupt");
    } finally {
      open();
      store.applyLarge = applyLarge;
    }
    h.write("big", JSON.stringify(makeDoc({ keys: [], tenant: "t-big" })));
    await eventually(() => store.keyCount === others);
  });

  it("a document whose apply throws is reported as rejected, and the documents after it still apply", async () => {
    const store = h.gw.store;
    const apply = store.apply.bind(store);
    store.apply = (source, ...rest) => {
      if (source === "file/boom.json") throw new Error("injected failure");
      return apply(source, ...rest);
    };
    try {
      h.write("boom", makeDoc({ keys: [makeKey()], tenant: "t-boom" }));
      await eventually(() => h.logs().split("\n").some((l) => l.includes("Rejected gateway config") && l.includes("file/boom.json") && l.includes("injected failure")));
      const after = makeKey();
      h.write("after-boom", makeDoc({ keys: [after], modelUrl: model.url, tenant: "t-after-boom" }));
      await eventually(() => store.key(after.entry.hash));
      assert.equal((await client(after).models.list()).data[0]?.id, "llama-3-8b");
    } finally {
      store.apply = apply;
    }
  });

  it("serves usage, audit and metrics on the admin port only, behind the admin token", async () => {
    const pub = await raw(h.gw.url, { method: "GET", path: "/admin/usage?tenant=x", headers: { "x-admin-token": ADMIN_TOKEN } });
    assert.equal(pub.status, 404);
    const bad = await fetch(`${h.gw.adminUrl}/admin/usage?tenant=${doc.tenant.name}`, { headers: { "x-admin-token": "wrong" } });
    assert.equal(bad.status, 401);
    const ok = await fetch(`${h.gw.adminUrl}/admin/usage?tenant=${doc.tenant.name}&keyPrefix=${canary.entry.prefix}`, { headers: { "x-admin-token": ADMIN_TOKEN } });
    assert.equal(ok.status, 200);
    const data = (await ok.json()) as { data: Array<{ keyPrefix: string }> };
    assert.ok(data.data.length >= 1 && data.data.every((u) => u.keyPrefix === canary.entry.prefix));
    const audit = await eventually(async () => {
      const r = await fetch(`${h.gw.adminUrl}/admin/audit?action=admin_auth_failed`, { headers: { "x-admin-token": ADMIN_TOKEN } });
      const body = (await r.json()) as { data: unknown[] };
      return body.data.length > 0 ? body : undefined;
    });
    assert.ok(audit.data.length >= 1);
    const metrics = await (await fetch(`${h.gw.adminUrl}/metrics`)).text();
    assert.match(metrics, new RegExp(`gateway_requests_total\\{tenant="${doc.tenant.name}"`));
    assert.match(metrics, /gateway_limit_decisions_total\{[^}]*decision="refused",layer="key"/);
    assert.match(metrics, /gateway_tokens_total/);
    const spec = (await (await fetch(`${h.gw.adminUrl}/openapi.json`)).json()) as { openapi: string };
    assert.equal(spec.openapi, "3.1.0");
  });

  it("answers CORS preflight only for the environment's origins", async () => {
    const hosted = makeKey();
    h.write("cors", makeDoc({ keys: [hosted], hostnames: ["cors.example.test"], origins: ["https://app.example.com"], modelUrl: model.url }));
    await eventually(() => h.gw.store.key(hosted.entry.hash));
    const pre = await raw(h.gw.url, { method: "OPTIONS", path: "/v1/chat/completions", headers: { host: "cors.example.test", origin: "https://app.example.com", "access-control-request-method": "POST" } });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers["access-control-allow-origin"], "https://app.example.com");
    assert.equal(pre.headers["access-control-allow-credentials"], "true");
    assert.equal(pre.headers["access-control-max-age"], "3600");
    assert.equal(pre.headers["access-control-allow-methods"], "POST, OPTIONS");
    assert.match(String(pre.headers.vary), /Origin/);
    const evil = await raw(h.gw.url, { method: "OPTIONS", path: "/v1/chat/completions", headers: { host: "cors.example.test", origin: "https://evil.example" } });
    assert.equal(evil.headers["access-control-allow-origin"], undefined);
  });
});

describe("gateway when Redis is unreachable", () => {
  let blackhole: net.Server;
  let url: string;
  const sockets = new Set<net.Socket>();
  before(async () => {
    // Accepts connections and never answers: a frozen Redis.
    blackhole = net.createServer((s) => { sockets.add(s); s.on("error", () => undefined); });
    await new Promise<void>((r) => blackhole.listen(0, "127.0.0.1", () => r()));
    url = `redis://127.0.0.1:${(blackhole.address() as net.AddressInfo).port}`;
  });
  after(async () => { for (const s of sockets) s.destroy(); await new Promise((r) => blackhole.close(r)); });

  for (const policy of ["fail-closed", "fail-open"] as const) {
    it(`${policy}: decides within REDIS_TIMEOUT_MS and counts it`, async () => {
      const model = await startModelServer({});
      const k = makeKey();
      const h = await startHarness({ REDIS_URL: url, REDIS_TIMEOUT_MS: "200", REDIS_FAILURE_POLICY: policy }, { a: makeDoc({ keys: [k], modelUrl: model.url }) });
      try {
        const t0 = Date.now();
        const r = await raw(h.gw.url, { path: "/v1/completions", headers: { authorization: `Bearer ${k.key}`, "content-type": "application/json" }, body: '{"model":"llama-3-8b","prompt":"x","max_tokens":1}' });
        assert.ok(Date.now() - t0 < 3000, "no hang");
        assert.equal(r.status, policy === "fail-closed" ? 503 : 200);
        assertSecurityHeaders(r.headers, policy, true);
        assert.equal(r.headers["x-ratelimit-limit"], "1000", "the tightest configured limit (the key's 1000/min)");
        if (policy === "fail-closed") { assert.equal(JSON.parse(r.body).error.code, "rate_limiter_unavailable"); assert.equal(r.headers["retry-after"], "1"); }
        const metrics = await (await fetch(`${h.gw.adminUrl}/metrics`)).text();
        assert.match(metrics, new RegExp(`gateway_redis_failures_total\\{op="admit",policy="${policy}"\\} [1-9]`));
      } finally {
        await h.stop();
        await model.close();
      }
    });
  }
});

describe("graduated response", () => {
  it("delays repeat violators, then blocks the key and the address for a while, audited", async () => {
    const model = await startModelServer({});
    const k = makeKey({ limits: { requestsPerMinute: 1, tokensPerMinute: 0, concurrency: 10 } });
    const h = await startHarness({ REDIS_URL: env.REDIS_URL, VIOLATION_DELAY_AFTER: "2", VIOLATION_BLOCK_AFTER: "6", VIOLATION_MAX_DELAY_MS: "400" }, { a: makeDoc({ keys: [k], modelUrl: model.url }) });
    try {
      const get = async () => { const r = await fetch(`${h.gw.url}/v1/models`, { headers: { authorization: `Bearer ${k.key}` } }); await r.arrayBuffer(); return { status: r.status, delay: Number(r.headers.get("x-ratelimit-delay-ms") ?? 0), scope: r.headers.get("x-ratelimit-scope") }; };
      assert.equal((await get()).status, 200);
      const refusals = [];
      for (let i = 0; i < 6; i++) refusals.push(await get());
      assert.deepEqual(refusals.map((r) => r.status), [429, 429, 429, 429, 429, 429]);
      // The delay the gateway decided (announced in X-RateLimit-Delay-Ms): none for the first two
      // violations, then 50, 100, 200, 400 ms (capped by VIOLATION_MAX_DELAY_MS).
      assert.deepEqual(refusals.map((r) => r.delay), [0, 0, 50, 100, 200, 400]);
      const metrics = await (await fetch(`${h.gw.adminUrl}/metrics`)).text();
      assert.match(metrics, /gateway_refusal_delay_seconds_count\{layer="key"\} 4/);
      const blocked = await get();
      assert.equal(blocked.status, 403);
      assert.equal(blocked.scope, "blocked");
      assert.match(h.audits(), /"action":"rate_limit_block"/);
    } finally {
      await h.stop();
      await model.close();
    }
  });
});

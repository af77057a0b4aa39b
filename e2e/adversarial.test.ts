/**
 * Adversarial suite against a real gateway process (`node gateway/src/main.ts`) with the shared
 * Redis, its own PostgreSQL database and a model server process: property-based and corpus-driven
 * bad input on every public and admin endpoint, header and content-type tricks, slow bodies,
 * hostile CORS origins, the exact body limit, the key matrix, cross-tenant attempts, and a
 * statistical check that the admin token comparison does not depend on how close a guess is.
 * Every response is checked: never a 5xx, always the seed's security headers and a JSON body with
 * no stack trace, internal path, SQL or Redis text. The counts are printed as test diagnostics.
 *
 * `make test` runs fixed seeds (the same cases every time). `make fuzz` (continuous fuzzing) runs
 * FUZZ_SCALE times as many generated cases from fresh seeds: FUZZ_SEED=random draws a base seed,
 * printed first, and FUZZ_SEED=<n> replays it.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { Redis } from "ioredis";
import { Client, Pool } from "undici";
import { REVOCATION_CHANNEL } from "@crosslogic/crds";
import { createTestDatabase } from "@crosslogic/testenv";
import type { ManagedProcess } from "@crosslogic/testenv/process";
import { migrateDatabase } from "@crosslogic/testenv/product";
import { testEnv } from "@crosslogic/testenv/test-env";
import { startLoopbackModelServer } from "./support.ts";
import { makeDoc, makeKey, responseProblems, sleep, startGatewayProcess, suffix, until, writeDoc, type GatewayProcess, type TestKey } from "./support/gateway.ts";
import { MALFORMED_JSON, NAUGHTY } from "./support/naughty.ts";
import { head, rawRequest, type RawResponse } from "./support/raw.ts";

const env = testEnv();
const id = suffix(3);
const FUZZ_SCALE = Math.max(1, Math.floor(Number(process.env.FUZZ_SCALE ?? 1)) || 1);
const FUZZ_SEED = process.env.FUZZ_SEED === "random" ? Math.floor(Math.random() * 2 ** 31) : Math.floor(Number(process.env.FUZZ_SEED ?? 0)) || 0;
if (FUZZ_SCALE > 1 || FUZZ_SEED !== 0) console.log(`[fuzz] FUZZ_SEED=${FUZZ_SEED} FUZZ_SCALE=${FUZZ_SCALE} (replay: make fuzz FUZZ_SEED=${FUZZ_SEED} FUZZ_SCALE=${FUZZ_SCALE})`);
const logDir = fs.mkdtempSync(path.join(os.tmpdir(), `e2e-adv-${id}-`));
const configDir = fs.mkdtempSync(path.join(os.tmpdir(), `e2e-adv-cfg-${id}-`));
const ADMIN_TOKEN = randomBytes(33).toString("base64url"); // 44 characters
const [hostA, hostA2, hostB] = [`a-${id}.adv.test`, `a2-${id}.adv.test`, `b-${id}.adv.test`];
const ORIGIN = "https://app.example.com";
const [tenantA, tenantB, tenantS] = [`adv-a-${id}`, `adv-b-${id}`, `adv-s-${id}`];
const MAX = 10 * 1024 * 1024;
const POSTS = ["/v1/chat/completions", "/v1/completions", "/v1/embeddings"] as const;
const VALID: Record<(typeof POSTS)[number], Record<string, unknown>> = {
  "/v1/chat/completions": { model: "llama-3-8b", messages: [{ role: "user", content: "hi" }], max_tokens: 4 },
  "/v1/completions": { model: "llama-3-8b", prompt: "hi", max_tokens: 4 },
  "/v1/embeddings": { model: "bge-small", input: "hi" },
};

/** What every request taught us (printed at the end). */
const tally = { sent: 0, raw: 0, byStatus: new Map<number, number>(), fiveXX: 0, knownAdmin5xx: 0, problems: [] as string[], parserRejections: 0 };
const count = (status: number) => tally.byStatus.set(status, (tally.byStatus.get(status) ?? 0) + 1);

interface Answer { status: number; headers: Record<string, string | string[] | undefined>; body: string }

const keys = {
  a: makeKey(), readOnly: makeKey({ role: "read-only" }), expired: makeKey({ expiresAt: "2020-01-01T00:00:00Z" }), revoked: makeKey(),
  modelLimited: makeKey({ models: ["bge-small"] }), a2: makeKey(), b: makeKey({ env: "live" }), suspended: makeKey(),
};

describe("adversarial input against a gateway process", { timeout: 240_000 * FUZZ_SCALE }, () => {
  let gw: GatewayProcess;
  let model: { url: string; process: ManagedProcess };
  let db: { url: string; drop(): Promise<void> };
  let pool: Pool;
  let admin: Pool;

  /** One request through the keep-alive pool; every answer is checked and counted. */
  async function send(p: Pool, o: { path: string; method?: string; headers?: Record<string, string>; body?: string | Buffer }, check: { allow5xx?: boolean; json?: boolean } = {}): Promise<Answer> {
    const r = await p.request({ path: o.path, method: (o.method ?? "GET") as "GET", headers: o.headers ?? {}, body: o.body ?? null, headersTimeout: 20_000, bodyTimeout: 20_000 });
    const body = await r.body.text();
    tally.sent++;
    count(r.statusCode);
    if (r.statusCode >= 500) tally.fiveXX++;
    const problems = responseProblems(r.statusCode, r.headers, body, check);
    if (problems.length) tally.problems.push(`${o.method ?? "GET"} ${o.path.slice(0, 80)} → ${r.statusCode}: ${problems.join("; ")}`);
    return { status: r.statusCode, headers: r.headers, body };
  }

  function checkRaw(what: string, r: RawResponse, opts: { json?: boolean } = {}): string[] {
    tally.raw++;
    count(r.status);
    if (r.status >= 500) tally.fiveXX++;
    const problems = r.status === 0 ? ["no response"] : responseProblems(r.status, r.headers, r.body, opts);
    return problems.map((p) => `${what} → ${r.status}: ${p}`);
  }

  async function runAll<T>(items: readonly T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
    let next = 0;
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }));
  }

  /** Percent-encodes every UTF-8 byte (lone surrogates become U+FFFD, as a browser would send them). */
  const pct = (s: string) => [...Buffer.from(s, "utf8")].map((b) => `%${b.toString(16).padStart(2, "0")}`).join("");
  const bearer = (k: TestKey | string) => `Bearer ${typeof k === "string" ? k : k.key}`;
  const json = { "content-type": "application/json" };

  before(async () => {
    db = await createTestDatabase(env.DATABASE_URL, "adversarial");
    await migrateDatabase(db.url);
    model = await startLoopbackModelServer(`adv-${id}`, ["llama-3-8b", "bge-small", "b-only"], logDir);
    writeDoc(configDir, "a", makeDoc({
      tenant: tenantA, env: "dev", hostnames: [hostA], origins: [ORIGIN], modelUrl: model.url,
      keys: [keys.a, keys.readOnly, keys.expired, keys.revoked, keys.modelLimited],
    }));
    writeDoc(configDir, "a2", makeDoc({ tenant: tenantA, env: "staging", tier: "staging", hostnames: [hostA2], modelUrl: model.url, keys: [keys.a2] }));
    writeDoc(configDir, "b", makeDoc({ tenant: tenantB, env: "prod", tier: "production", hostnames: [hostB], modelUrl: model.url, models: ["llama-3-8b", "b-only"], keys: [keys.b] }));
    writeDoc(configDir, "s", makeDoc({ tenant: tenantS, env: "dev", modelUrl: model.url, keys: [keys.suspended], suspended: true }));
    gw = await startGatewayProcess({
      name: "gateway-adversarial", logDir, configDir, redisUrl: env.REDIS_URL, databaseUrl: db.url, adminToken: ADMIN_TOKEN, redisKeyPrefix: `e2e-adv-${id}:`,
      // Thousands of deliberate failures from one address: the address limits and the graduated
      // response would otherwise answer 429/403 before the paths under test are reached.
      env: { CLIENT_REQUESTS_PER_MINUTE: "0", CLIENT_GENERATION_REQUESTS_PER_MINUTE: "0", VIOLATION_DELAY_AFTER: "1000000", VIOLATION_BLOCK_AFTER: "1000000", UPSTREAM_HEADERS_TIMEOUT_MS: "15000" },
    });
    pool = new Pool(gw.url, { connections: 16 });
    admin = new Pool(gw.adminUrl, { connections: 8 });
    await until("the gateway to accept tenant A's key", async () => (await send(pool, { path: "/v1/models", headers: { host: hostA, authorization: bearer(keys.a) } })).status === 200, 15_000);
  });

  after(async () => {
    const statuses = [...tally.byStatus.entries()].sort((x, y) => x[0] - y[0]).map(([s, n]) => `${s}:${n}`).join(" ");
    const line = `adversarial: ${tally.sent} requests + ${tally.raw} raw-socket requests; 5xx seen ${tally.fiveXX}; statuses ${statuses}; response problems ${tally.problems.length}`;
    console.log(line);
    await pool?.close();
    await admin?.close();
    await gw?.stop();
    await model?.process.stop();
    await db?.drop().catch(() => {});
    fs.rmSync(configDir, { recursive: true, force: true });
    fs.rmSync(logDir, { recursive: true, force: true });
  });

  it("property-based and corpus bodies on every POST endpoint: 0 5xx, security headers and clean JSON on every answer", async (t) => {
    const before = tally.problems.length;
    const fields = ["model", "messages", "prompt", "input", "max_tokens", "n", "stream", "stream_options", "temperature", "stop", "logit_bias", "tools", "user", "__proto__", "extra"];
    const body = (ep: (typeof POSTS)[number]) => fc.oneof(
      fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
      fc.tuple(fc.constantFrom(...fields), fc.jsonValue({ maxDepth: 3 })).map(([k, v]) => JSON.stringify({ ...VALID[ep], [k]: v })),
      fc.tuple(fc.constantFrom(...fields), fc.constantFrom(...NAUGHTY)).map(([k, v]) => JSON.stringify({ ...VALID[ep], [k]: v })),
      fc.constantFrom(...NAUGHTY).map((s) => JSON.stringify({ ...VALID[ep], messages: [{ role: "user", content: s }], prompt: s, input: s, model: s.length ? s : "x" })),
      fc.constantFrom(...MALFORMED_JSON),
      fc.string({ unit: "binary", maxLength: 300 }),
      fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
      // Valid bodies with a naughty string where a prompt goes: forwarded to the model server.
      fc.constantFrom(...NAUGHTY).map((s) => JSON.stringify({ ...VALID[ep], ...(ep === "/v1/chat/completions" ? { messages: [{ role: "user", content: s }] } : ep === "/v1/completions" ? { prompt: s } : { input: s || "x" }) })),
    );
    const auth = fc.oneof(
      { weight: 6, arbitrary: fc.constant(bearer(keys.a)) },
      { weight: 1, arbitrary: fc.constant("") },
      { weight: 1, arbitrary: fc.string({ unit: "grapheme-ascii", maxLength: 90 }).filter((s) => !/[\r\n\0]/.test(s)).map((s) => `Bearer ${s}`.trim()) },
      { weight: 1, arbitrary: fc.constantFrom(...NAUGHTY).filter((s) => /^[\x20-\x7e]*$/.test(s)) },
    );
    let n = 0;
    for (const ep of POSTS) {
      const cases = fc.sample(fc.tuple(body(ep), auth), { numRuns: 520 * FUZZ_SCALE, seed: FUZZ_SEED + 7 + n++ });
      await runAll(cases, 12, async ([b, a]) => {
        const r = await send(pool, { path: ep, method: "POST", headers: { ...json, host: hostA, ...(a ? { authorization: a } : {}) }, body: b });
        if (r.status === 200) assert.ok(r.body.length > 0);
      });
    }
    // Deep nesting and huge fields (each well under 10 MB).
    const deep = (d: number) => "[".repeat(d) + "]".repeat(d);
    const huge: string[] = [
      `{"model":"llama-3-8b","messages":${deep(100_000)}}`,
      `{"model":"llama-3-8b","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f","parameters":${deep(200_000)}}}]}`,
      `{"model":"llama-3-8b","messages":[{"role":"user","content":"hi"}],"metadata":${"{\"a\":".repeat(50_000)}1${"}".repeat(50_000)}}`,
      JSON.stringify({ model: "x".repeat(5_000_000), messages: [{ role: "user", content: "hi" }] }),
      JSON.stringify({ model: "llama-3-8b", messages: [{ role: "user", content: "x".repeat(2_000_001) }] }),
      JSON.stringify({ model: "llama-3-8b", messages: Array.from({ length: 5000 }, () => ({ role: "user", content: "x" })) }),
      JSON.stringify({ model: "llama-3-8b", prompt: Array.from({ length: 1_048_577 }, () => 1) }),
      JSON.stringify({ model: "llama-3-8b", messages: [{ role: "user", content: "hi" }], logit_bias: Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [String(i), 1])) }),
      JSON.stringify({ model: "llama-3-8b", messages: [{ role: "user", content: "hi" }], max_tokens: 1e300 }),
      JSON.stringify({ model: "llama-3-8b", messages: [{ role: "user", content: "hi" }], n: 16, max_tokens: 1_048_576 }),
      `{"model":"llama-3-8b","messages":[{"role":"user","content":"hi"}]${',"user":"x"'.repeat(200_000)}}`,
      `{${Array.from({ length: 200_000 }, (_, i) => `"k${i}":${i}`).join(",")}}`,
    ];
    for (const ep of POSTS) for (const b of huge) await send(pool, { path: ep, method: "POST", headers: { ...json, host: hostA, authorization: bearer(keys.a) }, body: b });
    // The gateway is still healthy and still serves.
    assert.equal((await send(pool, { path: "/v1/chat/completions", method: "POST", headers: { ...json, host: hostA, authorization: bearer(keys.a) }, body: JSON.stringify(VALID["/v1/chat/completions"]) })).status, 200);
    t.diagnostic(`bodies: ${3 * 520 * FUZZ_SCALE + huge.length * 3} sent`);
    assert.equal(tally.fiveXX, 0, "no 5xx");
    assert.deepEqual(tally.problems.slice(before, before + 10), []);
  });

  it("methods, paths and query strings on the public port: 0 5xx; admin paths are never served there", async () => {
    const before = tally.problems.length;
    const paths = ["/", "/v1", "/v1/", "/v1/models/", "//v1/models", "/V1/MODELS", "/v1/models?x=1&x=2", "/v1/models?%zz", "/v1/%2e%2e/admin/usage",
      "/v1/models/../../admin/usage", "/admin/usage", "/admin/audit", "/metrics", "/openapi.json", "/healthz", "/readyz", "/v1/chat/completions?stream=true", "/v1/embeddings/",
      "/%00", "/v1/models%00", `/v1/${"a".repeat(4000)}`, "/v1/models?" + "a=1&".repeat(1000)];
    const methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];
    const items = paths.flatMap((p) => methods.map((m) => [p, m] as const));
    await runAll(items, 8, async ([p, m]) => {
      const r = await send(pool, { path: p, method: m, headers: { ...json, host: hostA, authorization: bearer(keys.a) }, body: m === "GET" || m === "HEAD" ? undefined : "{}" }, { json: m !== "HEAD" && m !== "OPTIONS" });
      if (/^\/(admin|metrics|openapi|healthz|readyz)/.test(p)) assert.equal(r.status, m === "OPTIONS" ? 404 : 404, `${m} ${p} must not be served on the public port`);
    });
    // Query strings as fast-check generates them, percent-encoded.
    const queries = fc.sample(fc.string({ unit: "binary", maxLength: 60 }), { numRuns: 200 * FUZZ_SCALE, seed: FUZZ_SEED + 11 });
    await runAll(queries, 8, async (q) => { await send(pool, { path: `/v1/models?${pct(q)}=${pct(q)}`, headers: { host: hostA, authorization: bearer(keys.a) } }); });
    assert.equal(tally.fiveXX, 0);
    assert.deepEqual(tally.problems.slice(before, before + 10), []);
  });

  it("admin port: fuzzed tokens, paths and queries never produce a 5xx or leak internals", async (t) => {
    const before = tally.problems.length;
    const paths = ["/admin/usage", "/admin/audit", "/admin", "/admin/", "/admin/usage/", "/admin/../admin/usage", "/ADMIN/USAGE", "/admin/usage%00", "/admin/x", "/nope", "/healthz", "/readyz", "/openapi.json"];
    const params = ["tenant", "environment", "keyPrefix", "action", "from", "to", "limit", "tenant[]", "tenant[a]", "__proto__", "constructor[prototype][x]"];
    const cases = fc.sample(fc.record({
      path: fc.constantFrom(...paths),
      query: fc.array(fc.tuple(fc.constantFrom(...params), fc.oneof(fc.constantFrom(...NAUGHTY), fc.string({ unit: "binary", maxLength: 40 }), fc.constantFrom(tenantA, "2024-01-01T00:00:00Z", "10", "10001", "-1", "clsk_test_00000000", "auth_failed"))), { maxLength: 4 }),
      token: fc.oneof(fc.constant(ADMIN_TOKEN), fc.constant(ADMIN_TOKEN), fc.string({ unit: "grapheme-ascii", maxLength: 60 }).filter((s) => !/[\r\n\0]/.test(s)), fc.constant(undefined)),
      method: fc.constantFrom("GET", "GET", "GET", "POST", "DELETE", "PUT"),
    }), { numRuns: 700 * FUZZ_SCALE, seed: FUZZ_SEED + 13 });
    let fiveXXAdmin = 0;
    const fiveXXExamples: string[] = [];
    await runAll(cases, 6, async (c) => {
      const qs = c.query.map(([k, v]) => `${pct(k)}=${pct(v)}`).join("&");
      const p = `${c.path}${qs ? `?${qs}` : ""}`;
      const r = await send(admin, { path: p, method: c.method, headers: { ...(c.token !== undefined ? { "x-admin-token": c.token.trim() } : {}), ...(c.method === "GET" ? {} : json) }, body: c.method === "GET" ? undefined : "{}" }, { allow5xx: true });
      if (r.status >= 500 && !(c.path === "/readyz")) { fiveXXAdmin++; if (fiveXXExamples.length < 5) fiveXXExamples.push(`${c.method} ${p} (token ${c.token === ADMIN_TOKEN ? "valid" : "invalid"}) → ${r.status} ${r.body.slice(0, 120)}`); }
    });
    // Probes known to reach the database with hostile values, with the valid token.
    for (const v of ["\u0000", "a\u0000b", "\ud800", "' OR 1=1--", "x".repeat(253)]) {
      for (const q of [`tenant=${pct(v)}`, `tenant=${tenantA}&environment=${pct(v)}`]) {
        for (const p of ["/admin/usage", "/admin/audit"]) {
          const r = await send(admin, { path: `${p}?${q}`, headers: { "x-admin-token": ADMIN_TOKEN } }, { allow5xx: true });
          if (r.status >= 500) { fiveXXAdmin++; if (fiveXXExamples.length < 8) fiveXXExamples.push(`GET ${p}?${q} → ${r.status} ${r.body.slice(0, 120)}`); }
        }
      }
    }
    t.diagnostic(`admin: ${cases.length + 20} requests, 5xx ${fiveXXAdmin}${fiveXXExamples.length ? `: ${fiveXXExamples.join(" | ")}` : ""}`);
    assert.deepEqual(tally.problems.slice(before).filter((p) => !/status 5\d\d/.test(p)).slice(0, 10), [], "security headers and clean JSON on every admin answer");
    tally.knownAdmin5xx = fiveXXAdmin;
    assert.equal(fiveXXAdmin, 0, `admin 5xx on hostile query values: ${fiveXXExamples.join(" | ")}`);
    // Values PostgreSQL cannot take (NUL) or that are no Kubernetes name are refused before any query.
    for (const q of ["tenant=%00", "tenant=a%00b", `tenant=${tenantA}&environment=%00`, "tenant=%0Aa", "tenant=%7F"]) {
      for (const p of ["/admin/usage", "/admin/audit"]) {
        const r = await send(admin, { path: `${p}?${q}`, headers: { "x-admin-token": ADMIN_TOKEN } });
        assert.equal(r.status, 400, `${p}?${q}`);
        const body = JSON.parse(r.body) as { error: { code: string; type: string } };
        assert.equal(body.error.code, "invalid_request");
        assert.equal(body.error.type, "invalid_request_error");
      }
    }
  });

  it("header tricks over raw sockets: duplicates, odd Authorization forms, Host tricks, CRLF attempts, oversized headers", async (t) => {
    const good = JSON.stringify(VALID["/v1/chat/completions"]);
    const H = (lines: string[], body = good, target = "/v1/chat/completions", method = "POST") => head(method, target, lines, body);
    const base = [`Host: ${hostA}`, "Content-Type: application/json", "Connection: close"];
    const k = keys.a.key;
    /** [name, request parts, statuses that are acceptable (undefined: any non-5xx)] */
    const cases: Array<[string, Array<string | Buffer>, number[]?]> = [
      ["two Authorization headers, bad first", H([...base, "Authorization: Bearer nope", `Authorization: Bearer ${k}`])],
      ["two Authorization headers, good first", H([...base, `Authorization: Bearer ${k}`, `Authorization: Bearer ${keys.b.key}`])],
      ["Authorization lowercase scheme", H([...base, `Authorization: bearer ${k}`]), [401]],
      ["Authorization uppercase scheme", H([...base, `Authorization: BEARER ${k}`]), [401]],
      ["Authorization two spaces", H([...base, `Authorization: Bearer  ${k}`]), [401]],
      ["Authorization tab", H([...base, `Authorization: Bearer\t${k}`]), [401]],
      ["Authorization trailing garbage", H([...base, `Authorization: Bearer ${k} x`]), [401]],
      ["Authorization Basic", H([...base, `Authorization: Basic ${Buffer.from(`${k}:`).toString("base64")}`]), [401]],
      ["Authorization Token", H([...base, `Authorization: Token ${k}`]), [401]],
      ["key in X-API-Key only", H([...base, `X-API-Key: ${k}`]), [401]],
      ["key in query string", H([...base], good, `/v1/chat/completions?api_key=${k}`), [401]],
      ["Authorization empty", H([...base, "Authorization:"]), [401]],
      ["Authorization 8 KB", H([...base, `Authorization: Bearer ${"a".repeat(8000)}`]), [401]],
      ["Authorization non-ASCII", [Buffer.concat([Buffer.from(`POST /v1/chat/completions HTTP/1.1\r\n${base.join("\r\n")}\r\nAuthorization: Bearer `), Buffer.from("ключ", "utf8"), Buffer.from(`\r\nContent-Length: ${good.length}\r\n\r\n${good}`)])], [401, 400]],
      ["Host uppercase", H([`Host: ${hostA.toUpperCase()}`, "Content-Type: application/json", "Connection: close", `Authorization: Bearer ${k}`]), [200]],
      ["Host with port", H([`Host: ${hostA}:443`, "Content-Type: application/json", "Connection: close", `Authorization: Bearer ${k}`]), [200]],
      ["Host trailing dot", H([`Host: ${hostA}.`, "Content-Type: application/json", "Connection: close", `Authorization: Bearer ${k}`]), [401]],
      ["Host userinfo trick", H([`Host: ${hostB}@${hostA}`, "Content-Type: application/json", "Connection: close", `Authorization: Bearer ${k}`]), [401, 400]],
      ["two Host headers", H([`Host: ${hostB}`, `Host: ${hostA}`, "Content-Type: application/json", "Connection: close", `Authorization: Bearer ${k}`])],
      ["absolute-form target of another host", H([`Host: ${hostB}`, "Content-Type: application/json", "Connection: close", `Authorization: Bearer ${k}`], good, `http://${hostA}/v1/chat/completions`), [401, 404, 400]],
      ["X-Forwarded-Host of another environment", H([`Host: ${hostB}`, `X-Forwarded-Host: ${hostA}`, "Content-Type: application/json", "Connection: close", `Authorization: Bearer ${k}`]), [401]],
      ["X-Forwarded-For spoof (untrusted peer)", H([...base, "X-Forwarded-For: 10.0.0.1, 1.2.3.4", `Authorization: Bearer ${k}`]), [200]],
      ["X-Forwarded-For garbage", H([...base, `X-Forwarded-For: ${"x,".repeat(2000)}`, `Authorization: Bearer ${k}`]), [200]],
      ["X-Request-Id injection", H([...base, "X-Request-Id: ../../etc; DROP", `Authorization: Bearer ${k}`]), [200]],
      ["Expect: 100-continue", H([...base, "Expect: 100-continue", `Authorization: Bearer ${k}`]), [200]],
      ["Content-Encoding gzip (not gzip)", H([...base, "Content-Encoding: gzip", `Authorization: Bearer ${k}`])],
      ["Transfer-Encoding chunked", H([...base, "Transfer-Encoding: chunked", `Authorization: Bearer ${k}`], `${good.length.toString(16)}\r\n${good}\r\n0\r\n\r\n`), [200]],
      ["HTTP/1.0", [`POST /v1/chat/completions HTTP/1.0\r\n${base.join("\r\n")}\r\nAuthorization: Bearer ${k}\r\nContent-Length: ${good.length}\r\n\r\n${good}`], [200]],
      ["100 harmless headers", H([...base, `Authorization: Bearer ${k}`, ...Array.from({ length: 100 }, (_, i) => `X-H${i}: ${i}`)]), [200]],
      ["header value with obs-text", [Buffer.concat([Buffer.from(`POST /v1/chat/completions HTTP/1.1\r\n${base.join("\r\n")}\r\nAuthorization: Bearer ${k}\r\nX-Bytes: `), Buffer.from([0xff, 0xfe, 0x80]), Buffer.from(`\r\nContent-Length: ${good.length}\r\n\r\n${good}`)])]],
    ];
    const problems: string[] = [];
    for (const [name, parts, ok] of cases) {
      const r = await rawRequest(gw.port, parts);
      problems.push(...checkRaw(name, r));
      if (ok && !ok.includes(r.status)) problems.push(`${name} → ${r.status}, expected ${ok.join("/")}`);
    }
    assert.deepEqual(problems, []);

    // Requests Node's HTTP parser rejects before the gateway sees them: smuggling attempts, bare
    // CR/LF, oversized headers, unknown methods. They must never be served, and are counted apart
    // because Node's parser refuses them before the gateway's handler runs.
    const rejected: Array<[string, Array<string | Buffer>]> = [
      ["Content-Length and Transfer-Encoding", H([...base, `Authorization: Bearer ${k}`, `Content-Length: ${good.length}`, "Transfer-Encoding: chunked"], `0\r\n\r\n${good}`)],
      ["two different Content-Lengths", H([...base, `Authorization: Bearer ${k}`, `Content-Length: ${good.length}`, "Content-Length: 5"], good)],
      ["Transfer-Encoding xchunked", H([...base, `Authorization: Bearer ${k}`, "Transfer-Encoding: xchunked"], good)],
      ["bare LF inside a header value", [`POST /v1/chat/completions HTTP/1.1\r\n${base.join("\r\n")}\r\nX-A: a\nInjected: 1\r\nContent-Length: 2\r\n\r\n{}`]],
      ["bare CR inside a header value", [`POST /v1/chat/completions HTTP/1.1\r\n${base.join("\r\n")}\r\nX-A: a\rInjected: 1\r\nContent-Length: 2\r\n\r\n{}`]],
      ["NUL in a header value", [`GET /v1/models HTTP/1.1\r\n${base.join("\r\n")}\r\nX-A: a\u0000b\r\n\r\n`]],
      ["header name with a space", [`GET /v1/models HTTP/1.1\r\n${base.join("\r\n")}\r\nBad Name: x\r\n\r\n`]],
      ["oversized header (64 KB)", [`GET /v1/models HTTP/1.1\r\n${base.join("\r\n")}\r\nX-Big: ${"a".repeat(65_536)}\r\n\r\n`]],
      ["oversized URL (64 KB)", [`GET /v1/models?${"a".repeat(65_536)} HTTP/1.1\r\n${base.join("\r\n")}\r\n\r\n`]],
      ["no Host header", [`GET /v1/models HTTP/1.1\r\nAuthorization: Bearer ${k}\r\nConnection: close\r\n\r\n`]],
      ["unknown method", [`BREW /v1/models HTTP/1.1\r\n${base.join("\r\n")}\r\n\r\n`]],
      ["garbage request line", ["\u0016\u0003\u0001\u0002\u0000\u0001\u0000\u0001\u00fc\u0003\u0003\r\n\r\n"]],
      ["HTTP/2 preface", ["PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"]],
      ["Expect: bogus", H([...base, "Expect: bogus", `Authorization: Bearer ${k}`])],
      ["asterisk target", H([...base, `Authorization: Bearer ${k}`], good, "*")],
      ["invalid chunk size", H([...base, `Authorization: Bearer ${k}`, "Transfer-Encoding: chunked"], "zz\r\n{}\r\n0\r\n\r\n")],
    ];
    const parserProblems: string[] = [];
    for (const [name, parts] of rejected) {
      const r = await rawRequest(gw.port, parts);
      tally.parserRejections++;
      if (r.status === 200 || (r.status >= 500 && r.status !== 505)) parserProblems.push(`${name} → ${r.status} (served or 5xx)`);
      tally.raw++;
      count(r.status);
      const p = r.status === 0 ? [] : responseProblems(r.status, r.headers, r.body);
      if (p.length) parserProblems.push(`${name} → ${r.status} ${JSON.stringify(r.raw.slice(0, 60))}: ${p.slice(0, 2).join("; ")}`);
    }
    const served = parserProblems.filter((p) => p.includes("served or 5xx"));
    assert.deepEqual(served, [], "never served, never a 5xx");
    t.diagnostic(`raw header cases: ${cases.length} gateway-handled, ${rejected.length} rejected by Node's parser`);
    // The gateway's clientError/checkExpectation handlers answer these with the catalog's JSON and every security header.
    assert.deepEqual(parserProblems, [], `malformed requests answered without JSON or security headers: ${parserProblems.length} of ${rejected.length}`);
  });

  it("content-type tricks: only application/json is read; everything else is 415", async () => {
    const body = JSON.stringify(VALID["/v1/chat/completions"]);
    const accepted = ["application/json", "application/json; charset=utf-8", "APPLICATION/JSON", "Application/Json ; charset=UTF-8", "application/json;"];
    const refused = ["", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonx", "application/json-patch+json", "application/vnd.api+json",
      "text/json", "json", "application/xml", "*/*", "application/javascript", "application/x-json", "application/json, text/plain" /* a list is not a media type */, "text/plain; application/json"];
    for (const ct of accepted) {
      const r = await send(pool, { path: "/v1/chat/completions", method: "POST", headers: { "content-type": ct, host: hostA, authorization: bearer(keys.a) }, body });
      assert.equal(r.status, 200, `${ct} accepted`);
    }
    for (const ct of refused) {
      for (const ep of POSTS) {
        const r = await send(pool, { path: ep, method: "POST", headers: { ...(ct ? { "content-type": ct } : {}), host: hostA, authorization: bearer(keys.a) }, body });
        assert.equal(r.status, 415, `${JSON.stringify(ct)} on ${ep} → ${r.status}`);
        assert.equal(JSON.parse(r.body).error.code, "unsupported_media_type");
      }
    }
  });

  it("slow bodies are read correctly, and 40 stalled connections do not stop others from being served", async () => {
    const body = JSON.stringify(VALID["/v1/chat/completions"]);
    const [requestHead] = head("POST", "/v1/chat/completions", [`Host: ${hostA}`, "Content-Type: application/json", `Authorization: Bearer ${keys.a.key}`, "Connection: close", `Content-Length: ${body.length}`]);
    const chunks = body.match(/.{1,8}/gs)!;
    const slow = await rawRequest(gw.port, [requestHead!, ...chunks], { gapMs: 40, timeoutMs: 10_000 });
    assert.deepEqual(checkRaw("slow body", slow), []);
    assert.equal(slow.status, 200, "a body dribbled 8 bytes at a time is read whole");

    // Slowloris: 40 connections that send half a request and stall (headers, or a body shorter than declared).
    const stalled = Array.from({ length: 40 }, (_, i) => rawRequest(gw.port, i % 2
      ? [`POST /v1/chat/completions HTTP/1.1\r\nHost: ${hostA}\r\nX-Slow: `]
      : [`POST /v1/chat/completions HTTP/1.1\r\nHost: ${hostA}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"model":`], { timeoutMs: 4000 }));
    await sleep(300);
    const t0 = performance.now();
    const r = await send(pool, { path: "/v1/chat/completions", method: "POST", headers: { ...json, host: hostA, authorization: bearer(keys.a) }, body });
    const ms = performance.now() - t0;
    assert.equal(r.status, 200);
    assert.ok(ms < 3000, `served in ${ms.toFixed(0)} ms while 40 connections stall`);
    for (const s of await Promise.all(stalled)) assert.ok(s.status === 0 || (s.status >= 400 && s.status < 500), `a stalled request is never answered with ${s.status}`);
  });

  it("hostile CORS origins are never echoed; the listed origin is", async () => {
    const hostile = ["null", `${ORIGIN}.evil.com`, "https://evilapp.example.com", "https://evil.com/https://app.example.com", "HTTPS://APP.EXAMPLE.COM", "https://App.Example.com", "http://app.example.com",
      `${ORIGIN}:443`, `${ORIGIN}/`, `${ORIGIN}.`, "https://app.exаmple.com" /* Cyrillic а */, "https://xn--app-example-com", `${ORIGIN}%00`, "*", "https://app.example.com%2eevil.com",
      "https://app.example.co", "https://example.com", "file://", "https://app.example.com@evil.com", `${ORIGIN}, https://evil.com`, "https://evil.com", "chrome-extension://abcdef"];
    const reqs = (origin: string): Array<[string, Array<string | Buffer>]> => [
      ["OPTIONS /v1/chat/completions", head("OPTIONS", "/v1/chat/completions", [`Host: ${hostA}`, `Origin: ${origin}`, "Access-Control-Request-Method: POST", "Access-Control-Request-Headers: authorization, content-type", "Connection: close"])],
      ["GET /v1/models", head("GET", "/v1/models", [`Host: ${hostA}`, `Origin: ${origin}`, `Authorization: Bearer ${keys.a.key}`, "Connection: close"])],
      ["POST /v1/chat/completions", head("POST", "/v1/chat/completions", [`Host: ${hostA}`, `Origin: ${origin}`, `Authorization: Bearer ${keys.a.key}`, "Content-Type: application/json", "Connection: close"], JSON.stringify(VALID["/v1/chat/completions"]))],
      ["GET /v1/models with a bad key", head("GET", "/v1/models", [`Host: ${hostA}`, `Origin: ${origin}`, "Authorization: Bearer nope", "Connection: close"])],
    ];
    const echoed: string[] = [];
    const problems: string[] = [];
    for (const origin of hostile) {
      for (const [name, parts] of reqs(origin)) {
        const r = await rawRequest(gw.port, parts);
        problems.push(...checkRaw(`${name} Origin ${JSON.stringify(origin)}`, r, { json: !name.startsWith("OPTIONS") }));
        const acao = r.headers["access-control-allow-origin"];
        if (acao !== undefined || r.headers["access-control-allow-credentials"] !== undefined) echoed.push(`${name} Origin ${JSON.stringify(origin)} → ACAO ${JSON.stringify(acao)}`);
      }
    }
    assert.deepEqual(echoed, []);
    assert.deepEqual(problems, []);
    for (const [name, parts] of reqs(ORIGIN).slice(0, 3)) {
      const r = await rawRequest(gw.port, parts);
      assert.equal(r.headers["access-control-allow-origin"], ORIGIN, `${name}: the listed origin is allowed`);
    }
    // The same origin on another environment's hostname is not allowed there.
    const other = await send(pool, { path: "/v1/models", headers: { host: hostB, origin: ORIGIN, authorization: bearer(keys.b) } });
    assert.equal(other.status, 200);
    assert.equal(other.headers["access-control-allow-origin"], undefined);
  });

  it("body limit is exact: 10 MB accepted, one byte more refused with 413, chunked too", async () => {
    const shell = (pad: number) => {
      // Six messages ≤ 2,000,000 characters each (the per-field limit), padded to the exact size.
      const msgs = Array.from({ length: 6 }, () => ({ role: "user", content: "" }));
      const empty = JSON.stringify({ model: "llama-3-8b", max_tokens: 1, messages: msgs }).length;
      let left = pad - empty;
      for (const m of msgs) { const n = Math.min(1_900_000, left); m.content = "a".repeat(n); left -= n; }
      const s = JSON.stringify({ model: "llama-3-8b", max_tokens: 1, messages: msgs });
      assert.equal(Buffer.byteLength(s), pad);
      return s;
    };
    const exact = shell(MAX);
    const over = shell(MAX + 1);
    const h = { ...json, host: hostA, authorization: bearer(keys.a) };
    assert.equal((await send(pool, { path: "/v1/chat/completions", method: "POST", headers: h, body: exact })).status, 200, "exactly 10 MB (Content-Length)");
    // One byte over, declared: refused from the headers alone, before any of the body is read.
    const declared = await rawRequest(gw.port, [head("POST", "/v1/chat/completions", [`Host: ${hostA}`, "Content-Type: application/json", `Authorization: Bearer ${keys.a.key}`, `Content-Length: ${MAX + 1}`, "Connection: close"])[0]!]);
    assert.deepEqual(checkRaw("10 MB + 1 declared", declared), []);
    assert.equal(declared.status, 413);
    assert.equal(JSON.parse(declared.body).error.code, "payload_too_large");
    // Chunked: no Content-Length, the limit is counted on the wire.
    const chunked = async (s: string, terminate: boolean) => {
      const buf = Buffer.from(s);
      const pieces = [head("POST", "/v1/chat/completions", [`Host: ${hostA}`, "Content-Type: application/json", `Authorization: Bearer ${keys.a.key}`, "Transfer-Encoding: chunked", "Connection: close"])[0]!];
      const parts: Buffer[] = [];
      for (let i = 0; i < buf.length; i += 1 << 20) { const c = buf.subarray(i, i + (1 << 20)); parts.push(Buffer.from(`${c.length.toString(16)}\r\n`), c, Buffer.from("\r\n")); }
      if (terminate) parts.push(Buffer.from("0\r\n\r\n"));
      return rawRequest(gw.port, [...pieces, Buffer.concat(parts)], { timeoutMs: 20_000 });
    };
    const c1 = await chunked(exact, true);
    assert.deepEqual(checkRaw("chunked 10 MB", c1), []);
    assert.equal(c1.status, 200, "exactly 10 MB chunked");
    // 10 MB + 1 chunked; the client stops after the excess byte and waits for the answer.
    const c2 = await chunked(over, false);
    assert.deepEqual(checkRaw("chunked 10 MB + 1", c2), []);
    assert.equal(c2.status, 413, "10 MB + 1 chunked");
  });

  it("a client that sends a whole over-limit body still receives the 413", async (t) => {
    const over = Buffer.alloc(MAX + 1, 0x20);
    over[0] = 0x7b; over[over.length - 1] = 0x7d;
    let answered = 0;
    const attempts = 3;
    for (let i = 0; i < attempts; i++) {
      const r = await rawRequest(gw.port, head("POST", "/v1/embeddings", [`Host: ${hostA}`, "Content-Type: application/json", `Authorization: Bearer ${keys.a.key}`, "Connection: close"], over), { timeoutMs: 20_000 });
      if (r.status === 413) answered++;
    }
    t.diagnostic(`whole over-limit body: 413 received in ${answered} of ${attempts} attempts`);
    assert.equal(answered, attempts, `413 received in ${answered} of ${attempts} attempts`);
  });

  it("key matrix: malformed, truncated, revoked, expired, other tenant's, other environment's, suspended, read-only on inference → 0 accepted", async (t) => {
    const k = keys.a.key;
    // Positive controls first: the keys that are refused below work where they belong.
    const ok = (key: string, host: string, ep: string) => send(pool, ep === "/v1/models"
      ? { path: ep, headers: { host, authorization: `Bearer ${key}` } }
      : { path: ep, method: "POST", headers: { ...json, host, authorization: `Bearer ${key}` }, body: JSON.stringify(VALID[ep as (typeof POSTS)[number]]) });
    assert.equal((await ok(keys.revoked.key, hostA, "/v1/chat/completions")).status, 200, "the key to be revoked works before");
    assert.equal((await ok(keys.a2.key, hostA2, "/v1/chat/completions")).status, 200, "the staging key works on its own hostname");
    assert.equal((await ok(keys.b.key, hostB, "/v1/chat/completions")).status, 200, "tenant B's key works on B's hostname");
    assert.equal((await ok(keys.readOnly.key, hostA, "/v1/models")).status, 200, "a read-only key may list models");
    assert.equal((await ok(keys.modelLimited.key, hostA, "/v1/embeddings")).status, 200, "a model-limited key may use its model");

    const redis = new Redis(env.REDIS_URL);
    await redis.publish(REVOCATION_CHANNEL, JSON.stringify({ type: "key_revoked", hash: keys.revoked.entry.hash, prefix: keys.revoked.entry.prefix }));
    redis.disconnect();
    await until("the revocation to apply", async () => (await ok(keys.revoked.key, hostA, "/v1/models")).status === 401, 5000, 50);

    const flip = (c: string) => (c === "0" ? "1" : "0");
    const bad: Array<[string, string | undefined, string, number[]]> = [
      ["missing", undefined, hostA, [401]],
      ["empty bearer", "Bearer ", hostA, [401]],
      ["scheme only", "Bearer", hostA, [401]],
      ["truncated by one", `Bearer ${k.slice(0, -1)}`, hostA, [401]],
      ["truncated to the prefix", `Bearer ${keys.a.entry.prefix}`, hostA, [401]],
      ["one extra character", `Bearer ${k}0`, hostA, [401]],
      ["last character changed", `Bearer ${k.slice(0, -1)}${flip(k.at(-1)!)}`, hostA, [401]],
      ["uppercase hex", `Bearer ${k.slice(0, 10)}${k.slice(10).toUpperCase()}`, hostA, [401]],
      ["live instead of test", `Bearer ${k.replace("clsk_test_", "clsk_live_")}`, hostA, [401]],
      ["hash instead of key", `Bearer ${keys.a.entry.hash}`, hostA, [401]],
      ["revoked", `Bearer ${keys.revoked.key}`, hostA, [401]],
      ["expired", `Bearer ${keys.expired.key}`, hostA, [401]],
      ["other tenant's key on A's hostname", `Bearer ${keys.b.key}`, hostA, [401]],
      ["A's key on the other tenant's hostname", `Bearer ${k}`, hostB, [401]],
      ["other environment's key (staging) on A's hostname", `Bearer ${keys.a2.key}`, hostA, [401]],
      ["A's key on its staging environment's hostname", `Bearer ${k}`, hostA2, [401]],
      ["A's key on an unknown hostname", `Bearer ${k}`, "127.0.0.1", [401]],
      ["suspended tenant's key", `Bearer ${keys.suspended.key}`, "127.0.0.1", [403]],
      ["read-only key", `Bearer ${keys.readOnly.key}`, hostA, [403]],
    ];
    let attempts = 0;
    let accepted = 0;
    const wrong: string[] = [];
    for (const [name, auth, host, expected] of bad) {
      for (const ep of ["/v1/models", ...POSTS] as const) {
        if (name === "read-only key" && ep === "/v1/models") continue;
        const r = await send(pool, ep === "/v1/models"
          ? { path: ep, headers: { host, ...(auth !== undefined ? { authorization: auth } : {}) } }
          : { path: ep, method: "POST", headers: { ...json, host, ...(auth !== undefined ? { authorization: auth } : {}) }, body: JSON.stringify(VALID[ep]) });
        attempts++;
        if (r.status < 300) accepted++;
        if (!expected.includes(r.status)) wrong.push(`${name} on ${ep} → ${r.status}`);
      }
    }
    // A model-limited key on another model, and any key on a model of another tenant.
    for (const [name, key, model] of [["model outside the key's list", keys.modelLimited.key, "llama-3-8b"], ["tenant B's model with A's key", k, "b-only"]] as const) {
      const r = await send(pool, { path: "/v1/chat/completions", method: "POST", headers: { ...json, host: hostA, authorization: `Bearer ${key}` }, body: JSON.stringify({ ...VALID["/v1/chat/completions"], model }) });
      attempts++;
      if (r.status < 300) accepted++;
      if (r.status !== 403 && r.status !== 404) wrong.push(`${name} → ${r.status}`);
    }
    t.diagnostic(`key matrix: ${attempts} attempts, ${accepted} accepted`);
    assert.deepEqual(wrong, []);
    assert.equal(accepted, 0);
  });

  it("admin token check takes the same time for a near miss and a far miss (interleaved samples)", async (t) => {
    const near = ADMIN_TOKEN.slice(0, -1) + (ADMIN_TOKEN.at(-1) === "A" ? "B" : "A");
    const far = randomBytes(33).toString("base64url");
    const client = new Client(gw.adminUrl, { pipelining: 0 });
    const time = async (token: string) => {
      const t0 = performance.now();
      const r = await client.request({ path: "/admin/audit?limit=1", method: "GET", headers: { "x-admin-token": token } });
      await r.body.dump();
      const ms = performance.now() - t0;
      assert.equal(r.statusCode, 401);
      return ms;
    };
    for (let i = 0; i < 100; i++) await time(i % 2 ? near : far); // warm-up (JIT, connection)
    const N = 1200;
    const samples = { near: [] as number[], far: [] as number[] };
    for (let i = 0; i < N; i++) {
      // Random order within each pair: drift and periodic noise hit both equally.
      const first = Math.random() < 0.5;
      const a = await time(first ? near : far);
      const b = await time(first ? far : near);
      samples.near.push(first ? a : b);
      samples.far.push(first ? b : a);
    }
    await client.close();
    tally.sent += 2 * N + 100;
    const sorted = (xs: number[]) => [...xs].sort((x, y) => x - y);
    const q = (xs: number[], p: number) => sorted(xs)[Math.floor(p * (xs.length - 1))]!;
    const med = { near: q(samples.near, 0.5), far: q(samples.far, 0.5) };
    const pairDiffs = samples.near.map((x, i) => x - samples.far[i]!);
    const medDiff = q(pairDiffs, 0.5);
    // Share of pairs where the near miss was slower: 0.5 when the check is constant time.
    const slower = pairDiffs.filter((d) => d > 0).length / N;
    const us = (ms: number) => `${(ms * 1000).toFixed(1)} µs`;
    t.diagnostic(`admin token timing: ${N} interleaved pairs; median near ${us(med.near)}, far ${us(med.far)}; median paired difference ${us(medDiff)}; near slower in ${(slower * 100).toFixed(1)}% of pairs`);
    // Generous bounds (a noisy shared 2-core machine): a token check that returned early on the
    // first differing byte of a 44-character token would not be visible over HTTP, but one that
    // does any per-character work, a lookup or a delay for "close" guesses would.
    assert.ok(Math.abs(medDiff) < Math.max(0.05, 0.15 * med.far), `median paired difference ${us(medDiff)}`);
    assert.ok(slower > 0.4 && slower < 0.6, `near miss slower in ${(slower * 100).toFixed(1)}% of pairs`);
  });

  it("after all of it: no 5xx anywhere, the gateway healthy, and no stack trace in its log", async () => {
    assert.equal(tally.fiveXX - tally.knownAdmin5xx, 0, `5xx seen: ${tally.fiveXX} (of which the admin todo: ${tally.knownAdmin5xx})`);
    const health = await send(admin, { path: "/healthz" });
    assert.equal(health.status, 200);
    const log = fs.readFileSync(gw.logFile, "utf8");
    assert.doesNotMatch(log, /Request failed|internal_error|uncaught|unhandled/i, "no request reached the internal-error path");
    assert.ok(!gw.process.exited());
  });
});

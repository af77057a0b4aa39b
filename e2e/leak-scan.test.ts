/**
 * Canary-key leak scan. One key (the canary) is used through a whole run against a real gateway
 * process — successful plain and streamed requests, rate-limit refusals, every kind of bad request,
 * the key sent where it does not belong (admin token, query string, body), then revoked and used
 * again — and afterwards every place it could have ended up is searched: the processes' log files,
 * every response (status line, headers, body), every Redis key and value, and every row of every
 * table in the run's PostgreSQL database. The key must appear nowhere; its prefix (what may be
 * logged) must be found, which proves the scan reaches the data.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { Redis } from "ioredis";
import pg from "pg";
import { request } from "undici";
import { REVOCATION_CHANNEL } from "@crosslogic/crds";
import { createTestDatabase } from "@crosslogic/testenv";
import type { ManagedProcess } from "@crosslogic/testenv/process";
import { migrateDatabase } from "@crosslogic/testenv/product";
import { testEnv } from "@crosslogic/testenv/test-env";
import { startLoopbackModelServer } from "./support.ts";
import { makeDoc, makeKey, startGatewayProcess, suffix, until, writeDoc, type GatewayProcess } from "./support/gateway.ts";
import { head, rawRequest } from "./support/raw.ts";

const env = testEnv();
const id = suffix(3);
const logDir = fs.mkdtempSync(path.join(os.tmpdir(), `e2e-leak-${id}-`));
const configDir = fs.mkdtempSync(path.join(os.tmpdir(), `e2e-leak-cfg-${id}-`));
const host = `leak-${id}.e2e.test`;
const tenant = `leak-${id}`;
const prefix = `e2e-leak-${id}:`;
const canary = makeKey({ limits: { requestsPerMinute: 40, tokensPerMinute: 0, concurrency: 4 }, models: ["llama-3-8b", "bge-small"] });
const other = makeKey();
/** Forms of the canary that must not appear: the key, its secret part, and its base64. */
const needles = [canary.key, canary.key.slice(10), Buffer.from(canary.key).toString("base64"), canary.key.slice(10, 50)];

describe("canary key leak scan", { timeout: 120_000 }, () => {
  let gw: GatewayProcess;
  let model: { url: string; process: ManagedProcess };
  let db: { url: string; drop(): Promise<void> };
  const responses: string[] = [];
  const scanned = { logBytes: 0, responses: 0, redisKeys: 0, tables: 0, rows: 0 };

  async function call(p: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}, base?: string): Promise<{ status: number; text: string }> {
    const res = await request(`${base ?? gw.url}${p}`, { method: (init.method ?? "GET") as "GET", headers: { host, ...init.headers }, body: init.body ?? null });
    const text = await res.body.text();
    responses.push(`${res.statusCode} ${JSON.stringify(res.headers)}\n\n${text}`);
    return { status: res.statusCode, text };
  }
  const auth = (k = canary.key) => ({ authorization: `Bearer ${k}`, "content-type": "application/json" });
  const chat = (extra: object = {}) => JSON.stringify({ model: "llama-3-8b", messages: [{ role: "user", content: "Say hello" }], max_tokens: 8, ...extra });

  before(async () => {
    db = await createTestDatabase(env.DATABASE_URL, "leakscan");
    await migrateDatabase(db.url);
    model = await startLoopbackModelServer(`leak-${id}`, ["llama-3-8b", "bge-small", "other"], logDir);
    writeDoc(configDir, "leak", makeDoc({ tenant, hostnames: [host], modelUrl: model.url, models: ["llama-3-8b", "bge-small", "other"], keys: [canary, other], origins: ["https://app.example.com"] }));
    gw = await startGatewayProcess({
      name: "gateway-leak", logDir, configDir, redisUrl: env.REDIS_URL, databaseUrl: db.url, adminToken: randomBytes(32).toString("base64url"), redisKeyPrefix: prefix,
      env: { LOG_LEVEL: "debug", USAGE_FLUSH_INTERVAL_MS: "100", VIOLATION_DELAY_AFTER: "1000", VIOLATION_BLOCK_AFTER: "1000" },
    });
    await until("the gateway to accept the canary", async () => (await call("/v1/models", { headers: auth() })).status === 200, 15_000);
  });

  after(async () => {
    console.log(`leak scan: ${scanned.logBytes} log bytes, ${scanned.responses} responses, ${scanned.redisKeys} Redis keys, ${scanned.rows} rows in ${scanned.tables} tables searched`);
    await gw?.stop();
    await model?.process.stop();
    await db?.drop().catch(() => {});
    const redis = new Redis(env.REDIS_URL);
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
    fs.rmSync(configDir, { recursive: true, force: true });
    fs.rmSync(logDir, { recursive: true, force: true });
  });

  it("the canary is used through a whole run: success, streaming, refusals, misuse, revocation", async () => {
    // Successes.
    assert.equal((await call("/v1/chat/completions", { method: "POST", headers: auth(), body: chat() })).status, 200);
    const streamed = await call("/v1/chat/completions", { method: "POST", headers: auth(), body: chat({ stream: true }) });
    assert.equal(streamed.status, 200);
    assert.match(streamed.text, /data: \[DONE\]/);
    assert.equal((await call("/v1/completions", { method: "POST", headers: auth(), body: JSON.stringify({ model: "llama-3-8b", prompt: "hi", max_tokens: 4 }) })).status, 200);
    assert.equal((await call("/v1/embeddings", { method: "POST", headers: auth(), body: JSON.stringify({ model: "bge-small", input: "hi" }) })).status, 200);
    // Every kind of refusal with the canary attached.
    const refusals: Array<[string, Promise<{ status: number }>, number]> = [
      ["invalid JSON", call("/v1/chat/completions", { method: "POST", headers: auth(), body: "{" }), 400],
      ["schema violation", call("/v1/chat/completions", { method: "POST", headers: auth(), body: JSON.stringify({ model: "llama-3-8b", messages: "x" }) }), 400],
      ["unsupported media type", call("/v1/chat/completions", { method: "POST", headers: { authorization: `Bearer ${canary.key}`, "content-type": "text/plain" }, body: chat() }), 415],
      ["model outside the key's list", call("/v1/chat/completions", { method: "POST", headers: auth(), body: chat({ model: "other" }) }), 403],
      ["model outside the key's list and the environment", call("/v1/chat/completions", { method: "POST", headers: auth(), body: chat({ model: "nope" }) }), 403],
      ["wrong hostname", call("/v1/models", { headers: { ...auth(), host: "elsewhere.e2e.test" } }), 401],
      ["unknown endpoint", call("/v1/nothing", { headers: auth() }), 404],
      ["wrong method", call("/v1/chat/completions", { method: "PUT", headers: auth(), body: chat() }), 405],
      ["truncated canary", call("/v1/models", { headers: auth(canary.key.slice(0, -1)) }), 401],
      ["canary in the query string", call(`/v1/models?api_key=${canary.key}`, {}), 401],
      ["canary in X-Request-Id", call("/v1/models", { headers: { ...auth(), "x-request-id": canary.key } }), 200],
      ["canary in X-Forwarded-For", call("/v1/models", { headers: { ...auth(), "x-forwarded-for": canary.key } }), 200],
      // A plausible mistake (arguments swapped): the key sent as the model name.
      ["canary as the model name", call("/v1/chat/completions", { method: "POST", headers: auth(), body: chat({ model: canary.key }) }), 403],
      ["canary as the model name, other key", call("/v1/chat/completions", { method: "POST", headers: auth(other.key), body: chat({ model: canary.key }) }), 404],
      ["canary as the user field", call("/v1/chat/completions", { method: "POST", headers: auth(), body: chat({ user: canary.key, max_tokens: 0 }) }), 400],
      ["canary as an Origin", call("/v1/models", { headers: { ...auth(), origin: `https://${canary.key}.example.com` } }), 200],
    ];
    for (const [name, p, want] of refusals) assert.equal((await p).status, want, name);
    // Over the canary's rate limit (40/min): 429s with their headers.
    let limited = 0;
    for (let i = 0; i < 45; i++) if ((await call("/v1/models", { headers: auth() })).status === 429) limited++;
    assert.ok(limited > 0, "the canary hit its rate limit");
    // Oversized body (413) and the canary as an admin token, on the admin port.
    const big = await rawRequest(gw.port, head("POST", "/v1/chat/completions", [`Host: ${host}`, `Authorization: Bearer ${canary.key}`, "Content-Type: application/json", `Content-Length: ${10 * 1024 * 1024 + 1}`, "Connection: close"]));
    responses.push(big.raw);
    assert.equal(big.status, 413);
    assert.equal((await call("/admin/usage?tenant=x", { headers: { "x-admin-token": canary.key } }, gw.adminUrl)).status, 401);
    assert.equal((await call(`/admin/usage?tenant=${canary.key}`, { headers: { "x-admin-token": canary.key } }, gw.adminUrl)).status, 401);
    // Revoked, then used again (the audit log records the refusal with the prefix).
    const redis = new Redis(env.REDIS_URL);
    await redis.publish(REVOCATION_CHANNEL, JSON.stringify({ type: "key_revoked", hash: canary.entry.hash, prefix: canary.entry.prefix }));
    redis.disconnect();
    await until("the revocation", async () => (await call("/v1/models", { headers: auth() })).status === 401, 5000, 50);
    // Usage and audit reach PostgreSQL; then the gateway stops (flushing what is left).
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      await until("usage rows", async () => Number((await client.query(`select count(*) from "UsageRecord" where "keyPrefix" = $1`, [canary.entry.prefix])).rows[0].count) >= 4, 10_000);
    } finally { await client.end(); }
    await gw.stop();
  });

  it("the canary appears in no log file, response, Redis key or value, or database row; its prefix does", async () => {
    const found: string[] = [];
    const search = (where: string, text: string) => { for (const n of needles) if (text.includes(n)) found.push(`${where}: …${text.slice(Math.max(0, text.indexOf(n) - 60), text.indexOf(n) + 20)}…`); };
    const prefixSeen = { logs: false, db: false, redis: false };

    for (const f of fs.readdirSync(logDir)) {
      const text = fs.readFileSync(path.join(logDir, f), "utf8");
      scanned.logBytes += text.length;
      search(`log ${f}`, text);
      if (text.includes(canary.entry.prefix)) prefixSeen.logs = true;
    }
    for (const r of responses) { scanned.responses++; search("response", r); }

    const redis = new Redis(env.REDIS_URL);
    try {
      let cursor = "0";
      do {
        const [next, keys] = await redis.scan(cursor, "COUNT", 1000);
        cursor = next;
        for (const k of keys) {
          scanned.redisKeys++;
          search(`Redis key ${k}`, k);
          const type = await redis.type(k);
          const value = type === "string" ? await redis.getBuffer(k).then((b) => b?.toString("latin1") ?? "")
            : type === "hash" ? JSON.stringify(await redis.hgetall(k))
            : type === "zset" ? (await redis.zrange(k, 0, -1, "WITHSCORES")).join(" ")
            : type === "set" ? (await redis.smembers(k)).join(" ")
            : type === "list" ? (await redis.lrange(k, 0, -1)).join(" ")
            : type === "stream" ? JSON.stringify(await redis.xrange(k, "-", "+"))
            : "";
          search(`Redis ${type} ${k}`, value);
          if (k.startsWith(prefix) && (k.includes(canary.entry.hash) || value.includes(canary.entry.hash))) prefixSeen.redis = true;
        }
      } while (cursor !== "0");
    } finally { redis.disconnect(); }

    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      const tables = (await client.query<{ schema: string; name: string }>(
        `select table_schema as schema, table_name as name from information_schema.tables where table_type = 'BASE TABLE' and table_schema not in ('pg_catalog', 'information_schema')`)).rows;
      for (const t of tables) {
        scanned.tables++;
        const rows = (await client.query<{ j: string }>(`select row_to_json(x)::text as j from "${t.schema}"."${t.name}" x`)).rows;
        for (const r of rows) {
          scanned.rows++;
          search(`table ${t.name}`, r.j);
          if (r.j.includes(canary.entry.prefix)) prefixSeen.db = true;
        }
      }
    } finally { await client.end(); }

    // A key sent as the model name (refused) is not recorded: audit details carry a model only when
    // it is one of the environment's, and every audit/log field is redacted.
    assert.deepEqual(found, [], "the canary key leaked");
    assert.deepEqual(prefixSeen, { logs: true, db: true, redis: true }, "the scan reached the logs, the database and Redis (the prefix and hash are there)");
    assert.ok(scanned.rows > 0 && scanned.redisKeys > 0 && scanned.responses > 60);
  });
});

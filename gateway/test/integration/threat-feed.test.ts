/**
 * Threat-intelligence feeds through the real gateway (Redis, a loopback upstream, the official
 * `openai` SDK): addresses listed by a file, a directory (a mounted ConfigMap) and a URL are refused
 * with 403 `address_blocked` before anything else (security headers, connection closed, nothing in
 * Redis for them); others are served; a changed URL feed takes effect at the next refresh; a feed
 * that fails keeps its last list; a feed down at start does not stop the gateway.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { Redis } from "ioredis";
import OpenAI from "openai";
import { request } from "undici";
import { testEnv } from "@crosslogic/testenv/test-env";
import { securityHeaders } from "../../src/headers.ts";
import { makeDoc, makeKey, type TestKey } from "../fixtures.ts";
import { eventually, startHarness, type Harness } from "../harness.ts";

const env = testEnv();

/** An OpenAI-compatible upstream answering every chat completion. */
function startUpstream(): Promise<{ url: string; hits: () => number; close(): Promise<void> }> {
  let hits = 0;
  const server = http.createServer((req, res) => {
    hits++;
    req.resume();
    req.on("end", () => {
      const out = JSON.stringify({ id: "c1", object: "chat.completion", created: 0, model: "llama-3-8b", choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } });
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(out) });
      res.end(out);
    });
  });
  return new Promise((r) => server.listen(0, "127.0.0.1", () => r({
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits: () => hits,
    close: () => new Promise<void>((c) => { server.closeAllConnections(); server.close(() => c()); }),
  })));
}

/** A feed served over HTTP on loopback, whose body and status the test changes. */
function startFeedServer(): Promise<{ url: string; body: string; status: number; close(): Promise<void> }> {
  const state = { url: "", body: "", status: 200, close: async () => {} };
  const server = http.createServer((_req, res) => { res.writeHead(state.status, { "content-type": "text/plain" }); res.end(state.body); });
  return new Promise((r) => server.listen(0, "127.0.0.1", () => {
    state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/drop.txt?key=feed-secret`;
    state.close = () => new Promise<void>((c) => { server.closeAllConnections(); server.close(() => c()); });
    r(state);
  }));
}

describe("threat-intelligence feeds in the gateway", () => {
  let h: Harness;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let feed: Awaited<ReturnType<typeof startFeedServer>>;
  let key: TestKey;
  let dir: string;
  const redis = new Redis(env.REDIS_URL, { lazyConnect: true });
  /** A chat completion as if from `ip` (the gateway trusts X-Forwarded-For from loopback here). */
  const from = (ip: string) => new OpenAI({ apiKey: key.key, baseURL: `${h.gw.url}/v1`, maxRetries: 0, defaultHeaders: { "x-forwarded-for": ip } })
    .chat.completions.create({ model: "llama-3-8b", messages: [{ role: "user", content: "hi" }] });
  const refused = (e: unknown) => e instanceof OpenAI.PermissionDeniedError && (e.error as { code?: string } | undefined)?.code === "address_blocked";
  const metric = async (name: string, labels = "") => {
    const m = await h.gw.metrics.registry.getSingleMetricAsString(name);
    const line = m.split("\n").find((l) => l.startsWith(`${name}${labels}`) && !l.startsWith("#"));
    return line ? Number(line.split(" ").at(-1)) : 0;
  };

  before(async () => {
    await redis.connect();
    upstream = await startUpstream();
    feed = await startFeedServer();
    feed.body = "# url feed\n198.51.100.0/24\n";
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "gw-threats-"));
    const file = path.join(dir, "drop.txt");
    fs.writeFileSync(file, "; Spamhaus DROP style\n203.0.113.0/24 ; SBL1\n2001:db8:bad::/48 ; SBL2\n");
    const mounted = path.join(dir, "configmap");
    fs.mkdirSync(mounted);
    fs.writeFileSync(path.join(mounted, "firehol.netset"), "# firehol\n192.0.2.7\n");
    fs.writeFileSync(path.join(mounted, ".hidden"), "10.9.9.9\n"); // kubelet's ..data entries start with a dot: skipped
    key = makeKey();
    h = await startHarness({
      REDIS_URL: env.REDIS_URL, TRUSTED_PROXIES: "127.0.0.1", THREAT_FEEDS: `${file},${mounted},${feed.url},http://127.0.0.1:1/down.txt`, THREAT_FEED_REFRESH_SECONDS: "1",
    }, { doc: makeDoc({ keys: [key], modelUrl: upstream.url }) });
    await eventually(() => h.gw.store.key(key.entry.hash));
  });
  after(async () => { await h?.stop(); await upstream?.close(); await feed?.close(); redis.disconnect(); if (dir) fs.rmSync(dir, { recursive: true, force: true }); });

  it("refuses addresses listed by a file, a directory and a URL with 403 address_blocked; serves the others", async () => {
    for (const ip of ["203.0.113.200", "2001:db8:bad::1", "192.0.2.7", "198.51.100.42"]) await assert.rejects(from(ip), refused, ip);
    for (const ip of ["203.0.114.1", "2001:db8:bae::1", "192.0.2.8", "10.9.9.9"]) assert.equal((await from(ip)).choices[0]!.message.content, "ok", ip);
  });

  it("a refusal carries the security headers and closes the connection, and nothing of it reaches the upstream or Redis", async () => {
    const hits = upstream.hits();
    const res = await request(`${h.gw.url}/v1/chat/completions`, {
      method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${key.key}`, "x-forwarded-for": "203.0.113.99" },
      body: JSON.stringify({ model: "llama-3-8b", messages: [{ role: "user", content: "hi" }] }),
    });
    const body = await res.body.json() as { error: { code: string; message: string } };
    assert.equal(res.statusCode, 403);
    assert.equal(body.error.code, "address_blocked");
    assert.equal(res.headers.connection, "close");
    for (const [name, value] of securityHeaders) assert.equal(res.headers[name.toLowerCase()], value, name);
    assert.equal(upstream.hits(), hits);
    const keys = await redis.keys(`${h.prefix}*`);
    assert.ok(keys.length > 0, "the served requests left their limiter state");
    assert.ok(!keys.some((k) => k.includes("203.0.113.")), `no Redis key for a listed address: ${keys.join(", ")}`);
    assert.ok(await metric("gateway_threat_feed_refusals_total") >= 5);
  });

  it("a changed URL feed takes effect at the next refresh; a failing one keeps its last list; a feed down at start is counted, not fatal", async () => {
    await from("198.51.101.1");
    feed.body = "198.51.100.0/24\n198.51.101.0/24\n";
    await eventually(async () => { try { await from("198.51.101.1"); return false; } catch (e) { return refused(e); } }, 10_000, 200);
    const failedBefore = await metric("gateway_threat_feed_refreshes_total", `{feed="${new URL(feed.url).host}",outcome="failed"}`);
    feed.status = 500;
    await eventually(async () => (await metric("gateway_threat_feed_refreshes_total", `{feed="${new URL(feed.url).host}",outcome="failed"}`)) > failedBefore, 10_000, 200);
    await assert.rejects(from("198.51.101.1"), refused, "the last good list stays in force");
    assert.ok(await metric("gateway_threat_feed_refreshes_total", '{feed="127.0.0.1:1",outcome="failed"}') >= 1);
    assert.equal(await metric("gateway_threat_feed_ranges"), 4, "203.0.113.0/24, 2001:db8:bad::/48, 192.0.2.7, 198.51.100.0–198.51.101.255");
    assert.ok(!h.logs().includes("feed-secret"), "a feed URL's query (often an access key) is never logged");
  });
});

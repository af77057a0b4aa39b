/**
 * Upstream failures against real model servers and Redis: a backend that never answers → 504 in
 * the configured time with the concurrency slot released; a failing endpoint is ejected and the
 * traffic goes to the healthy one.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Redis } from "ioredis";
import { startModelServer, type ModelServer } from "@crosslogic/model-server";
import { testEnv } from "@crosslogic/testenv/test-env";
import { makeDoc, makeKey } from "../fixtures.ts";
import { eventually, startHarness, type Harness } from "../harness.ts";

const env = testEnv();

describe("upstream failures", () => {
  let healthy: ModelServer;
  let broken: ModelServer;
  let h: Harness;
  let redis: Redis;
  const slow = makeKey({ limits: { requestsPerMinute: 1000, tokensPerMinute: 0, concurrency: 1 } });
  const pair = makeKey();

  before(async () => {
    healthy = await startModelServer({ name: "gw-up-ok" });
    broken = await startModelServer({ name: "gw-up-bad", failureMode: "hang", failureRate: 1 });
    h = await startHarness({ REDIS_URL: env.REDIS_URL, REQUEST_TIMEOUT_MS: "700", VIOLATION_DELAY_AFTER: "1000", VIOLATION_BLOCK_AFTER: "5000" }, {
      hang: makeDoc({ keys: [slow], modelUrl: broken.url }),
    });
    redis = new Redis(env.REDIS_URL);
  });

  after(async () => {
    await h?.stop();
    const left = await redis.keys(`${h.prefix}*`);
    if (left.length) await redis.del(...left);
    redis.disconnect();
    await healthy?.close();
    await broken?.close();
  });

  const post = (key: string, body = '{"model":"llama-3-8b","prompt":"x","max_tokens":2}') =>
    fetch(`${h.gw.url}/v1/completions`, { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, body });

  it("answers 504 upstream_timeout when the backend never answers, and releases the slot", async () => {
    const set = `${h.prefix}{gw}c:${slow.entry.hash}`;
    const t0 = Date.now();
    const r = await post(slow.key);
    const took = Date.now() - t0;
    assert.equal(r.status, 504);
    const body = (await r.json()) as { error: { code: string; request_id: string } };
    assert.equal(body.error.code, "upstream_timeout");
    assert.equal(body.error.request_id, r.headers.get("x-request-id"));
    assert.ok(took < 5000, `bounded by REQUEST_TIMEOUT_MS (took ${took} ms)`);
    await eventually(async () => (await redis.zcard(set)) === 0, 3000);
    // The key's only slot is free again: a second request is not refused for concurrency.
    const again = await post(slow.key);
    assert.equal(again.status, 504, "admitted again (and timed out again), not 429");
    await eventually(async () => (await redis.zcard(set)) === 0, 3000);
    const metrics = await (await fetch(`${h.gw.adminUrl}/metrics`)).text();
    assert.match(metrics, /gateway_upstream_errors_total\{kind="timeout"\} [1-9]/);
  });

  it("ejects an endpoint that keeps failing and sends the traffic to the healthy one", async () => {
    broken.set({ failureMode: "error", failureRate: 1, errorStatus: 500 });
    // One route, two endpoints: a Service-like backend written as two URL routes is not possible,
    // so the backend is given both origins directly.
    h.write("pair", makeDoc({ keys: [pair], modelUrl: healthy.url }));
    const doc = (await eventually(() => h.gw.store.key(pair.entry.hash))).env;
    const backend = h.gw.backends.get(doc.routes.get("llama-3-8b")!)!;
    backend.setOrigins([new URL(healthy.url).origin, new URL(broken.url).origin]);
    const statuses: number[] = [];
    for (let i = 0; i < 40; i++) statuses.push((await post(pair.key)).status);
    const brokenBefore = broken.stats().requests;
    const after = [];
    for (let i = 0; i < 20; i++) after.push((await post(pair.key)).status);
    // The broken endpoint's 500s reach clients as the catalog's 502 (README: upstream errors).
    assert.ok(statuses.filter((s) => s === 502).length >= 5, "the broken endpoint was tried");
    assert.ok(statuses.filter((s) => s === 502).length <= 10, `at most a few failures reach clients before the ejection (${statuses.join(",")})`);
    assert.deepEqual(after, Array(20).fill(200), "after the ejection every request goes to the healthy endpoint");
    assert.equal(broken.stats().requests, brokenBefore, "the ejected endpoint gets nothing");
    const metrics = await (await fetch(`${h.gw.adminUrl}/metrics`)).text();
    assert.match(metrics, /gateway_outlier_ejections_total [1-9]/);
  });
});

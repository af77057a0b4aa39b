import assert from "node:assert/strict";
import { test } from "node:test";
import { AuditActions } from "@crosslogic/crds/audit";
import { anomalyAuditEvent, anomalyWebhookPayload, createAnomalyDetector, type AnomalyEvent, type TrafficSample } from "../../src/index.ts";

const WINDOW = 60_000;
const T0 = Date.UTC(2026, 0, 1);

/** Deterministic noise in [-1, 1]. */
function noise(seed: number): () => number {
  let x = seed >>> 0;
  return () => { x = (Math.imul(x, 1664525) + 1013904223) >>> 0; return (x / 0xffffffff) * 2 - 1; };
}

/** Feed `perWindow(w)` requests per window, each request a separate sample spread over the window. */
function run(windows: number, perWindow: (w: number) => { requests: number; tokens?: number; unauthorized?: number }, sample: Partial<TrafficSample> = {}): { events: AnomalyEvent[]; firstWindow: number | null } {
  let clock = T0;
  const d = createAnomalyDetector({ windowMs: WINDOW, now: () => clock });
  const events: AnomalyEvent[] = [];
  let firstWindow: number | null = null;
  for (let w = 0; w < windows; w++) {
    const { requests, tokens = 0, unauthorized = 0 } = perWindow(w);
    for (let i = 0; i < requests; i++) {
      clock = T0 + w * WINDOW + Math.floor((i * WINDOW) / requests);
      const found = d.record({ tenant: "acme", keyPrefix: "clsk_live_0011aabb", requests: 1, tokens: tokens / requests, unauthorized: i < unauthorized ? 1 : 0, ...sample });
      if (found.length && firstWindow === null) firstWindow = w;
      events.push(...found);
    }
  }
  return { events, firstWindow };
}

test("traffic baselines raise alerts only on sudden deviations", async (t) => {
  const r = noise(42);
  const steady = (w: number) => ({ requests: Math.round(100 + 20 * r()), tokens: 50_000 + 10_000 * r() + w });
  await t.test("steady traffic with ±20 % noise: no alert in 200 windows", () => {
    assert.deepEqual(run(200, steady).events, []);
  });
  await t.test("slow ramp (+5 % per window, ×18 overall): no alert", () => {
    const r2 = noise(7);
    assert.deepEqual(run(60, (w) => ({ requests: Math.round(100 * 1.05 ** w * (1 + 0.1 * r2())) })).events, []);
  });
  await t.test("a 10× request spike is flagged within the spike's first window", () => {
    const r3 = noise(9);
    const { events, firstWindow } = run(40, (w) => ({ requests: Math.round((w >= 30 ? 1000 : 100) * (1 + 0.1 * r3())) }));
    assert.equal(firstWindow, 30);
    const requests = events.filter((e) => e.metric === "requests");
    assert.deepEqual(new Set(requests.map((e) => e.subject)), new Set(["tenant", "key"]), "per key and per tenant");
    assert.ok(requests.every((e) => e.severity === "critical" || e.severity === "warning"));
    assert.equal(requests.filter((e) => e.subject === "key").length <= 2, true, "no alert storm while the spike lasts");
  });
  await t.test("a 5× spike is a warning, not critical", () => {
    const { events } = run(40, (w) => ({ requests: w >= 30 ? 500 : 100 }));
    assert.ok(events.some((e) => e.metric === "requests" && e.severity === "warning"));
  });
  await t.test("a burst of 401s from a zero baseline is critical", () => {
    const { events } = run(20, (w) => ({ requests: 100, unauthorized: w === 15 ? 60 : 0 }));
    const e = events.find((x) => x.metric === "unauthorized");
    assert.ok(e, "flagged");
    assert.equal(e.severity, "critical");
    assert.equal(e.ratio, null);
  });
  await t.test("a token-volume spike is flagged", () => {
    const { events } = run(30, (w) => ({ requests: 100, tokens: w === 25 ? 2_000_000 : 50_000 }));
    assert.ok(events.some((e) => e.metric === "tokens"));
  });
  await t.test("no alert during warm-up, however large", () => {
    assert.deepEqual(run(3, (w) => ({ requests: w === 2 ? 5000 : 10 })).events, []);
  });
});

test("memory is bounded by maxSubjects", () => {
  const d = createAnomalyDetector({ maxSubjects: 100, now: () => T0 });
  for (let i = 0; i < 1000; i++) d.record({ tenant: `t${i}`, keyPrefix: `clsk_live_${i.toString(16).padStart(8, "0")}`, requests: 1 });
  assert.ok(d.size() <= 100);
});

test("an anomaly becomes a usage_anomaly audit event and a webhook body", () => {
  const { events } = run(40, (w) => ({ requests: w >= 30 ? 1000 : 100 }));
  const e = events.find((x) => x.subject === "key")!;
  const audit = anomalyAuditEvent(e);
  assert.ok(AuditActions.includes(audit.action));
  assert.equal(audit.action, "usage_anomaly");
  assert.equal(audit.actor_id, "clsk_live_0011aabb");
  assert.equal(audit.tenant_id, "acme");
  assert.equal(audit.details.metric, "requests");
  assert.equal(anomalyWebhookPayload(e).type, "usage.anomaly");
});

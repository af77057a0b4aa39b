import assert from "node:assert/strict";
import { test } from "node:test";
import { AuditActions } from "@crosslogic/crds/audit";
import { anomalyAuditEvent, createAnomalyDetector, type AnomalyEvent, type TrafficSample } from "../../src/index.ts";

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
    assert.deepEqual(events.filter((e) => e.severity === "critical"), [], "a sustained 5× stays a warning");
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

test("an anomaly becomes a usage_anomaly audit event", () => {
  const { events } = run(40, (w) => ({ requests: w >= 30 ? 1000 : 100 }));
  const e = events.find((x) => x.subject === "key")!;
  const audit = anomalyAuditEvent(e);
  assert.ok(AuditActions.includes(audit.action));
  assert.equal(audit.action, "usage_anomaly");
  assert.equal(audit.actor_id, "clsk_live_0011aabb");
  assert.equal(audit.tenant_id, "acme");
  assert.equal(audit.details.metric, "requests");
});

test("a request-count surge arriving one request at a time escalates warning → critical, once each", async (t) => {
  /** The window index, severity and subject of each event, in the order raised. */
  const timeline = (events: AnomalyEvent[]) => events.map((e) => `w${(Date.parse(e.windowStart) - T0) / WINDOW} ${e.subject} ${e.metric} ${e.severity}`);
  const r = noise(11);
  const baseline = Array.from({ length: 30 }, () => Math.round(100 * (1 + 0.2 * r())));
  await t.test("steady traffic (30 windows at 100 ± 20 %, one request at a time) raises nothing", () => {
    assert.deepEqual(run(30, (w) => ({ requests: baseline[w]! })).events, []);
  });
  await t.test("15× within one window: warning at ~4×, critical at ~10× of the same window; nothing more while it lasts", () => {
    const { events } = run(36, (w) => ({ requests: w < 30 ? baseline[w]! : 1500 }));
    assert.deepEqual(timeline(events), [
      "w30 tenant requests warning", "w30 key requests warning",
      "w30 tenant requests critical", "w30 key requests critical",
    ]);
    const [warning, critical] = events.filter((e) => e.subject === "key");
    assert.ok(warning!.observed < critical!.observed, "critical is raised later in the window, at a higher count");
    assert.ok(critical!.ratio !== null && critical!.ratio >= 10, "the baseline was not ~0: critical by ratio");
  });
  await t.test("5× then 15× in the next window: the running anomaly escalates to critical in its second window", () => {
    const { events } = run(36, (w) => ({ requests: w < 30 ? baseline[w]! : w === 30 ? 500 : 1500 }));
    assert.deepEqual(timeline(events), [
      "w30 tenant requests warning", "w30 key requests warning",
      "w31 tenant requests critical", "w31 key requests critical",
    ]);
  });
  await t.test("after the surge ends, a new one is a new anomaly", () => {
    const { events } = run(60, (w) => ({ requests: w < 30 || (w >= 33 && w < 50) ? baseline[w % 30]! : 1500 }));
    assert.deepEqual(timeline(events).filter((l) => l.includes(" key ")), [
      "w30 key requests warning", "w30 key requests critical", "w50 key requests warning", "w50 key requests critical",
    ]);
  });
});

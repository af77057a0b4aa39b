/**
 * Traffic-anomaly notifications end to end against real PostgreSQL: synthetic traffic through the
 * real detector (@crosslogic/safety, 1-second windows on a synthetic clock) → `usage_anomaly` audit
 * events persisted through the gateway's own audit log (gateway/src/audit.ts, written the way
 * gateway/src/app.ts does at detection time) → billing's notifier enqueues one `usage.anomaly`
 * webhook per anomaly (none for normal traffic, none twice, throttled per tenant, subject and metric
 * within the window, an escalation to critical let through) → delivered signed to an HTTPS receiver.
 */
import assert from "node:assert/strict";
import { after, before, describe, it, mock } from "node:test";
import { Writable } from "node:stream";
import { apiKeyPrefix, generateApiKey } from "@crosslogic/crds/api-key";
import { auditEvent } from "@crosslogic/crds/audit";
import { createAuditStore, createDatabase, migrate, type Database } from "@crosslogic/data";
import { AuditLog } from "@crosslogic/gateway/audit";
import { anomalyAuditEvent, createAnomalyDetector, type AnomalyDetector, type AnomalyEvent } from "@crosslogic/safety";
import { createTestDatabase } from "@crosslogic/testenv";
import { testEnv } from "@crosslogic/testenv/test-env";
import { ANOMALY_CURSOR, createAnomalyNotifier } from "../../src/anomaly-notifications.ts";
import { silentLogger } from "../../src/log.ts";
import type { WebhookEndpoint } from "../../src/outbox.ts";
import { createSender } from "../../src/sender.ts";
import { startHttpsReceiver, type HttpsReceiver } from "./fixtures/https-receiver.ts";

const SECRET = "anomaly-webhook-secret";
const MIN = 60_000;
/** The detector's window (the gateway's ANOMALY_WINDOW_MS). */
const WINDOW = 1000;
/** Samples per window: traffic arrives spread over the window, so detection happens mid-window. */
const SLICES = 10;
const suffix = Math.random().toString(36).slice(2, 8);
const [acme, quiet] = [`acme-${suffix}`, `quiet-${suffix}`];
const [k1, k2, q1] = ["clsk_live_a4f5b2c8", "clsk_live_77e0d1aa", "clsk_test_0b1c2d3e"];
/** Synthetic clock: window w starts at T0 + w·WINDOW; recent enough for the notifier's 1 h backlog limit. */
const T0 = Math.floor((Date.now() - 40 * MIN) / WINDOW) * WINDOW;

/** One key's traffic in one window; `burst`: all of it in one sample (a single large completion), else spread over the window. */
interface Load { tenant: string; key: string; requests: number; tokens: number; errors?: number; burst?: boolean }

/** Normal traffic: steady rates with deterministic noise per key. */
const steady = (w: number): Load[] => [
  { tenant: acme, key: k1, requests: 20 + ((w * 7) % 5) - 2, tokens: 1000 + ((w * 13) % 201) - 100 },
  { tenant: acme, key: k2, requests: 15 + ((w * 3) % 5) - 2, tokens: 800 + ((w * 17) % 101) - 50 },
  // A slow ramp (+5 % per window for 40 windows, then flat) is growth, not an anomaly.
  { tenant: quiet, key: q1, requests: Math.round(20 * 1.05 ** Math.min(w, 40)), tokens: Math.round(600 * 1.05 ** Math.min(w, 40)) },
];

/** Feeds windows [from, to) into the detector the way the gateway does (one sample per slice); returns the anomalies raised. */
function drive(detector: AnomalyDetector, from: number, to: number, load: (w: number) => Load[]): AnomalyEvent[] {
  const raised: AnomalyEvent[] = [];
  const part = (n: number, i: number) => Math.floor(n / SLICES) + (i < n % SLICES ? 1 : 0);
  for (let w = from; w < to; w++) {
    const loads = load(w);
    for (let i = 0; i < SLICES; i++) {
      const at = T0 + w * WINDOW + i * (WINDOW / SLICES);
      for (const l of loads) {
        const [requests, tokens, errors] = [l.requests, l.tokens, l.errors ?? 0].map((n) => l.burst ? (i === 0 ? n : 0) : part(n, i)) as [number, number, number];
        if (requests > 0) raised.push(...detector.record({ tenant: l.tenant, keyPrefix: l.key, requests, tokens, errors }, at));
      }
    }
  }
  return raised;
}

const discard = () => new Writable({ write(_chunk, _enc, cb) { cb(); } });

describe("usage-anomaly notifications", () => {
  let tdb: { url: string; drop(): Promise<void> };
  let db: Database;
  let recv: HttpsReceiver;
  const detector = createAnomalyDetector({ windowMs: WINDOW });
  const hooks: Record<string, WebhookEndpoint[]> = {};
  const tenants = { webhooks: async (t: string) => hooks[t] ?? [] };
  const notifier = () => createAnomalyNotifier({ db, tenants, log: silentLogger() }, { windowMs: 10 * MIN });
  const deliveries = (tenant: string) => db.prisma.webhookDelivery.findMany({ where: { tenant, eventType: "usage.anomaly" }, orderBy: { eventId: "asc" } });
  type Body = { id: string; type: string; tenant: string; created: number; data: Record<string, unknown> };
  const bodies = async (tenant: string) => (await deliveries(tenant)).map((d) => JSON.parse(d.body) as Body);

  /** Persists anomalies as the gateway does (gateway/src/app.ts anomalyRaised → AuditLog → audit store), each at its detection time. */
  async function persistLikeTheGateway(events: AnomalyEvent[], extra: (log: AuditLog) => void = () => {}): Promise<void> {
    const log = new AuditLog(discard());
    log.persistTo(createAuditStore(db));
    for (const e of events) {
      mock.timers.enable({ apis: ["Date"], now: Date.parse(e.detectedAt) });
      try {
        const ev = anomalyAuditEvent(e);
        log.write("usage_anomaly", { actor_id: ev.actor_id, tenant_id: ev.tenant_id, details: ev.details });
      } finally {
        mock.timers.reset();
      }
    }
    extra(log);
    await log.close(); // flushes the pending batch to PostgreSQL
  }

  /** The anomaly a webhook body reports, in the detector's terms. */
  const reported = (b: Body) => [b.data.subject, b.data.key_prefix, b.data.metric, b.data.severity, b.data.observed, b.data.expected, b.data.window_start].join(" ");
  const raisedAs = (e: AnomalyEvent) => [e.subject, e.keyPrefix, e.metric, e.severity, e.observed, e.expected, e.windowStart].join(" ");
  /**
   * Key k1's token use jumps from ~1,000 per window to 5,500 (a warning for the key), then a single
   * 15,000-token completion arrives (the key escalates to critical; the tenant as a whole gets a warning).
   */
  const k1Spike = (first: number) => (w: number) => steady(w).map((l) =>
    l.key !== k1 ? l : w === first ? { ...l, tokens: 5500 } : { ...l, tokens: 15_000, burst: true });
  const SPIKE_KINDS = ["key/tokens/critical", "key/tokens/warning", "tenant/tokens/warning"];

  before(async () => {
    tdb = await createTestDatabase(testEnv().DATABASE_URL, "anomaly_ntf");
    await migrate(tdb.url);
    db = createDatabase(tdb.url);
    recv = await startHttpsReceiver(SECRET);
    const endpoint = (p: string, events: string[]): WebhookEndpoint => ({ url: `${recv.base}${p}`, secretRef: { name: "hooks", key: "secret" }, events });
    hooks[acme] = [endpoint("/anomalies", ["usage.anomaly"]), endpoint("/limits-only", ["limit.threshold"])];
    hooks[quiet] = [endpoint("/quiet", ["usage.anomaly", "limit.threshold"])];
  });
  after(async () => {
    await recv?.close();
    await db?.close();
    await tdb?.drop();
  });

  it("normal traffic (noise, a slow ramp) raises no anomaly and no webhook; other audit events are not anomalies", async () => {
    const raised = drive(detector, 0, 30, steady);
    assert.deepEqual(raised, [], "no anomaly in 30 windows of normal traffic");
    await persistLikeTheGateway(raised, (log) => {
      log.write("rate_limit_block", { actor_id: k1, tenant_id: acme, details: { layer: "key" } });
      log.write("auth_failed", { actor_id: k2, tenant_id: acme, details: {} });
    });
    const r = await notifier().runOnce();
    assert.ok(r.scanned >= 2, "the audit rows were read");
    assert.equal(r.notified, 0);
    assert.equal((await deliveries(acme)).length + (await deliveries(quiet)).length, 0);
  });

  /** usage.anomaly notifications enqueued for acme so far. */
  let notified = 0;
  it("a spike becomes exactly one usage.anomaly webhook per anomaly (the warning and its escalation), never twice", async () => {
    const spike = drive(detector, 30, 32, k1Spike(30));
    assert.deepEqual(spike.map((e) => `${e.subject}/${e.metric}/${e.severity}`).sort(), SPIKE_KINDS);
    assert.ok(spike.every((e) => e.tenant === acme && (e.subject === "tenant" ? e.keyPrefix === null : e.keyPrefix === k1)));
    await persistLikeTheGateway(spike);
    const stored = await db.prisma.auditEvent.findMany({ where: { action: "usage_anomaly" }, orderBy: { id: "asc" } });
    assert.equal(stored.length, spike.length, "one usage_anomaly audit row per anomaly");

    const r = await notifier().runOnce();
    assert.deepEqual([r.notified, r.suppressed], [spike.length, 0]);
    const sent = await bodies(acme);
    assert.deepEqual(sent.map(reported).sort(), spike.map(raisedAs).sort(), "each anomaly reported once, with its numbers");
    const auditIds = new Set(stored.map((s) => `ntf_anomaly_${s.id}`));
    for (const b of sent) {
      assert.equal(b.type, "usage.anomaly");
      assert.equal(b.tenant, acme);
      assert.ok(auditIds.has(b.id), `id ${b.id} derived from the audit event id`);
      assert.equal(b.data.window_seconds, 1);
      assert.equal(b.data.throttle_seconds, 600);
    }
    const rows = await deliveries(acme);
    assert.ok(rows.every((d) => d.url === `${recv.base}/anomalies`), "only the endpoint subscribed to usage.anomaly");
    assert.equal((await deliveries(quiet)).length, 0);

    // Re-running, and even resetting the cursor to re-read everything, enqueues nothing new.
    assert.equal((await notifier().runOnce()).notified, 0);
    await db.prisma.processingCursor.update({ where: { name: ANOMALY_CURSOR }, data: { position: 0n } });
    assert.equal((await notifier().runOnce()).notified, 0);
    assert.equal((await deliveries(acme)).length, spike.length);
    notified += spike.length;
  });

  it("throttles a repeat per tenant, subject and metric within the window; another metric still notifies", async () => {
    assert.deepEqual(drive(detector, 32, 60, steady), [], "the spike is over: normal traffic again");
    // 30 s after the first spike: k1's tokens spike the same way again, and k1's requests all fail for a window (errors from 0 to ~20):
    // the same key and severity as a notified token anomaly, another metric.
    const again = drive(detector, 60, 62, (w) => k1Spike(60)(w).map((l) => l.key === k1 && w === 60 ? { ...l, errors: l.requests } : l));
    const tokens = again.filter((e) => e.metric === "tokens");
    const errors = again.filter((e) => e.metric === "errors");
    assert.deepEqual(tokens.map((e) => `${e.subject}/${e.metric}/${e.severity}`).sort(), SPIKE_KINDS, "the detector raised the token spike again");
    assert.deepEqual(errors.map((e) => `${e.subject}/${e.keyPrefix}/${e.severity}`).sort(), [`key/${k1}/critical`, "tenant/null/critical"]);
    await persistLikeTheGateway(again);
    const r = await notifier().runOnce();
    assert.deepEqual([r.notified, r.suppressed], [errors.length, tokens.length], "the warnings and the critical of the same subject and metric are suppressed");
    const added = (await bodies(acme)).filter((b) => b.data.metric === "errors");
    assert.deepEqual(added.map(reported).sort(), errors.map(raisedAs).sort());
    assert.equal((await deliveries(acme)).length, notified += errors.length);
  });

  it("notifies again once the window has passed", async () => {
    // Eleven minutes of normal traffic (the detector's baselines keep up), then k1 spikes once more.
    assert.deepEqual(drive(detector, 62, 720, steady), []);
    const later = drive(detector, 720, 722, k1Spike(720));
    assert.deepEqual(later.map((e) => `${e.subject}/${e.metric}/${e.severity}`).sort(), SPIKE_KINDS);
    await persistLikeTheGateway(later);
    const r = await notifier().runOnce();
    assert.deepEqual([r.notified, r.suppressed], [later.length, 0]);
    assert.equal((await deliveries(acme)).length, notified += later.length);
    assert.equal((await deliveries(quiet)).length, 0, "the tenant with only normal traffic was never notified");
  });

  it("names the key by its prefix only, even when an audit writer put a full key in the actor", async () => {
    const full = generateApiKey("live");
    const prefix = apiKeyPrefix(full);
    await createAuditStore(db).insertBatch([auditEvent("usage_anomaly", {
      timestamp: new Date(T0 + 800 * WINDOW), actor_id: full, tenant_id: quiet,
      details: { subject: "key", metric: "tokens", severity: "critical", observed: 90_000, expected: 4000, ratio: 22.5, z_score: 40, window_start: new Date(T0 + 800 * WINDOW).toISOString(), window_seconds: 1 },
    })]);
    assert.equal((await notifier().runOnce()).notified, 1);
    const [row] = await deliveries(quiet);
    assert.ok(row && !row.body.includes(full.slice(prefix.length)), "no more of the key than its prefix");
    assert.equal((JSON.parse(row.body) as Body).data.key_prefix, prefix);
  });

  it("is delivered signed to the tenant's HTTPS endpoint, once per notification", async () => {
    const expected = [...await deliveries(acme), ...await deliveries(quiet)];
    const sender = createSender(db, async () => SECRET, silentLogger(), { allowLoopback: true, ca: recv.ca });
    for (let i = 0; i < 10 && await sender.runOnce() > 0; i++) { /* until nothing is due */ }
    assert.equal(recv.received.length, expected.length);
    assert.deepEqual(recv.received.map((g) => g.headers["x-webhook-id"]).sort(), expected.map((d) => d.eventId).sort());
    for (const g of recv.received) {
      assert.ok(g.signatureOk, "signature verifies");
      assert.equal(g.headers["x-webhook-event"], "usage.anomaly");
      assert.equal((JSON.parse(g.body) as Body).id, g.headers["x-webhook-id"]);
      assert.ok(g.path === "/anomalies" || g.path === "/quiet");
    }
    const pending = await db.prisma.webhookDelivery.count({ where: { status: { not: "delivered" } } });
    assert.equal(pending, 0);
  });
});

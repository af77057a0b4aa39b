import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { auditEvent, withDefaults, API_VERSION, type ApiKey, type ApiKeySpec, type AuditEvent, type Tenant } from "@crosslogic/crds";
import { createAuditPersister } from "../../src/persistence/audit-persister.ts";
import { createNotifier, keyNotifications, msUntilExpiryNotice, notificationId, tenantNotifications, type EnqueueFn } from "../../src/persistence/notifications.ts";
import type { KeyMaterial } from "../../src/controllers/api-key/key-material.ts";

const ev = (i: number) => auditEvent("tenant_created", { tenant_id: `t${i}`, details: { i } });
const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));
/** Waits for a state, not for a time (a busy machine may be slower than any fixed sleep). */
async function until(what: string, fn: () => boolean, ms = 5000): Promise<void> {
  for (const end = Date.now() + ms; !fn(); await tick(2)) if (Date.now() > end) assert.fail(`${what}: not in ${ms} ms`);
}

/** A store that fails while `down` is true and records what it accepted. */
function fakeStore() {
  const rows: AuditEvent[] = [];
  const s = { rows, down: false, calls: 0, async insertBatch(events: AuditEvent[]) { s.calls++; await tick(1); if (s.down) throw new Error("connection refused"); rows.push(...events); return { inserted: events.length }; } };
  return s;
}

describe("audit persister", () => {
  it("writes events in batches without the caller waiting", async () => {
    const store = fakeStore();
    const p = createAuditPersister(store, { batchSize: 10, flushIntervalMs: 20 });
    for (let i = 0; i < 25; i++) p.push(ev(i));
    assert.equal(store.rows.length, 0, "push does not write synchronously");
    await until("all 25 written", () => store.rows.length >= 25);
    assert.deepEqual(store.rows.map((e) => e.details.i), Array.from({ length: 25 }, (_, i) => i));
    assert.ok(store.calls <= 4, `batched: ${store.calls} writes`);
    assert.equal(await p.close(), 0);
  });

  it("keeps events while the database is down and writes them once it is back", async () => {
    const store = fakeStore();
    store.down = true;
    const errors: number[] = [];
    const p = createAuditPersister(store, { batchSize: 5, flushIntervalMs: 5, retryBaseMs: 5, retryMaxMs: 20, onError: (_e, attempt) => errors.push(attempt) });
    for (let i = 0; i < 12; i++) p.push(ev(i));
    await until("retried", () => errors.length >= 2);
    assert.equal(store.rows.length, 0);
    assert.equal(p.pending(), 12);
    store.down = false;
    await until("all 12 written", () => store.rows.length >= 12);
    assert.deepEqual(store.rows.map((e) => e.details.i), Array.from({ length: 12 }, (_, i) => i));
    assert.equal(p.pending(), 0);
    await p.close();
  });

  it("bounds the buffer: the oldest events are dropped and counted", async () => {
    const store = fakeStore();
    store.down = true;
    let dropped = 0;
    let failed = 0;
    const p = createAuditPersister(store, { maxBuffer: 10, batchSize: 4, flushIntervalMs: 5, retryBaseMs: 1000, onDropped: (n) => { dropped += n; }, onError: () => { failed++; } });
    p.push(ev(0));
    await until("the first write failed", () => failed === 1); // the retry is a second away
    for (let i = 1; i < 25; i++) p.push(ev(i));
    assert.equal(p.pending(), 10);
    assert.equal(dropped, 15);
    store.down = false;
    assert.equal(await p.close(1000), 0);
    assert.deepEqual(store.rows.map((e) => e.details.i), Array.from({ length: 10 }, (_, i) => 15 + i), "the newest 10 kept, in order");
  });

  it("close flushes everything buffered, and reports what a dead database left unwritten", async () => {
    const store = fakeStore();
    const p = createAuditPersister(store, { batchSize: 100, flushIntervalMs: 60_000 });
    for (let i = 0; i < 7; i++) p.push(ev(i));
    assert.equal(await p.close(), 0);
    assert.equal(store.rows.length, 7);

    const dead = fakeStore();
    dead.down = true;
    const q = createAuditPersister(dead, { flushIntervalMs: 60_000, retryBaseMs: 10 });
    q.push(ev(1));
    assert.equal(await q.close(100), 1);
  });
});

const meta = { uid: "0b7c5a1e-1111-2222-3333-444455556666", generation: 1 };
const key = (spec: Partial<ApiKeySpec> = {}): ApiKey & { metadata: typeof meta & { name: string; namespace: string } } =>
  ({ apiVersion: API_VERSION, kind: "ApiKey", metadata: { name: "bot", namespace: "tenant-acme", ...meta }, spec: withDefaults<ApiKeySpec>("ApiKey", { environment: "prod", ...spec }) });
const material = (m: Partial<KeyMaterial> = {}): KeyMaterial => ({ current: { hash: "a".repeat(64), prefix: "clsk_live_aaaaaaaa" }, previous: [], rotationRequest: undefined, rotatedAt: undefined, ...m });
const now = new Date("2026-06-01T00:00:00Z");
const day = 86_400_000;
const types = (l: Array<{ type: string }>) => l.map((n) => n.type);

describe("which lifecycle changes notify", () => {
  it("key.created once: when the first key is issued, not on later reconciles", () => {
    assert.deepEqual(types(keyNotifications(key(), undefined, material(), now, day)), ["key.created"]);
    assert.deepEqual(types(keyNotifications(key(), { phase: "Pending" }, material({ current: undefined }), now, day)), []);
    assert.deepEqual(types(keyNotifications(key(), { phase: "Active", prefix: "clsk_live_aaaaaaaa" }, material(), now, day)), []);
  });
  it("key.rotated per rotation, with the previous prefix; the id changes with each rotation", () => {
    const before = { phase: "Active" as const, prefix: "clsk_live_aaaaaaaa", rotatedAt: "2026-05-01T00:00:00Z" };
    const rotated = material({ rotatedAt: "2026-06-01T00:00:00Z", previous: [{ hash: "b".repeat(64), prefix: "clsk_live_bbbbbbbb", expiresAt: "2026-06-02T00:00:00Z" }] });
    const [n] = keyNotifications(key(), before, rotated, now, day);
    assert.equal(n?.type, "key.rotated");
    assert.equal(n?.data.previousPrefix, "clsk_live_bbbbbbbb");
    assert.deepEqual(keyNotifications(key(), { ...before, rotatedAt: "2026-06-01T00:00:00Z" }, rotated, now, day), []);
    const again = keyNotifications(key(), { ...before, rotatedAt: "2026-06-01T00:00:00Z" }, material({ rotatedAt: "2026-06-03T00:00:00Z" }), now, day);
    assert.notEqual(again[0]?.id, n?.id);
  });
  it("key.revoked once (revocation is final), whatever else changed", () => {
    assert.deepEqual(types(keyNotifications(key({ revoked: true }), { phase: "Active", prefix: "p" }, material(), now, day)), ["key.revoked"]);
    assert.deepEqual(keyNotifications(key({ revoked: true }), { phase: "Revoked", prefix: "p" }, material(), now, day), []);
  });
  it("key.expiring inside the notice window (same id every time), key.expired when an Active key passes expiry", () => {
    const active = { phase: "Active" as const, prefix: "p" };
    assert.deepEqual(keyNotifications(key({ expiresAt: "2026-06-30T00:00:00Z" }), active, material(), now, day), [], "29 days ahead, 1-day window");
    const a = keyNotifications(key({ expiresAt: "2026-06-01T12:00:00Z" }), active, material(), now, day);
    const b = keyNotifications(key({ expiresAt: "2026-06-01T12:00:00Z" }), active, material(), new Date(now.getTime() + 3_600_000), day);
    assert.deepEqual(types(a), ["key.expiring"]);
    assert.equal(a[0]!.id, b[0]!.id);
    assert.deepEqual(types(keyNotifications(key({ expiresAt: "2026-05-31T00:00:00Z" }), active, material(), now, day)), ["key.expired"]);
    assert.deepEqual(keyNotifications(key({ expiresAt: "2026-05-31T00:00:00Z" }), { phase: "Expired", prefix: "p" }, material(), now, day), []);
    assert.equal(msUntilExpiryNotice(key({ expiresAt: "2026-06-03T00:00:00Z" }), now, day), day + 1000);
    assert.equal(msUntilExpiryNotice(key({ expiresAt: "2026-06-01T12:00:00Z" }), now, day), undefined);
  });
  it("tenant.suspended / tenant.resumed on phase changes, keyed by generation", () => {
    const t = (suspended: boolean, generation: number) => ({ apiVersion: API_VERSION, kind: "Tenant", metadata: { name: "acme", uid: "u1", generation }, spec: { plan: "free", suspended } }) as Tenant & { metadata: { name: string; uid: string; generation: number } };
    assert.deepEqual(types(tenantNotifications(t(true, 2), "Active")), ["tenant.suspended"]);
    assert.deepEqual(tenantNotifications(t(true, 2), "Suspended"), []);
    assert.deepEqual(types(tenantNotifications(t(false, 3), "Suspended")), ["tenant.resumed"]);
    assert.deepEqual(tenantNotifications(t(false, 1), undefined), []);
    assert.notEqual(tenantNotifications(t(true, 2), "Active")[0]!.id, tenantNotifications(t(true, 4), "Active")[0]!.id);
  });
  it("ids are deterministic and never contain the key", () => {
    assert.equal(notificationId("u", "key.created"), notificationId("u", "key.created"));
    assert.notEqual(notificationId("u", "key.created"), notificationId("v", "key.created"));
    assert.match(notificationId("u", "key.revoked"), /^ntf_[0-9a-f]{32}$/);
  });
});

describe("notifier", () => {
  const tenant = (events: string[]) => ({ apiVersion: API_VERSION, kind: "Tenant", metadata: { name: "acme", uid: "u1" }, spec: { plan: "free", suspended: false, webhooks: [{ url: "https://hooks.example.com/x", secretRef: { name: "s", key: "k" }, events }] } }) as unknown as Tenant & { metadata: { name: string } };
  it("enqueues only subscribed types, once per id in a process; a failed enqueue is retried by the caller", async () => {
    const calls: string[] = [];
    let fail = true;
    const enqueue: EnqueueFn = async (_e, n) => { if (fail) throw new Error("db down"); calls.push(`${n.type}:${n.id}`); return 1; };
    const notifier = createNotifier(enqueue, { now: () => now });
    const reqs = [{ type: "key.created" as const, id: "ntf_1", data: {} }, { type: "key.revoked" as const, id: "ntf_2", data: {} }];
    await assert.rejects(notifier.notify(tenant(["key.revoked"]), reqs), /db down/);
    fail = false;
    await notifier.notify(tenant(["key.revoked"]), reqs);
    await notifier.notify(tenant(["key.revoked"]), reqs);
    assert.deepEqual(calls, ["key.revoked:ntf_2"]);
    await notifier.notify(undefined, reqs);
    await notifier.notify(tenant(["tenant.suspended"]), [{ type: "key.created", id: "ntf_3", data: {} }]);
    assert.equal(calls.length, 1);
  });
});

import assert from "node:assert/strict";
import fs from "node:fs";
import { after, before, describe, it } from "node:test";
import { auditEvent } from "@crosslogic/crds/audit";
import type { UsageRecord } from "@crosslogic/crds/usage";
import { createTestDatabase } from "@crosslogic/testenv";
import { testEnv } from "@crosslogic/testenv/test-env";
import { createAuditStore, createDatabase, createUsageStore, migrate, schemaDrift, type Database } from "@crosslogic/data";

const suffix = Math.random().toString(36).slice(2, 8);

function usage(i: number, over: Partial<UsageRecord> = {}): UsageRecord {
  return {
    requestId: `req_${suffix}_${i}`, tenant: `acme-${suffix}`, environment: `tenant-acme-${suffix}/prod`,
    keyPrefix: "clsk_live_a4f5b2c8", keyName: "ci-bot", model: "llama-3-8b", endpoint: "/v1/chat/completions",
    promptTokens: 10 + i, completionTokens: 20, totalTokens: 30 + i, latencyMs: 12, status: 200, streamed: i % 2 === 0,
    createdAt: new Date(Date.UTC(2026, 0, 1 + (i % 3), 12, 0, i)), ...over,
  };
}

describe("migrations", () => {
  let db: { url: string; drop(): Promise<void> };
  before(async () => { db = await createTestDatabase(testEnv().DATABASE_URL, "migrations"); });
  after(async () => { await db.drop(); });

  it("apply on an empty database, then re-apply as a no-op", async () => {
    const first = await migrate(db.url);
    assert.ok(first.applied.length >= 1, "the first run applies every migration");
    assert.match(first.applied[0]!, /_init$/);
    assert.deepEqual(await migrate(db.url), { applied: [] });
  });

  it("agree with schema.prisma (no drift), and the check notices a schema change without a migration", async () => {
    assert.equal(await schemaDrift(db.url), "");
    const schema = fs.readFileSync(new URL("../../schema.prisma", import.meta.url), "utf8");
    const changed = schema.replace("  streamed         Boolean\n", "  streamed         Boolean\n  region           String?\n");
    assert.notEqual(changed, schema);
    assert.match(await schemaDrift(db.url, changed), /ALTER TABLE "UsageRecord" ADD COLUMN\s+"region" TEXT/);
  });
});

describe("usage and audit stores", () => {
  let tdb: { url: string; drop(): Promise<void> };
  let database: Database;
  before(async () => {
    tdb = await createTestDatabase(testEnv().DATABASE_URL, "stores");
    await migrate(tdb.url);
    database = createDatabase(tdb.url);
  });
  after(async () => { await database.close(); await tdb.drop(); });

  it("round-trips usage records and never stores one twice", async () => {
    const store = createUsageStore(database);
    const batch = Array.from({ length: 9 }, (_, i) => usage(i));
    assert.deepEqual(await store.insertBatch(batch), { inserted: 9 });
    // A retried batch (after a timeout whose write actually landed) inserts nothing.
    assert.deepEqual(await store.insertBatch([...batch, usage(9)]), { inserted: 1 });
    const all = await store.query({ tenant: `acme-${suffix}` });
    assert.equal(all.length, 10);
    assert.deepEqual(all.find((r) => r.requestId === `req_${suffix}_4`), batch[4]);
    const day2 = await store.query({ tenant: `acme-${suffix}`, from: new Date(Date.UTC(2026, 0, 2)), to: new Date(Date.UTC(2026, 0, 3)) });
    assert.deepEqual(day2.map((r) => r.requestId).sort(), [1, 4, 7].map((i) => `req_${suffix}_${i}`).sort());
    assert.equal((await store.query({ tenant: "someone-else" })).length, 0);
    const totals = await store.totals({ tenant: `acme-${suffix}`, keyPrefix: "clsk_live_a4f5b2c8" });
    assert.deepEqual(totals, { requests: 10, promptTokens: 10 * 10 + 45, completionTokens: 200, totalTokens: 300 + 45 });
  });

  it("filters usage by environment and key prefix", async () => {
    const store = createUsageStore(database);
    await store.insertBatch([usage(100, { environment: "tenant-x/dev", keyPrefix: "clsk_test_00000000" })]);
    const dev = await store.query({ tenant: `acme-${suffix}`, environment: "tenant-x/dev" });
    assert.deepEqual(dev.map((r) => r.requestId), [`req_${suffix}_100`]);
    const byKey = await store.query({ tenant: `acme-${suffix}`, keyPrefix: "clsk_test_00000000" });
    assert.deepEqual(byKey.map((r) => r.requestId), [`req_${suffix}_100`]);
  });

  it("round-trips audit events in the seed's format, deduplicating retried batches", async () => {
    const store = createAuditStore(database);
    const t0 = new Date("2026-03-01T10:30:00.000Z");
    const events = [
      auditEvent("api_key_created", { timestamp: t0, request_id: "req_abc123", actor_id: "user_xyz", tenant_id: `t-${suffix}`, ip_address: "192.168.1.1", details: { prefix: "clsk_live_a4f5b2c8", nested: { b: 1, a: [1, 2] } } }),
      auditEvent("admin_auth_failed", { timestamp: new Date(t0.getTime() + 1000), ip_address: "10.0.0.9", details: { reason: "bad_token" } }),
      auditEvent("api_key_revoked", { timestamp: new Date(t0.getTime() + 2000), actor_id: "operator", tenant_id: `t-${suffix}` }),
    ];
    assert.deepEqual(await store.insertBatch(events), { inserted: 3 });
    assert.deepEqual(await store.insertBatch(events), { inserted: 0 });
    const mine = await store.query({ tenant: `t-${suffix}` });
    assert.deepEqual(mine, [events[0], events[2]]);
    assert.deepEqual(Object.keys(mine[0]!), ["timestamp", "request_id", "action", "actor_id", "tenant_id", "ip_address", "details"]);
    assert.deepEqual(await store.query({ tenant: null, action: "admin_auth_failed" }), [events[1]]);
    assert.deepEqual(await store.query({ action: ["api_key_revoked"], from: new Date(t0.getTime() + 1500) }), [events[2]]);
  });
});

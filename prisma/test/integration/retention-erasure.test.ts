import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { auditEvent } from "@crosslogic/crds/audit";
import type { UsageRecord } from "@crosslogic/crds/usage";
import { createTestDatabase } from "@crosslogic/testenv";
import { testEnv } from "@crosslogic/testenv/test-env";
import { createAuditStore, createDatabase, createUsageStore, eraseTenant, migrate, runRetention, type Database } from "@crosslogic/data";

const DAY = 86_400_000;
const now = new Date("2026-06-30T12:00:00.000Z");

function record(id: string, tenant: string, createdAt: Date): UsageRecord {
  return {
    requestId: id, tenant, environment: `tenant-${tenant}/prod`, keyPrefix: "clsk_live_00000000", keyName: "k", model: "m",
    endpoint: "/v1/completions", promptTokens: 1, completionTokens: 1, totalTokens: 2, latencyMs: 1, status: 200, streamed: false, createdAt,
  };
}

async function partitions(db: Database): Promise<string[]> {
  const rows = await db.prisma.$queryRaw<Array<{ name: string }>>`
    select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid where i.inhparent = '"UsageRecord"'::regclass order by 1`;
  return rows.map((r) => r.name);
}

describe("retention and tenant erasure", () => {
  let tdb: { url: string; drop(): Promise<void> };
  let db: Database;
  before(async () => {
    tdb = await createTestDatabase(testEnv().DATABASE_URL, "retention");
    await migrate(tdb.url);
    db = createDatabase(tdb.url);
  });
  after(async () => { await db.close(); await tdb.drop(); });

  it("drops day partitions past 90 days and deletes exactly the expired rows of the straddling day", async () => {
    const usage = createUsageStore(db);
    const cutoff = new Date(now.getTime() - 90 * DAY); // 2026-04-01T12:00Z
    const rows = [
      record("old-1", "a", new Date(cutoff.getTime() - 5 * DAY)),
      record("old-2", "b", new Date(cutoff.getTime() - 1 * DAY)),
      record("edge-before", "a", new Date(cutoff.getTime() - 1)), // same day as the cutoff, 1 ms too old
      record("edge-at", "a", cutoff), // exactly 90 days old: kept
      record("edge-after", "b", new Date(cutoff.getTime() + 3600_000)),
      record("recent", "a", new Date(now.getTime() - DAY)),
    ];
    assert.equal((await usage.insertBatch(rows)).inserted, 6);
    const report = await runRetention(db, now);
    assert.deepEqual(report.droppedPartitions.sort(), ["UsageRecord_p20260327", "UsageRecord_p20260331"]);
    assert.equal(report.deleted.usageRecords, 1);
    const left = [...await usage.query({ tenant: "a" }), ...await usage.query({ tenant: "b" })].map((r) => r.requestId).sort();
    assert.deepEqual(left, ["edge-after", "edge-at", "recent"]);
    const parts = await partitions(db);
    assert.ok(!parts.includes("UsageRecord_p20260327") && parts.includes("UsageRecord_p20260401"));
    assert.ok(parts.includes("UsageRecord_p20260703"), "partitions are created ahead");
    // Idempotent: a second run removes nothing more.
    const again = await runRetention(db, now);
    assert.deepEqual([again.droppedPartitions, again.deleted.usageRecords], [[], 0]);
    // A writer whose partition cache is stale still inserts (the partition is recreated).
    assert.equal((await usage.insertBatch([record("late", "a", new Date(cutoff.getTime() - 5 * DAY))])).inserted, 1);
  });

  it("erases every row of one tenant, reports the counts, and leaves other tenants alone", async () => {
    const suffix = Math.random().toString(36).slice(2, 8);
    const victim = `victim-${suffix}`, other = `other-${suffix}`;
    const usage = createUsageStore(db), audit = createAuditStore(db);
    await usage.insertBatch([record(`v1-${suffix}`, victim, now), record(`v2-${suffix}`, victim, new Date(now.getTime() - 10 * DAY)), record(`o1-${suffix}`, other, now)]);
    await audit.insertBatch([auditEvent("api_key_created", { tenant_id: victim }), auditEvent("api_key_created", { tenant_id: other })]);
    await db.prisma.billingAccount.create({ data: { tenant: victim, stripeCustomerId: `cus_${suffix}` } });
    await db.prisma.stripeEvent.create({ data: { id: `evt_${suffix}`, type: "invoice.paid", created: now, livemode: false, tenant: victim, status: "processed" } });
    const d = await db.prisma.webhookDelivery.create({ data: { tenant: victim, eventId: `n_${suffix}`, eventType: "key.created", url: "https://x.example/h", secretRef: {}, body: "{}" } });
    await db.prisma.webhookAttempt.create({ data: { deliveryId: d.id, tenant: victim, attempt: 1, startedAt: now, durationMs: 5, statusCode: 500 } });
    await db.prisma.usageReport.create({ data: { tenant: victim, periodStart: now, periodEnd: now, quantity: 5n, idempotencyKey: `k_${suffix}` } });
    await db.prisma.limitNotification.create({ data: { tenant: victim, keyPrefix: "clsk_live_a4f5b2c8", layer: "key", auditEventId: BigInt(Date.now()), eventAt: now, notificationId: `ntf_${suffix}` } });

    const report = await eraseTenant(db, victim, "admin@crosslogic.ai");
    assert.deepEqual(report, {
      tenant: victim,
      erased: { usageRecords: 2, auditEvents: 1, billingAccounts: 1, stripeEvents: 1, webhookDeliveries: 1, webhookAttempts: 1, usageReports: 1, limitNotifications: 1 },
    });
    for (const [name, count] of Object.entries({
      usage: await db.prisma.usageRecord.count({ where: { tenant: victim } }),
      audit: await db.prisma.auditEvent.count({ where: { tenant: victim } }),
      billing: await db.prisma.billingAccount.count({ where: { tenant: victim } }),
      deliveries: await db.prisma.webhookDelivery.count({ where: { tenant: victim } }),
    })) assert.equal(count, 0, name);
    assert.equal((await usage.query({ tenant: other })).length, 1);
    assert.equal((await audit.query({ tenant: other })).length, 1);
    const record_ = await audit.query({ tenant: null, action: "tenant_data_erased" });
    assert.equal(record_.length, 1);
    assert.deepEqual(record_[0]!.details, { tenant: victim, erased: report.erased });
    assert.equal(record_[0]!.actor_id, "admin@crosslogic.ai");
    // A repeat request erases nothing and says so.
    assert.deepEqual(Object.values((await eraseTenant(db, victim)).erased), [0, 0, 0, 0, 0, 0, 0, 0]);
  });
});

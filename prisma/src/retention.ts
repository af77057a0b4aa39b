import type { Database } from "./database.ts";

export interface RetentionPolicy {
  /** Usage records older than this are removed (default 90, the security document's default). */
  usageDays?: number;
  /** Delivered and dead-lettered outgoing webhooks, their attempt log and Stripe event records (default 90). */
  deliveryDays?: number;
  /** Audit events (default 365: they must outlive the usage they explain). */
  auditDays?: number;
  /** Day partitions created ahead of time so writers rarely create one on the hot path (default 3). */
  daysAhead?: number;
}

export interface RetentionReport {
  cutoff: { usage: string; deliveries: string; audit: string };
  /** Whole day partitions of UsageRecord dropped. */
  droppedPartitions: string[];
  /** Rows deleted individually (the partition that straddles the cutoff, and the other tables). */
  deleted: { usageRecords: number; webhookDeliveries: number; stripeEvents: number; auditEvents: number; limitNotifications: number };
  createdPartitions: string[];
}

const DAY_MS = 86_400_000;

/**
 * Removes everything past retention. Usage is partitioned by UTC day: partitions entirely before the
 * cutoff are dropped (no row-by-row delete, no bloat), and only the rows before the cutoff in the one
 * partition that straddles it are deleted. Safe to run at any frequency and from several replicas.
 */
export async function runRetention(db: Database, now = new Date(), policy: RetentionPolicy = {}): Promise<RetentionReport> {
  const { prisma } = db;
  const usageCutoff = new Date(now.getTime() - (policy.usageDays ?? 90) * DAY_MS);
  const deliveryCutoff = new Date(now.getTime() - (policy.deliveryDays ?? 90) * DAY_MS);
  const auditCutoff = new Date(now.getTime() - (policy.auditDays ?? 365) * DAY_MS);

  const partitions = await prisma.$queryRaw<Array<{ name: string; upper: Date | null }>>`
    select c.relname as name,
           (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO [(]''([^'']+)''[)]'))[1]::timestamptz as upper
    from pg_inherits i join pg_class c on c.oid = i.inhrelid
    where i.inhparent = '"UsageRecord"'::regclass`;
  const droppedPartitions: string[] = [];
  for (const p of partitions.sort((a, b) => a.name.localeCompare(b.name))) {
    if (p.upper && p.upper.getTime() <= usageCutoff.getTime()) {
      // DETACH first would let concurrent readers finish; a plain DROP takes a brief exclusive lock.
      await prisma.$executeRawUnsafe(`drop table if exists "${p.name.replaceAll('"', '""')}"`);
      droppedPartitions.push(p.name);
    }
  }
  const usageRecords = await prisma.usageRecord.deleteMany({ where: { createdAt: { lt: usageCutoff } } });
  const webhookDeliveries = await prisma.webhookDelivery.deleteMany({
    where: { status: { in: ["delivered", "dead"] }, createdAt: { lt: deliveryCutoff } },
  });
  const stripeEvents = await prisma.stripeEvent.deleteMany({ where: { receivedAt: { lt: deliveryCutoff } } });
  const auditEvents = await prisma.auditEvent.deleteMany({ where: { timestamp: { lt: auditCutoff } } });
  // The record of a limit notification only matters within its window: kept as long as deliveries.
  const limitNotifications = await prisma.limitNotification.deleteMany({ where: { eventAt: { lt: deliveryCutoff } } });

  const createdPartitions: string[] = [];
  for (let d = 0; d <= (policy.daysAhead ?? 3); d++) {
    const day = new Date(now.getTime() + d * DAY_MS).toISOString().slice(0, 10);
    const rows = await prisma.$queryRaw<Array<{ name: string }>>`select crosslogic_usage_partition(${day}::date) as name`;
    createdPartitions.push(rows[0]!.name);
  }
  return {
    cutoff: { usage: usageCutoff.toISOString(), deliveries: deliveryCutoff.toISOString(), audit: auditCutoff.toISOString() },
    droppedPartitions,
    deleted: { usageRecords: usageRecords.count, webhookDeliveries: webhookDeliveries.count, stripeEvents: stripeEvents.count, auditEvents: auditEvents.count, limitNotifications: limitNotifications.count },
    createdPartitions,
  };
}

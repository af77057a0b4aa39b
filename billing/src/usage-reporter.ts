import type Stripe from "stripe";
import type { Database } from "@crosslogic/data";
import type { Logger } from "./log.ts";

export interface ReporterOptions {
  meterEventName: string;
  periodMs: number;
  /** Wait after a period ends before reporting it, so late usage batches are counted. */
  settleMs: number;
  /** How far back an account's first report may go (Stripe accepts meter events up to 35 days old). */
  maxBackfillMs?: number;
  now?: () => Date;
  /** Test hook: runs after Stripe accepted a report and before it is marked reported (a crash there). */
  afterStripeCall?: (key: string) => Promise<void> | void;
}

/** Deterministic per tenant and period: a retry after any crash sends the same key. */
export function idempotencyKey(tenant: string, periodStart: Date): string {
  return `crosslogic-usage-${tenant}-${periodStart.toISOString()}`;
}

export interface ReportSummary {
  reported: number;
  skippedEmpty: number;
  failed: number;
}

/**
 * Reports each tenant's token usage to Stripe as one billing meter event per closed period, exactly
 * once: the period's row (unique per tenant and period) is written before the call with a
 * deterministic idempotency key, the same key is the Stripe request's Idempotency-Key and the meter
 * event's `identifier`, and the row is marked reported only after Stripe accepted it. A crash at any
 * point repeats only the same deduplicated call. Replicas: each report is sent while its row is
 * locked (FOR UPDATE SKIP LOCKED), so two billing processes never both call Stripe for one period.
 */
export function createUsageReporter(db: Database, stripe: Stripe, log: Logger, opts: ReporterOptions) {
  const now = opts.now ?? (() => new Date());
  const maxBackfill = opts.maxBackfillMs ?? 35 * 86_400_000;

  async function reportTenant(tenant: string, customer: string, since: Date, summary: ReportSummary): Promise<void> {
    const t = now().getTime();
    const lastClosedEnd = Math.floor((t - opts.settleMs) / opts.periodMs) * opts.periodMs;
    const last = await db.prisma.usageReport.findFirst({ where: { tenant }, orderBy: { periodStart: "desc" }, select: { periodEnd: true } });
    let start = last ? last.periodEnd.getTime() : Math.floor(Math.max(since.getTime(), t - maxBackfill) / opts.periodMs) * opts.periodMs;
    // Plan rows for every closed period not yet recorded (bounded per round).
    for (let i = 0; start + opts.periodMs <= lastClosedEnd && i < 1000; i++, start += opts.periodMs) {
      const periodStart = new Date(start), periodEnd = new Date(start + opts.periodMs);
      const agg = await db.prisma.usageRecord.aggregate({ where: { tenant, createdAt: { gte: periodStart, lt: periodEnd } }, _sum: { totalTokens: true } });
      const quantity = BigInt(agg._sum.totalTokens ?? 0);
      const planned = await db.prisma.usageReport.createMany({
        data: [{ tenant, periodStart, periodEnd, quantity, idempotencyKey: idempotencyKey(tenant, periodStart), status: quantity > 0n ? "pending" : "empty" }],
        skipDuplicates: true,
      });
      if (quantity === 0n && planned.count > 0) summary.skippedEmpty++;
    }
    const pending = await db.prisma.usageReport.findMany({ where: { tenant, status: { in: ["pending", "failed"] } }, orderBy: { periodStart: "asc" }, take: 1000 });
    for (const candidate of pending) {
      // One replica per report: the row stays locked from the call until it is marked, and a
      // replica that finds it locked (or already reported) skips it.
      await db.prisma.$transaction(async (tx) => {
        const [r] = await tx.$queryRaw<typeof pending>`
          select * from "UsageReport" where id = ${candidate.id} and status in ('pending', 'failed') for update skip locked`;
        if (!r) return;
        await reportOne(tx, r, customer, summary);
      }, { timeout: 120_000, maxWait: 30_000 });
    }
  }

  type Tx = Parameters<Parameters<Database["prisma"]["$transaction"]>[0]>[0];
  type Report = Awaited<ReturnType<Database["prisma"]["usageReport"]["findMany"]>>[number];

  async function reportOne(tx: Tx, r: Report, customer: string, summary: ReportSummary): Promise<void> {
    const meta = { tenant: r.tenant, periodStart: r.periodStart.toISOString() };
    try {
      const event = await stripe.billing.meterEvents.create({
        event_name: opts.meterEventName,
        identifier: r.idempotencyKey,
        // Inside the period, so Stripe bills it to the right invoice.
        timestamp: Math.floor((r.periodEnd.getTime() - 1000) / 1000),
        payload: { stripe_customer_id: customer, value: r.quantity.toString() },
      }, { idempotencyKey: r.idempotencyKey });
      await opts.afterStripeCall?.(r.idempotencyKey);
      await tx.usageReport.update({ where: { id: r.id }, data: { status: "reported", reportedAt: now(), stripeRef: event.identifier, lastError: null } });
      summary.reported++;
      log.info("Reported metered usage to Stripe", { ...meta, quantity: r.quantity.toString() });
    } catch (err) {
      if ((err as { crash?: boolean }).crash) throw err;
      summary.failed++;
      await tx.usageReport.update({ where: { id: r.id }, data: { status: "failed", lastError: (err as Error).message } });
      log.warn("Reporting metered usage to Stripe failed; will retry", { ...meta, error: (err as Error).message });
    }
  }

  return {
    async runOnce(): Promise<ReportSummary> {
      const summary: ReportSummary = { reported: 0, skippedEmpty: 0, failed: 0 };
      const accounts = await db.prisma.billingAccount.findMany({ where: { stripeCustomerId: { not: null } }, select: { tenant: true, stripeCustomerId: true, createdAt: true } });
      for (const a of accounts) await reportTenant(a.tenant, a.stripeCustomerId!, a.createdAt, summary);
      return summary;
    },
  };
}

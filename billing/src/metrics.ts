/** Prometheus metrics of the billing process (served on /metrics). */
import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";
import type { Database } from "@crosslogic/data";

export function createMetrics(db?: Database) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "crosslogic_billing_" });
  const m = {
    registry,
    stripeWebhooks: new Counter({
      name: "crosslogic_billing_stripe_webhooks_total",
      help: "Stripe webhook requests by outcome: processed, ignored, stale, duplicate (answered 200); missing_signature, invalid_signature (400); error (500, Stripe retries).",
      labelNames: ["status"], registers: [registry],
    }),
    notifications: new Counter({
      name: "crosslogic_billing_notifications_total",
      help: "Outgoing webhook attempts by result: delivered, failed (will retry) or dead_lettered (last attempt failed).",
      labelNames: ["result"], registers: [registry],
    }),
    usageReports: new Counter({
      name: "crosslogic_billing_usage_reports_total",
      help: "Metered-usage periods by result: reported (accepted by Stripe), failed (retried), empty (nothing to report).",
      labelNames: ["result"], registers: [registry],
    }),
    limitNotifications: new Counter({
      name: "crosslogic_billing_limit_notifications_total",
      help: "Rate-limit audit events turned into limit.threshold notifications (notified) or throttled by the window (suppressed).",
      labelNames: ["result"], registers: [registry],
    }),
    anomalyNotifications: new Counter({
      name: "crosslogic_billing_anomaly_notifications_total",
      help: "Traffic-anomaly audit events turned into usage.anomaly notifications (notified) or throttled by the window (suppressed).",
      labelNames: ["result"], registers: [registry],
    }),
    loopErrors: new Counter({ name: "crosslogic_billing_loop_errors_total", help: "Failed runs of a background job.", labelNames: ["job"], registers: [registry] }),
    outboxDepth: new Gauge({
      name: "crosslogic_billing_outbox_depth",
      help: "Outgoing webhook deliveries by status (pending: waiting to be sent; dead: dead-lettered), read from the database at scrape time.",
      labelNames: ["status"], registers: [registry],
      async collect() {
        if (!db) return;
        const rows = await db.prisma.webhookDelivery.groupBy({ by: ["status"], where: { status: { in: ["pending", "dead"] } }, _count: { _all: true } });
        this.reset();
        this.set({ status: "pending" }, 0);
        this.set({ status: "dead" }, 0);
        for (const r of rows) this.set({ status: r.status }, r._count._all);
      },
    }),
  };
  for (const s of ["processed", "ignored", "stale", "duplicate", "missing_signature", "invalid_signature", "error"]) m.stripeWebhooks.inc({ status: s }, 0);
  for (const r of ["delivered", "failed", "dead_lettered"]) m.notifications.inc({ result: r }, 0);
  for (const r of ["reported", "failed", "empty"]) m.usageReports.inc({ result: r }, 0);
  for (const r of ["notified", "suppressed"]) { m.limitNotifications.inc({ result: r }, 0); m.anomalyNotifications.inc({ result: r }, 0); }
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;

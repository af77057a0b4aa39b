/**
 * The billing process: Stripe webhook endpoint, billing loop (suspension after the grace period,
 * limit-threshold and usage-anomaly notifications), metered usage reporting (only with
 * STRIPE_SECRET_KEY), outgoing webhook sender and the retention job. /healthz, /readyz (database) and /metrics on PORT.
 *   node billing/src/main.ts
 */
import * as k8s from "@kubernetes/client-node";
import Stripe from "stripe";
import { createDatabase, runRetention } from "@crosslogic/data";
import { createApp } from "./app.ts";
import { loadConfig } from "./config.ts";
import { createAnomalyNotifier } from "./anomaly-notifications.ts";
import { createLimitNotifier } from "./limit-notifications.ts";
import { createLogger } from "./log.ts";
import { createMetrics } from "./metrics.ts";
import { reconcileAll } from "./reconcile.ts";
import { createSender } from "./sender.ts";
import { kubeTenantDirectory } from "./tenants.ts";
import { createUsageReporter } from "./usage-reporter.ts";

let config;
try {
  config = loadConfig();
} catch (err) {
  console.error((err as Error).message);
  process.exit(2);
}
const log = createLogger(config.LOG_LEVEL);
const db = createDatabase(config.DATABASE_URL);
const kc = new k8s.KubeConfig();
if (config.KUBECONFIG) kc.loadFromFile(config.KUBECONFIG); else kc.loadFromCluster();
const tenants = kubeTenantDirectory(kc);
const api = config.STRIPE_API_BASE ? new URL(config.STRIPE_API_BASE) : null;
// Only usage reporting calls Stripe's API; verifying webhook signatures needs no API key.
const stripe = new Stripe(config.STRIPE_SECRET_KEY ?? "sk_unset_usage_reporting_disabled", {
  maxNetworkRetries: 2,
  ...(api ? { host: api.hostname, port: Number(api.port || (api.protocol === "https:" ? 443 : 80)), protocol: api.protocol.replace(":", "") as "http" | "https" } : {}),
});
const metrics = createMetrics(db);
const deps = { db, tenants, log, graceMs: config.BILLING_GRACE_PERIOD_SECONDS * 1000 };
const app = createApp({ ...deps, stripe, webhookSecret: config.STRIPE_WEBHOOK_SECRET, metrics });
const server = config.HOST
  ? app.listen(config.PORT, config.HOST, () => log.info("Billing listening", { host: config.HOST, port: config.PORT }))
  : app.listen(config.PORT, () => log.info("Billing listening", { port: config.PORT }));

const sender = createSender(db, (tenant, ref) => tenants.secret(tenant, ref), log, {
  maxAttempts: config.WEBHOOK_MAX_ATTEMPTS, onResult: (result) => metrics.notifications.inc({ result }),
});
sender.start();
const reporter = config.STRIPE_SECRET_KEY
  ? createUsageReporter(db, stripe, log, {
    meterEventName: config.STRIPE_METER_EVENT_NAME, periodMs: config.USAGE_REPORT_PERIOD_SECONDS * 1000, settleMs: config.USAGE_REPORT_SETTLE_SECONDS * 1000,
  })
  : null;
if (reporter) log.info("Usage reporting to Stripe enabled", { meterEventName: config.STRIPE_METER_EVENT_NAME, periodSeconds: config.USAGE_REPORT_PERIOD_SECONDS });
else log.warn("Usage reporting to Stripe disabled: STRIPE_SECRET_KEY is not set (the webhook endpoint and notifications still run)");
const limits = createLimitNotifier(deps, { windowMs: config.LIMIT_NOTIFICATION_WINDOW_SECONDS * 1000 });
const anomalies = createAnomalyNotifier(deps, { windowMs: config.ANOMALY_NOTIFICATION_WINDOW_SECONDS * 1000 });

function every(seconds: number, name: string, fn: () => Promise<unknown>): NodeJS.Timeout {
  let busy = false;
  const run = async () => {
    if (busy) return;
    busy = true;
    try { await fn(); } catch (err) {
      metrics.loopErrors.inc({ job: name });
      log.error(`${name} failed`, { error: (err as Error).message });
    } finally { busy = false; }
  };
  void run();
  return setInterval(run, seconds * 1000);
}
const timers = [
  every(config.BILLING_LOOP_INTERVAL_SECONDS, "Billing loop", async () => {
    await reconcileAll(deps);
    const r = await limits.runOnce();
    metrics.limitNotifications.inc({ result: "notified" }, r.notified);
    metrics.limitNotifications.inc({ result: "suppressed" }, r.suppressed);
    const a = await anomalies.runOnce();
    metrics.anomalyNotifications.inc({ result: "notified" }, a.notified);
    metrics.anomalyNotifications.inc({ result: "suppressed" }, a.suppressed);
  }),
  ...(reporter ? [every(config.USAGE_REPORT_PERIOD_SECONDS / 4, "Usage reporting", async () => {
    const s = await reporter.runOnce();
    metrics.usageReports.inc({ result: "reported" }, s.reported);
    metrics.usageReports.inc({ result: "failed" }, s.failed);
    metrics.usageReports.inc({ result: "empty" }, s.skippedEmpty);
  })] : []),
  every(config.RETENTION_INTERVAL_SECONDS, "Retention", async () => {
    const report = await runRetention(db, new Date(), { usageDays: config.USAGE_RETENTION_DAYS, auditDays: config.AUDIT_RETENTION_DAYS });
    log.info("Retention ran", { ...report.deleted, droppedPartitions: report.droppedPartitions });
  }),
];

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info("Billing stopping", { signal });
  for (const t of timers) clearInterval(t);
  server.close();
  await sender.stop();
  await db.close();
  process.exit(0);
}
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));

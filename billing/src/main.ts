/**
 * The billing process: Stripe webhook endpoint, billing loop (suspension after the grace period),
 * metered usage reporting, outgoing webhook sender and the retention job.
 *   node billing/src/main.ts
 */
import * as k8s from "@kubernetes/client-node";
import Stripe from "stripe";
import { createDatabase, runRetention } from "@crosslogic/data";
import { createApp } from "./app.ts";
import { loadConfig } from "./config.ts";
import { createLogger } from "./log.ts";
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
const stripe = new Stripe(config.STRIPE_SECRET_KEY, {
  maxNetworkRetries: 2,
  ...(api ? { host: api.hostname, port: Number(api.port || (api.protocol === "https:" ? 443 : 80)), protocol: api.protocol.replace(":", "") as "http" | "https" } : {}),
});
const deps = { db, tenants, log, graceMs: config.BILLING_GRACE_PERIOD_SECONDS * 1000 };
const app = createApp({ ...deps, stripe, webhookSecret: config.STRIPE_WEBHOOK_SECRET });
const server = app.listen(config.PORT, () => log.info("Billing listening", { port: config.PORT }));

const sender = createSender(db, (tenant, ref) => tenants.secret(tenant, ref), log, { maxAttempts: config.WEBHOOK_MAX_ATTEMPTS });
sender.start();
const reporter = createUsageReporter(db, stripe, log, {
  meterEventName: config.STRIPE_METER_EVENT_NAME, periodMs: config.USAGE_REPORT_PERIOD_SECONDS * 1000, settleMs: config.USAGE_REPORT_SETTLE_SECONDS * 1000,
});

function every(seconds: number, name: string, fn: () => Promise<unknown>): NodeJS.Timeout {
  let busy = false;
  const run = async () => {
    if (busy) return;
    busy = true;
    try { await fn(); } catch (err) { log.error(`${name} failed`, { error: (err as Error).message }); } finally { busy = false; }
  };
  void run();
  return setInterval(run, seconds * 1000);
}
const timers = [
  every(config.BILLING_LOOP_INTERVAL_SECONDS, "Billing loop", () => reconcileAll(deps)),
  every(config.USAGE_REPORT_PERIOD_SECONDS / 4, "Usage reporting", () => reporter.runOnce()),
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

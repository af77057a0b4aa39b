import { Type, type Static } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";

const Int = (description: string, def: number, minimum = 0) => Type.Integer({ description, default: def, minimum });

const Env = Type.Object({
  PORT: Int("Port of the Stripe webhook endpoint, /healthz, /readyz and /metrics", 8082, 1),
  HOST: Type.Optional(Type.String({ minLength: 1, description: "Address to listen on (all interfaces when unset)" })),
  DATABASE_URL: Type.String({ pattern: "^postgres(ql)?://", description: "PostgreSQL (migrated with `make migrate`)" }),
  STRIPE_SECRET_KEY: Type.Optional(Type.String({ minLength: 8, description: "Stripe API key (sk_…) used to report metered usage; when unset, usage reporting is off (the webhook endpoint still works)" })),
  STRIPE_WEBHOOK_SECRET: Type.String({ pattern: "^whsec_", description: "Signing secret of the Stripe webhook endpoint (whsec_…)" }),
  STRIPE_API_BASE: Type.Optional(Type.String({ pattern: "^https?://", description: "Stripe API base URL, e.g. a stripe-mock" })),
  STRIPE_METER_EVENT_NAME: Type.String({ default: "crosslogic_tokens", minLength: 1, description: "Billing meter event name for token usage" }),
  KUBECONFIG: Type.Optional(Type.String({ description: "kubeconfig path (in-cluster config otherwise)" })),
  BILLING_GRACE_PERIOD_SECONDS: Int("How long payment may fail (or a cancelled subscription last) before the tenant is suspended", 259_200),
  BILLING_LOOP_INTERVAL_SECONDS: Int("How often tenant billing state is reconciled", 60, 1),
  USAGE_REPORT_PERIOD_SECONDS: Int("Length of a metered-usage reporting period", 3600, 60),
  USAGE_REPORT_SETTLE_SECONDS: Int("Wait after a period ends before reporting it (late usage batches)", 300),
  RETENTION_INTERVAL_SECONDS: Int("How often the retention job runs", 3600, 60),
  USAGE_RETENTION_DAYS: Int("Usage records are kept this many days", 90, 1),
  AUDIT_RETENTION_DAYS: Int("Audit events are kept this many days", 365, 1),
  LIMIT_NOTIFICATION_WINDOW_SECONDS: Int("At most one limit.threshold notification per tenant, key and limiter layer within this window", 3600, 1),
  ANOMALY_NOTIFICATION_WINDOW_SECONDS: Int("At most one usage.anomaly notification per tenant, subject (key or tenant) and metric within this window (an escalation to critical still goes out)", 3600, 1),
  WEBHOOK_MAX_ATTEMPTS: Int("Outgoing webhook attempts before dead-lettering", 8, 1),
  LOG_LEVEL: Type.Union([Type.Literal("error"), Type.Literal("warn"), Type.Literal("info"), Type.Literal("debug")], { default: "info" }),
});

export type BillingConfig = Readonly<Static<typeof Env>>;

/** Parses the billing process's configuration from the environment, listing every problem at once. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): BillingConfig {
  const raw: Record<string, unknown> = {};
  for (const [name, schema] of Object.entries(Env.properties)) {
    const value = env[name];
    if (value === undefined || value === "") continue;
    raw[name] = (schema as { type?: string }).type === "integer" && /^-?\d+$/.test(value) ? Number(value) : value;
  }
  const withDefaults = Value.Default(Env, raw);
  const errors = [...Value.Errors(Env, withDefaults)].map((e) => `${e.path.slice(1) || "environment"}: ${e.message}`);
  if (errors.length) throw new Error(`invalid billing configuration:\n  ${errors.join("\n  ")}`);
  return Object.freeze(withDefaults as Static<typeof Env>);
}

/**
 * Traffic-anomaly notifications (`usage.anomaly`): derived from the `usage_anomaly` audit events
 * the gateway's anomaly detector raises (per API key and per tenant, per metric; see
 * safety/src/anomaly.ts). At most one per tenant, subject (the key, or the tenant as a whole) and
 * metric per window — except that an escalation to `critical` is sent even after a `warning` in the
 * window. The cursor, idempotency and throttling are those of ./audit-notifications.ts.
 */
import { apiKeyPrefix, isWellFormedApiKey } from "@crosslogic/crds/api-key";
import { createAuditNotifier, detailsOf, type AuditNotificationRule, type AuditNotifierDeps, type AuditNotifierOptions, type AuditRow } from "./audit-notifications.ts";

export const ANOMALY_CURSOR = "usage-anomaly";

export function anomalyNotificationId(auditEventId: bigint): string {
  return `ntf_anomaly_${auditEventId}`;
}

const SEVERITIES = ["warning", "critical"] as const;
type Severity = (typeof SEVERITIES)[number];

/** The key prefix of the audit row's actor: never more than a prefix leaves billing (the gateway writes prefixes; another writer might not). */
function prefixOnly(actor: string | null): string | null {
  if (actor === null) return null;
  if (isWellFormedApiKey(actor)) return apiKeyPrefix(actor);
  return apiKeyPrefix(actor) === actor ? actor : null;
}

function anomalyOf(r: AuditRow) {
  const d = detailsOf(r);
  const num = (v: unknown): number | null => typeof v === "number" && Number.isFinite(v) ? v : null;
  const keyPrefix = prefixOnly(r.actorId);
  const subject: "key" | "tenant" = d.subject === "tenant" || d.subject === "key" ? d.subject : keyPrefix ? "key" : "tenant";
  const severity: Severity = SEVERITIES.includes(d.severity as Severity) ? d.severity as Severity : "warning";
  return {
    subject, keyPrefix: subject === "key" ? keyPrefix : null, metric: typeof d.metric === "string" ? d.metric : "unknown", severity,
    observed: num(d.observed), expected: num(d.expected), ratio: num(d.ratio), zScore: num(d.z_score),
    windowStart: typeof d.window_start === "string" ? d.window_start : null, windowSeconds: num(d.window_seconds),
  };
}

/** Throttle group `anomaly/<subject>/<metric>/<severity>` (stored in LimitNotification.layer, which limit.threshold fills with limiter layer names). */
const groupOf = (subject: string, metric: string, severity: Severity) => `anomaly/${subject}/${metric}/${severity}`;

export const usageAnomalyRule: AuditNotificationRule = {
  type: "usage.anomaly",
  cursor: ANOMALY_CURSOR,
  actions: ["usage_anomaly"],
  id: anomalyNotificationId,
  throttle(r) {
    const a = anomalyOf(r);
    // A warning is suppressed by any notification of the same subject and metric in the window; a critical one only by a critical one.
    const suppressing: readonly Severity[] = a.severity === "critical" ? ["critical"] : SEVERITIES;
    return { keyPrefix: a.keyPrefix ?? "", group: groupOf(a.subject, a.metric, a.severity), suppressedBy: suppressing.map((s) => groupOf(a.subject, a.metric, s)) };
  },
  data(r, windowMs) {
    const a = anomalyOf(r);
    return {
      subject: a.subject, key_prefix: a.keyPrefix, metric: a.metric, severity: a.severity,
      observed: a.observed, expected: a.expected, ratio: a.ratio, z_score: a.zScore,
      window_start: a.windowStart, window_seconds: a.windowSeconds, occurred_at: r.timestamp.toISOString(),
      throttle_seconds: Math.round(windowMs / 1000),
    };
  },
};

export function createAnomalyNotifier(deps: AuditNotifierDeps, opts: AuditNotifierOptions) {
  return createAuditNotifier(deps, usageAnomalyRule, opts);
}

/**
 * Limit-threshold notifications (`limit.threshold`): derived from the audit events the gateway
 * persists when a client's traffic hits a rate limit. At most one per tenant, key and limiter layer
 * per window; the cursor, idempotency and throttling are those of ./audit-notifications.ts.
 */
import type { AuditAction } from "@crosslogic/crds/audit";
import { createAuditNotifier, detailsOf, type AuditNotificationRule, type AuditNotifierDeps, type AuditNotifierOptions } from "./audit-notifications.ts";

/**
 * Audit actions that mean "this traffic hit a limit". The gateway writes `rate_limit_block` when a
 * client becomes blocked after repeated 429s (details.layer says which limit); it does not audit
 * every single 429, so that is the signal available.
 */
export const LIMIT_ACTIONS: readonly AuditAction[] = ["rate_limit_block"];
export const LIMIT_CURSOR = "limit-threshold";

export function limitNotificationId(auditEventId: bigint): string {
  return `ntf_limit_${auditEventId}`;
}

const layerOf = (details: Record<string, unknown>): string => typeof details.layer === "string" ? details.layer : "unknown";

export const limitThresholdRule: AuditNotificationRule = {
  type: "limit.threshold",
  cursor: LIMIT_CURSOR,
  actions: LIMIT_ACTIONS,
  id: limitNotificationId,
  throttle: (r) => ({ keyPrefix: r.actorId ?? "", group: layerOf(detailsOf(r)) }),
  data: (r, windowMs) => ({
    layer: layerOf(detailsOf(r)), key_prefix: r.actorId, action: r.action, request_id: r.requestId, occurred_at: r.timestamp.toISOString(),
    window_seconds: Math.round(windowMs / 1000),
  }),
};

export function createLimitNotifier(deps: AuditNotifierDeps, opts: AuditNotifierOptions) {
  return createAuditNotifier(deps, limitThresholdRule, opts);
}

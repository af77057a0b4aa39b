/**
 * Audit events in the security document's format. Every component writes them as one winston JSON
 * line and, where a database is configured, persists them (table AuditEvent). API keys appear by
 * prefix only; prompts and completions never appear.
 */
export const AuditActions = [
  "api_key_created", "api_key_rotated", "api_key_revoked", "api_key_expired", "api_key_deleted",
  "auth_failed", "admin_auth_succeeded", "admin_auth_failed", "admin_action",
  "tenant_created", "tenant_suspended", "tenant_resumed", "tenant_deleted", "tenant_data_erased",
  "node_launched", "node_terminated",
  "billing_event", "payment_failed", "payment_succeeded", "subscription_cancelled",
  "rate_limit_block", "usage_anomaly", "content_flagged", "webhook_dead_lettered",
] as const;
export type AuditAction = (typeof AuditActions)[number];

export interface AuditEvent {
  /** RFC 3339. */
  timestamp: string;
  request_id: string | null;
  action: AuditAction;
  /** Who did it: a user, a ServiceAccount, an API key prefix, `operator`, `stripe`… */
  actor_id: string | null;
  tenant_id: string | null;
  ip_address: string | null;
  details: Record<string, unknown>;
}

export function auditEvent(action: AuditAction, fields: Partial<Omit<AuditEvent, "action" | "timestamp">> & { timestamp?: Date } = {}): AuditEvent {
  return {
    timestamp: (fields.timestamp ?? new Date()).toISOString(),
    request_id: fields.request_id ?? null,
    action,
    actor_id: fields.actor_id ?? null,
    tenant_id: fields.tenant_id ?? null,
    ip_address: fields.ip_address ?? null,
    details: fields.details ?? {},
  };
}

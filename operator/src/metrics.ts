/** Prometheus metrics of the operator (served on /metrics). */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "crosslogic_operator_" });
  const m = {
    registry,
    reconciles: new Counter({ name: "crosslogic_operator_reconcile_total", help: "Reconciles by controller and result (success, error, requeue).", labelNames: ["controller", "result"], registers: [registry] }),
    reconcileSeconds: new Histogram({ name: "crosslogic_operator_reconcile_duration_seconds", help: "Reconcile duration.", labelNames: ["controller"], buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5], registers: [registry] }),
    queueDepth: new Gauge({ name: "crosslogic_operator_workqueue_depth", help: "Keys waiting in each controller's queue.", labelNames: ["controller"], registers: [registry] }),
    writes: new Counter({ name: "crosslogic_operator_writes_total", help: "Writes to the API server by controller and kind (apply, create, update, delete, status).", labelNames: ["controller", "kind", "op"], registers: [registry] }),
    apiRequests: new Counter({ name: "crosslogic_operator_api_requests_total", help: "Requests to the Kubernetes API server by verb and status code.", labelNames: ["verb", "code"], registers: [registry] }),
    informerLists: new Counter({ name: "crosslogic_operator_informer_lists_total", help: "Full lists (initial sync and relists after 410 Gone).", labelNames: ["resource"], registers: [registry] }),
    watchRestarts: new Counter({ name: "crosslogic_operator_watch_restarts_total", help: "Watches restarted after an error, a stall or 410 Gone.", labelNames: ["resource", "reason"], registers: [registry] }),
    leader: new Gauge({ name: "crosslogic_operator_leader", help: "1 while this replica holds the leader Lease.", registers: [registry] }),
    revocationsPublished: new Counter({ name: "crosslogic_operator_revocations_published_total", help: "Revocation messages published on Redis.", labelNames: ["type"], registers: [registry] }),
    auditPersisted: new Counter({ name: "crosslogic_operator_audit_events_persisted_total", help: "Audit events written to the database.", registers: [registry] }),
    auditDropped: new Counter({ name: "crosslogic_operator_audit_events_dropped_total", help: "Audit events dropped from the full database buffer (their log lines were written).", registers: [registry] }),
    auditWriteErrors: new Counter({ name: "crosslogic_operator_audit_write_errors_total", help: "Failed audit batch writes (retried).", registers: [registry] }),
    auditPending: new Gauge({ name: "crosslogic_operator_audit_events_pending", help: "Audit events waiting to be written to the database.", registers: [registry] }),
    notificationsEnqueued: new Counter({ name: "crosslogic_operator_notifications_enqueued_total", help: "Outbox rows written for tenant webhooks, by event type.", labelNames: ["type"], registers: [registry] }),
  };
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;

/** Prometheus metrics of the gateway (served on the admin port only). */
import client from "prom-client";

export function createMetrics() {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });
  const m = {
    registry,
    requests: new client.Counter({ name: "gateway_requests_total", help: "Requests answered", labelNames: ["tenant", "environment", "endpoint", "status"], registers: [registry] }),
    latency: new client.Histogram({
      name: "gateway_request_duration_seconds", help: "Time to the end of the response", labelNames: ["tenant", "environment", "endpoint"],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120], registers: [registry],
    }),
    tokens: new client.Counter({ name: "gateway_tokens_total", help: "Tokens metered", labelNames: ["tenant", "environment", "kind"], registers: [registry] }),
    limitDecisions: new client.Counter({ name: "gateway_limit_decisions_total", help: "Rate-limit decisions", labelNames: ["tenant", "environment", "decision", "layer"], registers: [registry] }),
    authFailures: new client.Counter({ name: "gateway_auth_failures_total", help: "Refused keys by internal reason", labelNames: ["reason"], registers: [registry] }),
    redisFailures: new client.Counter({ name: "gateway_redis_failures_total", help: "Redis errors or timeouts, by operation and the policy applied", labelNames: ["op", "policy"], registers: [registry] }),
    upstreamErrors: new client.Counter({ name: "gateway_upstream_errors_total", help: "Upstream failures", labelNames: ["kind"], registers: [registry] }),
    ejections: new client.Counter({ name: "gateway_outlier_ejections_total", help: "Endpoints ejected", registers: [registry] }),
    usageBuffered: new client.Gauge({ name: "gateway_usage_buffered", help: "Usage records waiting for PostgreSQL", registers: [registry] }),
    usageFlushed: new client.Counter({ name: "gateway_usage_flushed_total", help: "Usage records written", registers: [registry] }),
    usageFlushFailures: new client.Counter({ name: "gateway_usage_flush_failures_total", help: "Failed usage batch writes", registers: [registry] }),
    configReloads: new client.Counter({ name: "gateway_config_reloads_total", help: "Gateway-config documents applied or rejected", labelNames: ["result"], registers: [registry] }),
    keysLoaded: new client.Gauge({ name: "gateway_keys_loaded", help: "API keys in the in-memory index", registers: [registry] }),
    inFlight: new client.Gauge({ name: "gateway_in_flight_requests", help: "Requests being proxied", registers: [registry] }),
    adminAuth: new client.Counter({ name: "gateway_admin_auth_total", help: "Admin token checks", labelNames: ["result"], registers: [registry] }),
  };
  return m;
}
export type Metrics = ReturnType<typeof createMetrics>;

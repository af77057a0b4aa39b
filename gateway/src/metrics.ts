/** Prometheus metrics of the gateway (served on the admin port only). */
import client from "prom-client";
import { FastCounter, FastHistogram } from "./fast-metrics.ts";

export function createMetrics() {
  const registry = new client.Registry();
  /** Requests being proxied (read at scrape time). */
  const inFlight = { n: 0 };
  client.collectDefaultMetrics({ register: registry });
  const m = {
    registry,
    inFlightCount: inFlight,
    requests: new FastCounter("gateway_requests_total", "Requests answered", ["tenant", "environment", "endpoint", "status"], registry),
    latency: new FastHistogram("gateway_request_duration_seconds", "Time to the end of the response", ["tenant", "environment", "endpoint"], [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120], registry),
    tokens: new FastCounter("gateway_tokens_total", "Tokens metered", ["tenant", "environment", "kind"], registry),
    /** Pre-admission (limits/limiter.ts): tickets used by a request, handed back unused, or discarded with a dropped connection. */
    limitTickets: new FastCounter("gateway_limit_tickets_total", "Pre-admitted requests by outcome: used, refunded, discarded", ["outcome"], registry),
    limitDecisions: new FastCounter("gateway_limit_decisions_total", "Rate-limit decisions", ["tenant", "environment", "decision", "layer"], registry),
    /** Graduated response: delay decided before answering a refusal. */
    refusalDelay: new FastHistogram("gateway_refusal_delay_seconds", "Graduated-response delay before a refusal", ["layer"], [0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 30], registry),
    authFailures: new client.Counter({ name: "gateway_auth_failures_total", help: "Refused keys by internal reason", labelNames: ["reason"], registers: [registry] }),
    redisFailures: new client.Counter({ name: "gateway_redis_failures_total", help: "Redis errors or timeouts, by operation and the policy applied", labelNames: ["op", "policy"], registers: [registry] }),
    upstreamErrors: new client.Counter({ name: "gateway_upstream_errors_total", help: "Upstream failures", labelNames: ["kind"], registers: [registry] }),
    ejections: new client.Counter({ name: "gateway_outlier_ejections_total", help: "Endpoints ejected", registers: [registry] }),
    usageBuffered: new client.Gauge({ name: "gateway_usage_buffered", help: "Usage records waiting for PostgreSQL", registers: [registry] }),
    usageFlushed: new client.Counter({ name: "gateway_usage_flushed_total", help: "Usage records written", registers: [registry] }),
    usageFlushFailures: new client.Counter({ name: "gateway_usage_flush_failures_total", help: "Failed usage batch writes", registers: [registry] }),
    configReloads: new client.Counter({ name: "gateway_config_reloads_total", help: "Gateway-config documents applied, rejected, or waiting (their environment defined by another source until it is removed)", labelNames: ["result"], registers: [registry] }),
    keysLoaded: new client.Gauge({ name: "gateway_keys_loaded", help: "API keys in the in-memory index", registers: [registry] }),
    inFlight: new client.Gauge({ name: "gateway_in_flight_requests", help: "Requests being proxied", registers: [registry], collect() { this.set(inFlight.n); } }),
    contentFlags: new client.Counter({ name: "gateway_content_flags_total", help: "Content-safety verdicts that flagged or blocked (verdicts only, never text)", labelNames: ["direction", "action", "category"], registers: [registry] }),
    contentClassifier: new client.Counter({ name: "gateway_content_classifier_total", help: "External content-classifier calls by outcome: flagged, clean, timeout, error (verdicts only, never text)", labelNames: ["outcome"], registers: [registry] }),
    anomalies: new client.Counter({ name: "gateway_usage_anomalies_total", help: "Traffic anomalies raised (usage_anomaly audit events)", labelNames: ["metric", "severity"], registers: [registry] }),
    threatFeedRefreshes: new client.Counter({ name: "gateway_threat_feed_refreshes_total", help: "Threat-feed reads by source (a URL by its host) and outcome: loaded, failed (the last good list stays)", labelNames: ["feed", "outcome"], registers: [registry] }),
    threatFeedRanges: new client.Gauge({ name: "gateway_threat_feed_ranges", help: "Address ranges refused from threat feeds (overlapping networks merged)", registers: [registry] }),
    threatFeedRefusals: new client.Counter({ name: "gateway_threat_feed_refusals_total", help: "Requests refused because the client address is listed by a threat feed", registers: [registry] }),
    adminAuth: new client.Counter({ name: "gateway_admin_auth_total", help: "Admin token checks", labelNames: ["result"], registers: [registry] }),
  };
  return m;
}
export type Metrics = ReturnType<typeof createMetrics>;

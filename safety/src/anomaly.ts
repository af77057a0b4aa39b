/**
 * Traffic anomaly detection per API key and per tenant.
 *
 * Traffic is counted in fixed windows (default 60 s) per subject and metric (requests, tokens,
 * 5xx errors, 401s). The baseline of each metric is an exponentially weighted mean with an
 * exponentially weighted mean absolute deviation (a robust scale: each window's contribution is
 * clipped to mean + 3·scale, so a spike cannot drag the baseline after it). A window — or the
 * current, still-open window as soon as it gets there, so detection does not wait for the window
 * to end — is anomalous when all three hold:
 *   observed ≥ minCount[metric]              (ignore tiny numbers)
 *   observed ≥ spikeRatio × expected          (a large relative jump, default 4×)
 *   (observed − expected) / scale ≥ zThreshold (far outside normal noise, default 6)
 * A slow ramp never trips it: the baseline follows (at +5 % per window the observed/expected
 * ratio settles near 1.4). Severity is `critical` at ≥ criticalRatio × expected (default 10×) or
 * when the baseline was ~0, else `warning`. One event per subject and metric when an anomaly
 * starts, and one more if it escalates to critical; none while it persists. A running anomaly
 * stays under evaluation, request by request and window after window, until it has reached
 * critical (a surge arriving one request at a time crosses the warning ratio first and the
 * critical one later); it ends with the first window that is not anomalous.
 *
 * Memory: a fixed-size record per subject (12 numbers and a few flags); at most `maxSubjects`
 * subjects (oldest evicted first). Time comes from the injectable clock or the `at` argument.
 */
import { auditEvent, type AuditEvent } from "@crosslogic/crds/audit";

export const Metrics = ["requests", "tokens", "errors", "unauthorized"] as const;
export type Metric = (typeof Metrics)[number];

export interface TrafficSample {
  readonly tenant: string;
  /** API key prefix (`clsk_live_1a2b3c4d`); absent for traffic that has no key (e.g. 401 with a malformed key). */
  readonly keyPrefix?: string | null;
  readonly requests?: number;
  readonly tokens?: number;
  readonly errors?: number;
  readonly unauthorized?: number;
}

export type Severity = "warning" | "critical";

export interface AnomalyEvent {
  readonly subject: "key" | "tenant";
  readonly tenant: string;
  readonly keyPrefix: string | null;
  readonly metric: Metric;
  readonly severity: Severity;
  readonly observed: number;
  readonly expected: number;
  /** observed / expected, or null when the baseline is ~0. */
  readonly ratio: number | null;
  readonly zScore: number;
  /** RFC 3339 start of the window. */
  readonly windowStart: string;
  readonly windowSeconds: number;
  /** RFC 3339 time of detection. */
  readonly detectedAt: string;
}

export interface AnomalyOptions {
  readonly windowMs?: number;
  /** EWMA weight of each closed window. Default 0.1. */
  readonly alpha?: number;
  /** Windows observed before alerts are possible. Default 5. */
  readonly warmupWindows?: number;
  readonly spikeRatio?: number;
  readonly criticalRatio?: number;
  readonly zThreshold?: number;
  readonly minCount?: Partial<Record<Metric, number>>;
  readonly maxSubjects?: number;
  readonly now?: () => number;
}

export interface AnomalyDetector {
  /** Count traffic; returns the anomalies this sample revealed (usually none). */
  record(sample: TrafficSample, at?: number): AnomalyEvent[];
  /** Subjects currently tracked. */
  size(): number;
}

const DEFAULT_MIN: Record<Metric, number> = { requests: 30, tokens: 5000, errors: 10, unauthorized: 10 };
const M = Metrics.length;
/** Idle windows replayed one by one after a gap; beyond that the baseline decays in one step. */
const MAX_REPLAY = 32;

interface Subject {
  readonly kind: "key" | "tenant";
  readonly tenant: string;
  readonly keyPrefix: string | null;
  windowStart: number;
  windows: number;
  readonly mean: Float64Array;
  readonly dev: Float64Array;
  readonly current: Float64Array;
  /** Severity already alerted in the running anomaly: 0 none, 1 warning, 2 critical. */
  readonly alerted: Uint8Array;
  /** Whether the current window has been anomalous so far. */
  readonly hot: Uint8Array;
}

export function createAnomalyDetector(options: AnomalyOptions = {}): AnomalyDetector {
  const windowMs = options.windowMs ?? 60_000;
  const alpha = options.alpha ?? 0.1;
  const warmup = options.warmupWindows ?? 5;
  const spikeRatio = options.spikeRatio ?? 4;
  const criticalRatio = options.criticalRatio ?? 10;
  const zThreshold = options.zThreshold ?? 6;
  const minCount = { ...DEFAULT_MIN, ...options.minCount };
  const maxSubjects = options.maxSubjects ?? 100_000;
  const now = options.now ?? Date.now;
  const subjects = new Map<string, Subject>();

  const scaleOf = (s: Subject, m: number): number => Math.max(1.25 * s.dev[m]!, 0.05 * s.mean[m]!, 1);

  const evaluate = (s: Subject, m: number, observed: number, at: number, out: AnomalyEvent[]): boolean => {
    if (s.windows < warmup) return false;
    const metric = Metrics[m]!;
    const expected = s.mean[m]!;
    const z = (observed - expected) / scaleOf(s, m);
    const anomalous = observed >= minCount[metric] && observed >= spikeRatio * expected && z >= zThreshold;
    if (!anomalous) return false;
    const ratio = expected >= 0.5 ? observed / expected : null;
    const severity: Severity = ratio === null || ratio >= criticalRatio ? "critical" : "warning";
    const level = severity === "critical" ? 2 : 1;
    if (s.alerted[m]! < level) {
      s.alerted[m] = level;
      out.push({
        subject: s.kind, tenant: s.tenant, keyPrefix: s.keyPrefix, metric, severity,
        observed: Math.round(observed), expected: Math.round(expected * 100) / 100,
        ratio: ratio === null ? null : Math.round(ratio * 100) / 100, zScore: Math.round(z * 100) / 100,
        windowStart: new Date(s.windowStart).toISOString(), windowSeconds: windowMs / 1000, detectedAt: new Date(at).toISOString(),
      });
    }
    return true;
  };

  const update = (s: Subject, m: number, value: number): void => {
    const a = s.windows < warmup ? 1 / (s.windows + 1) : alpha;
    const mean = s.mean[m]!;
    const clipped = s.windows < warmup ? value : Math.min(value, mean + 3 * scaleOf(s, m));
    s.dev[m] = (1 - a) * s.dev[m]! + a * Math.abs(clipped - mean);
    s.mean[m] = (1 - a) * mean + a * clipped;
  };

  const closeWindows = (s: Subject, key: string, at: number): void => {
    const elapsed = Math.floor((at - s.windowStart) / windowMs);
    if (elapsed < 1) return;
    for (let m = 0; m < M; m++) {
      // No evaluation here: `add` evaluated the final count already (the baseline has not moved since).
      update(s, m, s.current[m]!);
      if (s.hot[m] === 0) s.alerted[m] = 0;
      s.current[m] = 0;
      s.hot[m] = 0;
    }
    s.windows++;
    const idle = elapsed - 1;
    for (let i = 0; i < Math.min(idle, MAX_REPLAY); i++) { for (let m = 0; m < M; m++) update(s, m, 0); s.windows++; }
    if (idle > MAX_REPLAY) {
      const decay = Math.pow(1 - alpha, idle - MAX_REPLAY);
      for (let m = 0; m < M; m++) { s.mean[m] = s.mean[m]! * decay; s.dev[m] = s.dev[m]! * decay; }
      s.windows += idle - MAX_REPLAY;
    }
    if (idle > 0) s.alerted.fill(0);
    s.windowStart += elapsed * windowMs;
    // Approximate LRU: re-insert once per window so active subjects move to the back.
    subjects.delete(key);
    subjects.set(key, s);
  };

  const subjectFor = (key: string, kind: "key" | "tenant", tenant: string, keyPrefix: string | null, at: number): Subject => {
    let s = subjects.get(key);
    if (!s) {
      s = {
        kind, tenant, keyPrefix, windowStart: Math.floor(at / windowMs) * windowMs, windows: 0,
        mean: new Float64Array(M), dev: new Float64Array(M), current: new Float64Array(M), alerted: new Uint8Array(M), hot: new Uint8Array(M),
      };
      subjects.set(key, s);
      while (subjects.size > maxSubjects) subjects.delete(subjects.keys().next().value!);
    }
    return s;
  };

  const add = (s: Subject, key: string, sample: TrafficSample, at: number, out: AnomalyEvent[]): void => {
    closeWindows(s, key, at);
    const values = [sample.requests ?? 0, sample.tokens ?? 0, sample.errors ?? 0, sample.unauthorized ?? 0];
    for (let m = 0; m < M; m++) {
      const v = values[m]!;
      if (!(v > 0)) continue;
      s.current[m] = s.current[m]! + v;
      // Keep evaluating a running anomaly until it has alerted critical: `alerted` still limits it to one event per level.
      if ((s.hot[m] === 0 || s.alerted[m]! < 2) && evaluate(s, m, s.current[m]!, at, out)) s.hot[m] = 1;
    }
  };

  return {
    record(sample, at = now()) {
      const out: AnomalyEvent[] = [];
      const tenantKey = `t\u0000${sample.tenant}`;
      add(subjectFor(tenantKey, "tenant", sample.tenant, null, at), tenantKey, sample, at, out);
      if (sample.keyPrefix) {
        const keyKey = `k\u0000${sample.tenant}\u0000${sample.keyPrefix}`;
        add(subjectFor(keyKey, "key", sample.tenant, sample.keyPrefix, at), keyKey, sample, at, out);
      }
      return out;
    },
    size() {
      return subjects.size;
    },
  };
}

/** The audit event (`usage_anomaly`, seed format) for an anomaly; the actor is the key prefix. */
export function anomalyAuditEvent(event: AnomalyEvent): AuditEvent {
  return auditEvent("usage_anomaly", {
    timestamp: new Date(event.detectedAt),
    actor_id: event.keyPrefix,
    tenant_id: event.tenant,
    details: {
      subject: event.subject, metric: event.metric, severity: event.severity, observed: event.observed, expected: event.expected,
      ratio: event.ratio, z_score: event.zScore, window_start: event.windowStart, window_seconds: event.windowSeconds,
    },
  });
}


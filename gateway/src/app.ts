/**
 * The public API: one plain `node:http` request handler (no framework on the inference path).
 * Request order: request context (id, security headers, CORS, client address) → endpoint and
 * method → body (type, size, JSON, schema) → auth → limits → models list or proxy → one error path
 * (`src/errors.ts` is the catalog). Every response — errors, 404, 413, 415, 429 and upstream
 * failures included — carries the seed's security headers, the request id, CORS and, once the
 * limiter has decided, X-RateLimit-*. Headers are collected in one flat list per request and
 * written with a single `writeHead`. Everything a request needs is in memory except the single
 * Redis admission call — none when a busy key holds a pre-admitted ticket (limits/limiter.ts) — and
 * one settle call after the response, not awaited; no database here.
 */
import { createHash, randomFillSync } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type winston from "winston";
import type { UsageRecord } from "@crosslogic/crds";
import { authenticate, authorize, externalCode, hostOnly, type AuthFailure } from "./auth.ts";
import type { AuditLog } from "./audit.ts";
import { isJsonContentType } from "./body.ts";
import { limitIdentity, type ClientAddress } from "./client-ip.ts";
import type { ConfigStore, EnvironmentView, KeyView } from "./config-store.ts";
import { errorBody, Errors, GatewayError, type ErrorCode } from "./errors.ts";
import type { CounterChild, HistogramChild } from "./fast-metrics.ts";
import { CORS_EXPOSE, CORS_HEADERS, CORS_MAX_AGE, securityHeaders } from "./headers.ts";
import type { Decision, Lease, Limiter } from "./limits/limiter.ts";
import type { UsageMeter } from "./metering.ts";
import type { Metrics } from "./metrics.ts";
import { endpoints, firstViolation, MAX_BODY_BYTES, type Endpoint } from "./openapi.ts";
import { forward, injectIncludeUsage } from "./proxy.ts";
import { describeUnknown } from "./redact.ts";
import { CONTENT_WARNING_HEADER, anomalyAuditEvent, contentWarningValue, type AnomalyDetector, type AnomalyEvent, type ScreenResult, type TrafficSample } from "@crosslogic/safety";
import { classifyInput, createFlagger, needsClassifier, policyOf, screenRules, type SafetyPolicy } from "./safety.ts";
import type { Backends } from "./upstream.ts";

export interface AppSettings {
  enforceHostnames: boolean;
  defaultMaxTokens: number;
  requestTimeoutMs: number;
}

export interface GatewayDeps {
  settings: AppSettings;
  store: ConfigStore;
  limiter: Limiter;
  backends: Backends;
  meter: UsageMeter;
  audit: AuditLog;
  logger: winston.Logger;
  metrics: Metrics;
  clientAddress: ClientAddress;
  /** True once shutdown began: new requests are refused with 503. */
  shuttingDown?: () => boolean;
  /** Traffic anomaly detection (per key and tenant); its events become `usage_anomaly` audit events. */
  anomaly?: AnomalyDetector;
  /** Threat-intelligence feeds (src/threat-feed.ts): listed client addresses are refused first. */
  threats?: { has(addr: string): boolean };
}

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** The seed's security headers, flattened once. */
const BASE: readonly string[] = securityHeaders.flatMap(([n, v]) => [n, v]);

/** Request ids: 128 random bits, hex, from a pooled random buffer. */
const ids = Buffer.alloc(16 * 256);
let idAt = ids.length;
function requestId(): string {
  if (idAt === ids.length) { randomFillSync(ids); idAt = 0; }
  const id = `req_${ids.toString("hex", idAt, idAt + 16)}`;
  idAt += 16;
  return id;
}

/** Per-request state. */
class Ctx {
  readonly id: string;
  readonly start: number;
  readonly ip: string;
  /** Response headers so far (flat name/value list). */
  readonly h: string[];
  corsAllowed = false;
  endpoint: Endpoint | undefined;
  raw: Buffer | undefined;
  json: Record<string, unknown> | undefined;
  key: KeyView | undefined;
  prefix: string | undefined;
  hash: string | undefined;
  authFailure: AuthFailure | undefined;
  limited = false;
  lease: Lease | undefined;
  res: ServerResponse | undefined;
  safety: SafetyPolicy | undefined;
  /** The rules' verdict when they were unsure: the classifier is asked once the limits admit the request. */
  unsure: ScreenResult | undefined;
  /** Body reading. */
  chunks: Buffer[] = [];
  size = 0;
  constructor(id: string, start: number, ip: string) {
    this.id = id;
    this.start = start;
    this.ip = ip;
    this.h = BASE.slice();
    this.h.push("X-Request-Id", id, "Vary", "Origin");
  }
}

/** Cached metric children per environment (no label hashing per request). */
interface EnvStats {
  admitted: CounterChild;
  requests: Map<string, Map<number, CounterChild>>;
  latency: Map<string, HistogramChild>;
  prompt: CounterChild;
  completion: CounterChild;
}

const CTX = Symbol("gateway.ctx");
type Req = IncomingMessage & { [CTX]?: Ctx };

export function createApp(deps: GatewayDeps): RequestHandler {
  const { store, limiter, metrics, audit, logger, settings, threats } = deps;
  const envStats = new WeakMap<EnvironmentView, EnvStats>();
  const noEnvRequests = new Map<string, Map<number, CounterChild>>();
  const noEnvLatency = new Map<string, HistogramChild>();
  const flagger = createFlagger(audit, (direction, action, category) => metrics.contentFlags.labels(direction, action, category).inc());

  /** Feeds the anomaly detector (a few array updates per request); anomalies become audit events. */
  function traffic(sample: TrafficSample): void {
    const events = deps.anomaly?.record(sample);
    if (events?.length) for (const e of events) anomalyRaised(e);
  }
  function anomalyRaised(e: AnomalyEvent): void {
    metrics.anomalies.labels(e.metric, e.severity).inc();
    const ev = anomalyAuditEvent(e);
    // Once persisted, billing turns usage_anomaly audit events into usage.anomaly webhooks (billing/WEBHOOKS.md).
    audit.write("usage_anomaly", { actor_id: ev.actor_id, tenant_id: ev.tenant_id, details: ev.details });
  }

  function stats(env: EnvironmentView): EnvStats {
    let s = envStats.get(env);
    if (!s) {
      const t = env.doc.tenant.name;
      s = {
        admitted: metrics.limitDecisions.labels(t, env.id, "admitted", ""), requests: new Map(), latency: new Map(),
        prompt: metrics.tokens.labels(t, env.id, "prompt"), completion: metrics.tokens.labels(t, env.id, "completion"),
      };
      envStats.set(env, s);
    }
    return s;
  }

  function observe(ctx: Ctx, status: number): void {
    const env = ctx.key?.env;
    const endpoint = ctx.endpoint?.path ?? "other";
    const reqs = env ? stats(env).requests : noEnvRequests;
    const lat = env ? stats(env).latency : noEnvLatency;
    let byStatus = reqs.get(endpoint);
    if (!byStatus) reqs.set(endpoint, (byStatus = new Map()));
    let c = byStatus.get(status);
    if (!c) byStatus.set(status, (c = metrics.requests.labels(env?.doc.tenant.name ?? "", env?.id ?? "", endpoint, String(status))));
    c.inc();
    let hist = lat.get(endpoint);
    if (!hist) lat.set(endpoint, (hist = metrics.latency.labels(env?.doc.tenant.name ?? "", env?.id ?? "", endpoint)));
    hist.observe((performance.now() - ctx.start) / 1000);
    if (env && deps.anomaly) traffic({ tenant: env.doc.tenant.name, keyPrefix: ctx.prefix ?? null, requests: 1, errors: status >= 500 ? 1 : 0 });
  }

  function cors(ctx: Ctx, origin: string | undefined, allowed: ReadonlySet<string> | undefined): void {
    if (ctx.corsAllowed || !origin || !allowed || !allowed.has(origin)) return;
    ctx.corsAllowed = true;
    ctx.h.push("Access-Control-Allow-Origin", origin, "Access-Control-Allow-Credentials", "true", "Access-Control-Expose-Headers", CORS_EXPOSE);
  }

  function send(res: ServerResponse, ctx: Ctx, status: number, body: string): void {
    if (res.headersSent || res.destroyed) return;
    ctx.h.push("Content-Type", "application/json; charset=utf-8", "Content-Length", String(Buffer.byteLength(body)));
    res.writeHead(status, ctx.h);
    res.end(body);
    observe(ctx, status);
  }

  function sendErr(res: ServerResponse, ctx: Ctx, code: ErrorCode, detail?: string): void {
    send(res, ctx, Errors[code].status, errorBody(code, ctx.id, detail));
  }

  function rateHeaders(ctx: Ctx, d: Decision): void {
    if (d.degraded) {
      // Redis unavailable: the configured limit is known, what is left of it is not; Remaining and
      // Reset are omitted rather than invented (README: Redis failure policy).
      if (d.limit > 0) ctx.h.push("X-RateLimit-Limit", String(d.limit));
      return;
    }
    if (d.limit > 0) {
      ctx.h.push("X-RateLimit-Limit", String(d.limit), "X-RateLimit-Remaining", String(d.remaining), "X-RateLimit-Reset", String(Math.ceil((Date.now() + d.resetMs) / 1000)));
    }
  }

  /** The one error path: catalog code → status and body; pre-limiter refusals still spend from the address. */
  function fail(req: IncomingMessage, res: ServerResponse, ctx: Ctx, err: unknown): void {
    let e: GatewayError;
    if (err instanceof GatewayError) e = err;
    else {
      e = new GatewayError("internal_error");
      logger.error("Request failed", { request_id: ctx.id, error: (err as Error)?.stack ?? String(err) });
    }
    if (res.headersSent) { res.destroy(); return; }
    if (e.headers) for (const k in e.headers) ctx.h.push(k, e.headers[k]!);
    if (e.code === "payload_too_large") ctx.h.push("Connection", "close");
    if (!ctx.limited && e.code !== "shutting_down") {
      ctx.limited = true;
      limiter.admit({ client: limitIdentity(ctx.ip), generation: false, forceViolation: ctx.authFailure !== undefined }).then((d) => {
        if (res.destroyed) return;
        rateHeaders(ctx, d);
        if (d.layer === "blocked" || (!d.admitted && !d.degraded && d.layer !== undefined)) return refuse(res, d, ctx, null);
        sendErr(res, ctx, e.code, e.detail);
      }, (x: unknown) => { logger.error("Limiter failed", { request_id: ctx.id, error: String(x) }); sendErr(res, ctx, e.code, e.detail); });
      void req;
      return;
    }
    sendErr(res, ctx, e.code, e.detail);
  }

  function refuse(res: ServerResponse, d: Decision, ctx: Ctx, tenant: string | null): void {
    if (d.degraded) { ctx.h.push("Retry-After", "1"); return sendErr(res, ctx, "rate_limiter_unavailable"); }
    const layer = d.layer ?? "client";
    const retry = String(Math.max(1, Math.ceil(d.retryAfterMs / 1000)));
    ctx.h.push("Retry-After", retry, "X-RateLimit-Scope", layer);
    if (d.newlyBlocked) audit.write("rate_limit_block", { request_id: ctx.id, actor_id: ctx.prefix ?? null, tenant_id: tenant, ip_address: ctx.ip, details: { layer } });
    const answer = () => {
      if (layer === "blocked") sendErr(res, ctx, "client_blocked");
      else sendErr(res, ctx, "rate_limit_exceeded", `Layer: ${layer}; retry after ${retry} s.`);
    };
    // Graduated response: repeat violators wait before hearing "no" (the delay is announced).
    if (d.delayMs > 0) {
      ctx.h.push("X-RateLimit-Delay-Ms", String(d.delayMs));
      metrics.refusalDelay.labels(layer).observe(d.delayMs / 1000);
      setTimeout(answer, d.delayMs).unref();
    } else answer();
  }

  // ---- body reading (shared listeners; the state is on the request's Ctx) ----
  function onData(this: Req, c: Buffer): void {
    const ctx = this[CTX]!;
    ctx.size += c.length;
    if (ctx.size > MAX_BODY_BYTES) {
      bodyDone(this);
      ctx.chunks = [];
      discardRest(this);
      fail(this, resOf(this), ctx, new GatewayError("payload_too_large"));
      return;
    }
    ctx.chunks.push(c);
  }
  function onEnd(this: Req): void {
    const ctx = this[CTX]!;
    bodyDone(this);
    ctx.raw = ctx.chunks.length === 1 ? ctx.chunks[0]! : Buffer.concat(ctx.chunks, ctx.size);
    ctx.chunks = [];
    afterBody(this, resOf(this), ctx);
  }
  function onError(this: Req): void {
    const ctx = this[CTX]!;
    bodyDone(this);
    fail(this, resOf(this), ctx, new GatewayError("invalid_request", "The request body could not be read."));
  }
  function bodyDone(req: Req): void { req.off("data", onData); req.off("end", onEnd); req.off("error", onError); }
  const resOf = (req: Req) => req[CTX]!.res!;

  // ---- the pipeline ----
  function handle(req: IncomingMessage, res: ServerResponse): void {
    const ctx = new Ctx(requestId(), performance.now(), deps.clientAddress.resolve(req.socket.remoteAddress, req.headers["x-forwarded-for"]));
    try {
      if (threats?.has(ctx.ip)) {
        // Nothing else is done for a listed address: no body read, no Redis call, no kept connection.
        metrics.threatFeedRefusals.inc();
        ctx.limited = true;
        ctx.h.push("Connection", "close");
        return fail(req, res, ctx, new GatewayError("address_blocked"));
      }
      const host = hostOnly(req.headers.host);
      const hostEnv = host ? store.environmentForHost(host) : undefined;
      const origin = req.headers.origin;
      if (hostEnv) cors(ctx, origin, hostEnv.origins);
      if (deps.shuttingDown?.()) { ctx.h.push("Connection", "close"); return fail(req, res, ctx, new GatewayError("shutting_down")); }
      // HTTP/1.1 requires Host (RFC 9112 §3.2); the listener leaves the check here so the answer is the catalog's.
      if (req.headers.host === undefined && req.httpVersionMajor === 1 && req.httpVersionMinor === 1) return fail(req, res, ctx, new GatewayError("malformed_request", "A Host header is required."));
      const url = req.url ?? "/";
      const q = url.indexOf("?");
      const endpoint = endpoints.get(q === -1 ? url : url.slice(0, q));
      if (!endpoint) return fail(req, res, ctx, new GatewayError("not_found"));
      if (req.method === "OPTIONS") {
        if (ctx.corsAllowed) ctx.h.push("Access-Control-Allow-Methods", `${endpoint.method}, OPTIONS`, "Access-Control-Allow-Headers", CORS_HEADERS, "Access-Control-Max-Age", CORS_MAX_AGE);
        res.writeHead(204, ctx.h);
        res.end();
        observe(ctx, 204);
        return;
      }
      if (req.method !== endpoint.method) return fail(req, res, ctx, new GatewayError("method_not_allowed", undefined, { Allow: `${endpoint.method}, OPTIONS` }));
      ctx.endpoint = endpoint;
      if (endpoint.method !== "POST") return afterBody(req, res, ctx);
      if (!isJsonContentType(req.headers["content-type"])) return fail(req, res, ctx, new GatewayError("unsupported_media_type"));
      const declared = req.headers["content-length"];
      if (declared !== undefined && Number(declared) > MAX_BODY_BYTES) { discardRest(req); return fail(req, res, ctx, new GatewayError("payload_too_large")); }
      (req as Req)[CTX] = ctx;
      ctx.res = res;
      req.on("data", onData);
      req.on("end", onEnd);
      req.on("error", onError);
    } catch (err) {
      fail(req, res, ctx, err);
    }
  }

  function afterBody(req: IncomingMessage, res: ServerResponse, ctx: Ctx): void {
    try {
      const endpoint = ctx.endpoint!;
      if (ctx.raw) {
        let json: unknown;
        try { json = JSON.parse(ctx.raw.toString("utf8")); } catch { return fail(req, res, ctx, new GatewayError("invalid_json")); }
        const check = endpoint.validate!;
        if (!check.Check(json)) return fail(req, res, ctx, new GatewayError("invalid_request", firstViolation(check, json)));
        ctx.json = json as Record<string, unknown>;
      }
      // Auth: key identity, then role and model.
      const result = authenticate(store, req.headers.authorization, req.headers.host, settings.enforceHostnames);
      const model = ctx.json ? String(ctx.json.model) : undefined;
      const inference = endpoint.kind !== "models";
      const failure: AuthFailure | undefined = result.ok ? authorize(result.key, inference, model) : result.reason;
      if (result.ok) {
        ctx.key = result.key; ctx.prefix = result.prefix; ctx.hash = result.hash;
        cors(ctx, req.headers.origin, result.key.env.origins);
      }
      if (failure) {
        ctx.authFailure = failure;
        ctx.prefix = result.prefix ?? undefined;
        metrics.authFailures.labels(failure).inc();
        const known = result.key;
        if (known && deps.anomaly) traffic({ tenant: known.env.doc.tenant.name, keyPrefix: result.prefix ?? null, unauthorized: 1 });
        audit.write("auth_failed", {
          request_id: ctx.id, actor_id: result.prefix, ip_address: ctx.ip,
          tenant_id: result.ok ? result.key.env.doc.tenant.name : result.key?.env.doc.tenant.name ?? null,
          details: { reason: failure, endpoint: endpoint.path, ...(failure === "model_not_allowed" ? modelDetail(result.ok ? result.key.env : undefined, model) : {}) },
        });
        return fail(req, res, ctx, new GatewayError(externalCode[failure]));
      }
      const key = ctx.key!;
      const env = key.env;
      if (inference && !env.routes.has(model!)) return fail(req, res, ctx, new GatewayError("model_not_found"));
      if (inference && deps.meter.full) return fail(req, res, ctx, new GatewayError("metering_unavailable"));
      // Content safety (off: one WeakMap lookup, nothing else). The rules run before the limits; when
      // they are unsure and a classifier is configured, it is asked after admission (see admitted).
      const policy = inference ? policyOf(env) : undefined;
      if (policy) {
        ctx.safety = policy;
        const rules = screenRules(policy, ctx.json);
        if (needsClassifier(policy, rules)) ctx.unsure = rules;
        else if (!inputVerdict(req, res, ctx, rules)) return;
      }
      admit(req, res, ctx);
    } catch (err) {
      fail(req, res, ctx, err);
    }
  }

  /** Records an input verdict; refuses the request (false) or adds the warning header (true). */
  function inputVerdict(req: IncomingMessage, res: ServerResponse, ctx: Ctx, r: ScreenResult): boolean {
    if (r.action !== "allow") flagger.flag("input", r, { requestId: ctx.id, prefix: ctx.prefix, env: ctx.key!.env, ip: ctx.ip, endpoint: ctx.endpoint!.path });
    if (r.action === "block") { fail(req, res, ctx, new GatewayError("content_policy_violation")); return false; }
    if (r.action === "flag") { const w = contentWarningValue(r.verdicts); if (w) ctx.h.push(CONTENT_WARNING_HEADER, w); }
    return true;
  }

  function admit(req: IncomingMessage, res: ServerResponse, ctx: Ctx): void {
    try {
      const endpoint = ctx.endpoint!;
      const inference = endpoint.kind !== "models";
      const key = ctx.key!;
      const env = key.env;
      // Limits: one Redis call decides every layer.
      const limits = key.limits;
      const tenant = env.doc.tenant;
      const envLimits = env.doc.environment.limits;
      ctx.limited = true;
      limiter.admit({
        client: limitIdentity(ctx.ip),
        generation: endpoint.kind === "generation",
        key: {
          hash: ctx.hash!, tenant: tenant.name, environment: env.id,
          tenantRpm: tenant.limits.requestsPerMinute, environmentRpm: envLimits.requestsPerMinute, rpm: limits.requestsPerMinute,
          tenantTpm: inference ? tenant.limits.tokensPerMinute : 0, environmentTpm: inference ? envLimits.tokensPerMinute : 0, tpm: inference ? limits.tokensPerMinute : 0,
          concurrency: inference ? limits.concurrency : 0,
          reserve: inference ? reservation(ctx, settings.defaultMaxTokens) : 0, leaseId: ctx.id,
        },
      }).then((d) => admitted(req, res, ctx, d), (err: unknown) => fail(req, res, ctx, err));
    } catch (err) {
      fail(req, res, ctx, err);
    }
  }

  function admitted(req: IncomingMessage, res: ServerResponse, ctx: Ctx, d: Decision): void {
    const env = ctx.key!.env;
    if (d.admitted && !d.degraded) stats(env).admitted.inc();
    else metrics.limitDecisions.labels(env.doc.tenant.name, env.id, d.admitted ? "admitted_degraded" : d.degraded ? "refused_degraded" : "refused", d.layer ?? "").inc();
    rateHeaders(ctx, d);
    if (!d.admitted) return refuse(res, d, ctx, env.doc.tenant.name);
    ctx.lease = d.lease;
    if (res.destroyed) { if (d.lease) void limiter.settle(d.lease, 0); return; }
    if (ctx.endpoint!.kind === "models") return models(res, ctx);
    const unsure = ctx.unsure;
    if (unsure) {
      // The classifier, under the key's lease (a refused request never reaches it). Blocked → the
      // reserved tokens are returned; the request still counts against the key's requests/minute.
      ctx.unsure = undefined;
      const release = () => { if (ctx.lease) { void limiter.settle(ctx.lease, 0); ctx.lease = undefined; } };
      classifyInput(ctx.safety!, env, deps.backends, ctx.json, unsure, (o) => metrics.contentClassifier.labels(o).inc()).then((r) => {
        if (res.destroyed) return release();
        if (r.action === "block") release();
        if (inputVerdict(req, res, ctx, r)) forwardAdmitted(req, res, ctx);
      }, (err: unknown) => { release(); fail(req, res, ctx, err); });
      return;
    }
    forwardAdmitted(req, res, ctx);
  }

  function forwardAdmitted(req: IncomingMessage, res: ServerResponse, ctx: Ctx): void {
    proxy(req, res, ctx).catch((err: unknown) => {
      if (ctx.lease) void limiter.settle(ctx.lease, undefined);
      fail(req, res, ctx, err);
    });
  }

  function models(res: ServerResponse, ctx: Ctx): void {
    const key = ctx.key!;
    const data = [...key.env.routes.keys()].filter((m) => !key.models || key.models.has(m))
      .map((id) => ({ id, object: "model", created: 0, owned_by: key.env.doc.tenant.name }));
    send(res, ctx, 200, JSON.stringify({ object: "list", data }));
  }

  async function proxy(req: IncomingMessage, res: ServerResponse, ctx: Ctx): Promise<void> {
    const key = ctx.key!;
    const json = ctx.json!;
    const model = String(json.model);
    const route = key.env.routes.get(model)!;
    const backend = deps.backends.get(route);
    const streamed = json.stream === true;
    const streamOptions = json.stream_options as { include_usage?: boolean } | null | undefined;
    let outcome;
    if (!backend || backend.endpoints.length === 0) {
      outcome = { status: 503, usage: undefined, failure: "connect" as const, headersSent: false };
    } else {
      metrics.inFlightCount.n++;
      const body = streamed ? injectIncludeUsage(ctx.raw!, streamOptions) : ctx.raw!;
      outcome = await forward({
        backend, method: "POST", path: backend.basePath + ctx.endpoint!.path, body, requestId: ctx.id, res, headers: ctx.h,
        stripUsage: streamed && streamOptions?.include_usage === false,
        retryOnConnectFailure: true, timeoutMs: settings.requestTimeoutMs,
        onEndpointFailure: (kind) => metrics.upstreamErrors.labels(kind).inc(),
        ...(ctx.safety && ctx.safety.output !== "off" ? { output: {
          mode: ctx.safety.output, threshold: ctx.safety.threshold, normalize: ctx.safety.normalize,
          report: (r, s) => flagger.flag("output", r, { requestId: ctx.id, prefix: ctx.prefix, env: key.env, ip: ctx.ip, endpoint: ctx.endpoint!.path, streamed: s }),
        } } : {}),
      });
      metrics.inFlightCount.n--;
    }
    const usage = outcome.usage;
    // Settle (not awaited): real usage; nothing used when the backend never answered; the reservation stands when unknown.
    if (ctx.lease) void limiter.settle(ctx.lease, usage ? usage.totalTokens : outcome.headersSent ? undefined : 0);
    const env = key.env;
    const record: UsageRecord = {
      requestId: ctx.id, tenant: env.doc.tenant.name, environment: env.id, keyPrefix: ctx.prefix!, keyName: key.name,
      model, endpoint: ctx.endpoint!.path, promptTokens: usage?.promptTokens ?? 0, completionTokens: usage?.completionTokens ?? 0,
      totalTokens: usage?.totalTokens ?? 0, latencyMs: Math.round(performance.now() - ctx.start), status: outcome.status, streamed, createdAt: new Date(),
    };
    deps.meter.record(record);
    if (usage && deps.anomaly) traffic({ tenant: env.doc.tenant.name, keyPrefix: ctx.prefix ?? null, tokens: usage.totalTokens });
    if (usage) {
      const s = stats(env);
      s.prompt.inc(usage.promptTokens);
      s.completion.inc(usage.completionTokens);
    }
    if (outcome.failure && outcome.failure !== "client_abort") logger.warn("Upstream request failed", { request_id: ctx.id, backend: route.model, failure: outcome.failure, status: outcome.status, ...(outcome.upstreamStatus ? { upstream_status: outcome.upstreamStatus } : {}) });
    if (outcome.headersSent) observe(ctx, outcome.status);
    else if (!res.headersSent && !res.destroyed) {
      fail(req, res, ctx, new GatewayError(outcome.status === 504 ? "upstream_timeout" : outcome.status === 503 ? "no_backend" : "upstream_error"));
    } else observe(ctx, outcome.status);
  }

  return handle;
}

/** Bytes and time a refused (413) request body is still read and discarded before the connection is cut. */
const DRAIN_MAX_BYTES = 32 * 1024 * 1024;
const DRAIN_MS = 10_000;

/**
 * After a 413: keep reading the rest of the request body and discard it (bounded: DRAIN_MAX_BYTES,
 * DRAIN_MS), and close the connection with a lingering half-close. Node ends a `Connection: close`
 * exchange with `socket.destroySoon()` — FIN, then destroy once written — and closing a socket with
 * unread request bytes makes the kernel send a reset, which discards the 413 the client has not read
 * yet. Here the write side is ended after the response (FIN) while the read side keeps draining; the
 * socket is destroyed once the body is complete (nothing unread: a clean close) or the bound is hit.
 */
function discardRest(req: IncomingMessage): void {
  if (req.complete) return;
  const sock = req.socket as IncomingMessage["socket"] & { destroySoon?: () => void };
  let left = DRAIN_MAX_BYTES;
  const cut = () => sock.destroy();
  const timer = setTimeout(cut, DRAIN_MS);
  timer.unref();
  sock.once("close", () => clearTimeout(timer));
  req.on("data", (c: Buffer) => { left -= c.length; if (left < 0) cut(); });
  const close = () => { if (sock.writableFinished) sock.destroy(); else sock.once("finish", () => sock.destroy()); };
  req.once("end", () => { clearTimeout(timer); if (sock.writableEnded) close(); });
  req.resume();
  sock.destroySoon = () => { sock.end(); if (req.complete) close(); };
}

/** The refused model name, logged only when it is a model of the environment; otherwise its length and a short hash (it is client text). */
function modelDetail(env: EnvironmentView | undefined, model: string | undefined): Record<string, unknown> {
  if (model === undefined) return {};
  if (env?.routes.has(model)) return { model };
  return { model_unknown: describeUnknown(model, (s) => createHash("sha256").update(s).digest("hex")) };
}

function reservation(ctx: Ctx, defaultMaxTokens: number): number {
  const j = ctx.json!;
  if (ctx.endpoint!.kind === "embedding") return Math.max(1, Math.ceil(ctx.raw!.length / 4));
  const max = Number(j.max_tokens ?? j.max_completion_tokens ?? defaultMaxTokens);
  const n = Number(j.n ?? 1);
  return Math.max(1, max * n);
}

/** An error response outside a request pipeline (e.g. the admin app), with the security headers. */
export function sendError(res: ServerResponse, code: ErrorCode, requestId: string, detail?: string): void {
  const body = errorBody(code, requestId, detail);
  const h = BASE.slice();
  h.push("X-Request-Id", requestId, "Content-Type", "application/json; charset=utf-8", "Content-Length", String(Buffer.byteLength(body)));
  res.writeHead(Errors[code].status, h);
  res.end(body);
}

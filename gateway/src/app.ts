/**
 * The public API. Middleware in request order: request context (id, security headers, CORS,
 * client address) → endpoint and method → body (type, size, JSON, schema) → auth → limits →
 * models list or proxy → one error handler. Everything a request needs is in memory except the
 * single Redis admission call (and at most one settle call afterwards); no database on this path.
 */
import { randomUUID } from "node:crypto";
import type { ServerResponse } from "node:http";
import express, { type NextFunction, type Request, type Response } from "express";
import type winston from "winston";
import type { UsageRecord } from "@crosslogic/crds";
import { authenticate, authorize, externalCode, hostOnly, type AuthFailure } from "./auth.ts";
import type { AuditLog } from "./audit.ts";
import { isJsonContentType, readRawBody } from "./body.ts";
import { limitIdentity, type ClientAddress } from "./client-ip.ts";
import type { ConfigStore, KeyView } from "./config-store.ts";
import { errorBody, Errors, GatewayError, type ErrorCode } from "./errors.ts";
import { applyCors, CORS_HEADERS, CORS_MAX_AGE, setSecurityHeaders } from "./headers.ts";
import type { Decision, Lease, Limiter } from "./limits/limiter.ts";
import type { UsageMeter } from "./metering.ts";
import type { Metrics } from "./metrics.ts";
import { endpoints, firstViolation, MAX_BODY_BYTES, type Endpoint } from "./openapi.ts";
import { forward, injectIncludeUsage, type ProxyOutcome } from "./proxy.ts";
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
}

/** Per-request state, on `res.locals.ctx`. */
interface Ctx {
  id: string;
  start: number;
  ip: string;
  endpoint?: Endpoint;
  raw?: Buffer;
  json?: Record<string, unknown>;
  key?: KeyView;
  prefix?: string;
  hash?: string;
  authFailure?: AuthFailure;
  limited: boolean;
}

const ctxOf = (res: Response): Ctx => res.locals.ctx as Ctx;

export function createApp(deps: GatewayDeps): express.Express {
  const { store, limiter, metrics, audit, logger, settings } = deps;
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);
  app.set("query parser", false);

  // 1. Request context: id, security headers, CORS for the Host's environment, client address.
  app.use((req: Request, res: Response, next: NextFunction) => {
    const ctx: Ctx = { id: `req_${randomUUID().replaceAll("-", "")}`, start: performance.now(), ip: deps.clientAddress.resolve(req.socket.remoteAddress, req.headers["x-forwarded-for"]), limited: false };
    res.locals.ctx = ctx;
    res.once("finish", () => observe(ctx, res.statusCode));
    res.setHeader("X-Request-Id", ctx.id);
    setSecurityHeaders(res);
    const host = hostOnly(req.headers.host);
    const hostEnv = host ? store.environmentForHost(host) : undefined;
    const origin = req.headers.origin;
    applyCors(res, origin, hostEnv?.origins);
    if (deps.shuttingDown?.()) { res.setHeader("Connection", "close"); return next(new GatewayError("shutting_down")); }
    next();
  });

  // 2. Endpoint and method; CORS preflight.
  app.use((req: Request, res: Response, next: NextFunction) => {
    const endpoint = endpoints.get(req.path);
    if (!endpoint) return next(new GatewayError("not_found"));
    if (req.method === "OPTIONS") {
      const allowed = res.getHeader("Access-Control-Allow-Origin") !== undefined;
      if (allowed) {
        res.setHeader("Access-Control-Allow-Methods", `${endpoint.method}, OPTIONS`);
        res.setHeader("Access-Control-Allow-Headers", CORS_HEADERS);
        res.setHeader("Access-Control-Max-Age", CORS_MAX_AGE);
      }
      res.statusCode = 204;
      return res.end();
    }
    if (req.method !== endpoint.method) return next(new GatewayError("method_not_allowed", undefined, { Allow: `${endpoint.method}, OPTIONS` }));
    ctxOf(res).endpoint = endpoint;
    next();
  });

  // 3. Body: JSON only, ≤ 10 MB (chunked too), schema from the OpenAPI document.
  app.use(async (req: Request, res: Response, next: NextFunction) => {
    const ctx = ctxOf(res);
    if (ctx.endpoint!.method !== "POST") return next();
    if (!isJsonContentType(req.headers["content-type"])) return next(new GatewayError("unsupported_media_type"));
    try {
      ctx.raw = await readRawBody(req, MAX_BODY_BYTES);
    } catch (err) {
      return next(err);
    }
    let json: unknown;
    try { json = JSON.parse(ctx.raw.toString("utf8")); } catch { return next(new GatewayError("invalid_json")); }
    const check = ctx.endpoint!.validate!;
    if (!check.Check(json)) return next(new GatewayError("invalid_request", firstViolation(check, json)));
    ctx.json = json as Record<string, unknown>;
    next();
  });

  // 4. Auth: key identity, then role and model.
  app.use((req: Request, res: Response, next: NextFunction) => {
    const ctx = ctxOf(res);
    const result = authenticate(store, req.headers.authorization, req.headers.host, settings.enforceHostnames);
    const model = ctx.json ? String(ctx.json.model) : undefined;
    const failure: AuthFailure | undefined = result.ok ? authorize(result.key, ctx.endpoint!.kind !== "models", model) : result.reason;
    if (result.ok) {
      ctx.key = result.key; ctx.prefix = result.prefix; ctx.hash = result.hash;
      if (!res.hasHeader("Access-Control-Allow-Origin")) applyCors(res, req.headers.origin, result.key.env.origins);
    }
    if (!failure) return next();
    ctx.authFailure = failure;
    ctx.prefix = result.prefix ?? undefined;
    metrics.authFailures.labels(failure).inc();
    audit.write("auth_failed", {
      request_id: ctx.id, actor_id: result.prefix, ip_address: ctx.ip,
      tenant_id: result.ok ? result.key.env.doc.tenant.name : result.key?.env.doc.tenant.name ?? null,
      details: { reason: failure, endpoint: ctx.endpoint!.path, ...(failure === "model_not_allowed" ? { model } : {}) },
    });
    next(new GatewayError(externalCode[failure]));
  });

  // 5. Limits: one Redis call decides every layer.
  app.use(async (_req: Request, res: Response, next: NextFunction) => {
    const ctx = ctxOf(res);
    const key = ctx.key!;
    const env = key.env;
    const kind = ctx.endpoint!.kind;
    if (kind !== "models" && !env.routes.has(String(ctx.json!.model))) return next(new GatewayError("model_not_found"));
    if (kind !== "models" && deps.meter.full) return next(new GatewayError("metering_unavailable"));
    const limits = key.entry.limits;
    const metered = kind !== "models";
    const d = await limiter.admit({
      client: limitIdentity(ctx.ip),
      generation: kind === "generation",
      key: {
        hash: ctx.hash!, tenant: env.doc.tenant.name, environment: env.id,
        tenantRpm: env.doc.tenant.limits.requestsPerMinute, environmentRpm: env.doc.environment.limits.requestsPerMinute,
        rpm: limits.requestsPerMinute, tpm: metered ? limits.tokensPerMinute : 0, concurrency: metered ? limits.concurrency : 0,
        reserve: metered ? reservation(ctx, settings.defaultMaxTokens) : 0, leaseId: ctx.id,
      },
    });
    ctx.limited = true;
    metrics.limitDecisions.labels(env.doc.tenant.name, env.id, d.admitted ? (d.degraded ? "admitted_degraded" : "admitted") : d.degraded ? "refused_degraded" : "refused", d.layer ?? "").inc();
    setRateHeaders(res, d);
    if (!d.admitted) return refuse(res, next, d, ctx, key.env.doc.tenant.name);
    res.locals.lease = d.lease;
    next();
  });

  // 6. Routes.
  app.get("/v1/models", (_req: Request, res: Response) => {
    const key = ctxOf(res).key!;
    const data = [...key.env.routes.keys()].filter((m) => !key.models || key.models.has(m))
      .map((id) => ({ id, object: "model", created: 0, owned_by: key.env.doc.tenant.name }));
    sendJson(res, 200, JSON.stringify({ object: "list", data }));
  });

  app.post(["/v1/chat/completions", "/v1/completions", "/v1/embeddings"], async (_req: Request, res: Response, next: NextFunction) => {
    const ctx = ctxOf(res);
    const lease = res.locals.lease as Lease | undefined;
    const key = ctx.key!;
    const model = String(ctx.json!.model);
    const route = key.env.routes.get(model)!;
    const backend = deps.backends.get(route);
    const streamed = ctx.json!.stream === true;
    let outcome: ProxyOutcome;
    if (!backend || backend.endpoints.length === 0) {
      outcome = { status: 503, usage: undefined, failure: "connect", headersSent: false };
    } else {
      metrics.inFlight.inc();
      const body = streamed ? injectIncludeUsage(ctx.raw!, ctx.json!.stream_options) : ctx.raw!;
      outcome = await forward({
        backend, method: "POST", path: backend.basePath + ctx.endpoint!.path, body, requestId: ctx.id, res,
        retryOnConnectFailure: true, timeoutMs: settings.requestTimeoutMs,
        onEndpointFailure: (kind) => metrics.upstreamErrors.labels(kind).inc(),
      });
      metrics.inFlight.dec();
    }
    const usage = outcome.usage;
    // Settle: real usage; nothing used when the backend never answered; the reservation stands when unknown.
    if (lease) void limiter.settle(lease, usage ? usage.totalTokens : outcome.headersSent ? undefined : 0);
    const env = key.env;
    const record: UsageRecord = {
      requestId: ctx.id, tenant: env.doc.tenant.name, environment: env.id, keyPrefix: ctx.prefix!, keyName: key.entry.name,
      model, endpoint: ctx.endpoint!.path, promptTokens: usage?.promptTokens ?? 0, completionTokens: usage?.completionTokens ?? 0,
      totalTokens: usage?.totalTokens ?? 0, latencyMs: Math.round(performance.now() - ctx.start), status: outcome.status, streamed, createdAt: new Date(),
    };
    deps.meter.record(record);
    if (usage) {
      metrics.tokens.labels(env.doc.tenant.name, env.id, "prompt").inc(usage.promptTokens);
      metrics.tokens.labels(env.doc.tenant.name, env.id, "completion").inc(usage.completionTokens);
    }
    if (outcome.failure && outcome.failure !== "client_abort") logger.warn("Upstream request failed", { request_id: ctx.id, backend: route.model, failure: outcome.failure, status: outcome.status });
    if (!outcome.headersSent && !res.headersSent && !res.destroyed) {
      next(new GatewayError(outcome.status === 504 ? "upstream_timeout" : outcome.status === 503 ? "no_backend" : "upstream_error"));
    }
  });

  // 7. The one error handler: catalog code → status and body; X-RateLimit-* even here.
  app.use(async (err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const ctx = res.locals.ctx as Ctx | undefined;
    const id = ctx?.id ?? `req_${randomUUID().replaceAll("-", "")}`;
    let e: GatewayError;
    if (err instanceof GatewayError) e = err;
    else {
      const status = (err as { status?: number; statusCode?: number }).status ?? (err as { statusCode?: number }).statusCode;
      e = new GatewayError(status === 400 ? "invalid_request" : status === 413 ? "payload_too_large" : "internal_error");
      if (e.code === "internal_error") logger.error("Request failed", { request_id: id, error: (err as Error)?.stack ?? String(err) });
    }
    if (res.headersSent) { res.destroy(); return; }
    if (ctx && !ctx.limited && e.code !== "shutting_down") {
      // Requests refused before the limiter still spend from (and are limited by) the client address.
      const d = await limiter.admit({ client: limitIdentity(ctx.ip), generation: false, forceViolation: ctx.authFailure !== undefined });
      ctx.limited = true;
      if (res.destroyed) return;
      setRateHeaders(res, d);
      if (d.layer === "blocked" || (!d.admitted && !d.degraded && d.layer !== undefined)) return refuse(res, () => undefined, d, ctx, null);
    }
    if (e.headers) for (const [k, v] of Object.entries(e.headers)) res.setHeader(k, v);
    if (e.code === "payload_too_large") res.setHeader("Connection", "close");
    sendError(res, e.code, id, e.detail);
  });

  function observe(ctx: Ctx, status: number): void {
    const env = ctx.key?.env;
    const tenant = env?.doc.tenant.name ?? "";
    const envId = env?.id ?? "";
    const endpoint = ctx.endpoint?.path ?? "other";
    metrics.requests.labels(tenant, envId, endpoint, String(status)).inc();
    metrics.latency.labels(tenant, envId, endpoint).observe((performance.now() - ctx.start) / 1000);
  }

  function refuse(res: Response, next: NextFunction, d: Decision, ctx: Ctx, tenant: string | null): void {
    if (d.degraded) return next(new GatewayError("rate_limiter_unavailable", undefined, { "Retry-After": "1" }));
    const layer = d.layer ?? "client";
    const retry = String(Math.max(1, Math.ceil(d.retryAfterMs / 1000)));
    res.setHeader("Retry-After", retry);
    res.setHeader("X-RateLimit-Scope", layer);
    const send = () => {
      if (res.headersSent || res.destroyed) return;
      if (layer === "blocked") sendError(res, "client_blocked", ctx.id);
      else sendError(res, "rate_limit_exceeded", ctx.id, `Layer: ${layer}; retry after ${retry} s.`);
    };
    if (d.newlyBlocked) audit.write("rate_limit_block", { request_id: ctx.id, actor_id: ctx.prefix ?? null, tenant_id: tenant, ip_address: ctx.ip, details: { layer } });
    // Graduated response: repeat violators wait before hearing "no".
    if (d.delayMs > 0) setTimeout(send, d.delayMs).unref();
    else send();
  }

  return app;
}

function reservation(ctx: Ctx, defaultMaxTokens: number): number {
  const j = ctx.json!;
  if (ctx.endpoint!.kind === "embedding") return Math.max(1, Math.ceil(ctx.raw!.length / 4));
  const max = Number(j.max_tokens ?? j.max_completion_tokens ?? defaultMaxTokens);
  const n = Number(j.n ?? 1);
  return Math.max(1, max * n);
}

function setRateHeaders(res: Response, d: Decision): void {
  if (d.limit > 0) {
    res.setHeader("X-RateLimit-Limit", d.limit);
    res.setHeader("X-RateLimit-Remaining", d.remaining);
    res.setHeader("X-RateLimit-Reset", Math.ceil((Date.now() + d.resetMs) / 1000));
  } else if (d.degraded) {
    // Redis unavailable: the counters are unknown; say so conservatively.
    res.setHeader("X-RateLimit-Limit", 0);
    res.setHeader("X-RateLimit-Remaining", 0);
    res.setHeader("X-RateLimit-Reset", Math.ceil(Date.now() / 1000) + 60);
  }
}

function sendJson(res: Response, status: number, body: string): void {
  res.statusCode = status;
  res.setHeader("Content-Type", "application/json; charset=utf-8");
  res.setHeader("Content-Length", Buffer.byteLength(body));
  res.end(body);
}

export function sendError(res: ServerResponse, code: ErrorCode, requestId: string, detail?: string): void {
  const body = errorBody(code, requestId, detail);
  res.statusCode = Errors[code].status;
  res.setHeader("Content-Type", "application/json; charset=utf-8");
  res.setHeader("Content-Length", Buffer.byteLength(body));
  res.end(body);
}

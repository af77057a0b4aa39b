/**
 * The internal admin API, on ADMIN_PORT only (never on the public listener): health, Prometheus
 * metrics, the OpenAPI document, and behind `X-Admin-Token` (current or next token, compared in
 * constant time, every attempt audited) the usage and audit queries.
 */
import { createHash, randomUUID, timingSafeEqual } from "node:crypto";
import express, { type NextFunction, type Request, type Response } from "express";
import { AuditActions, type AuditAction, type AuditEvent, type UsageRecord } from "@crosslogic/crds";
import type { AuditLog } from "./audit.ts";
import { normalise } from "./client-ip.ts";
import { Errors, type ErrorCode } from "./errors.ts";
import { setSecurityHeaders } from "./headers.ts";
import type { Metrics } from "./metrics.ts";
import { openApiJson } from "./openapi.ts";

export interface UsageQueryable {
  query(q: { tenant: string; environment?: string; keyPrefix?: string; from?: Date; to?: Date; limit?: number }): Promise<UsageRecord[]>;
}
export interface AuditQueryable {
  query(q: { tenant?: string | null; action?: AuditAction; from?: Date; to?: Date; limit?: number }): Promise<AuditEvent[]>;
}

export interface AdminDeps {
  tokens: { current: string; next?: string | undefined };
  audit: AuditLog;
  metrics: Metrics;
  usage: UsageQueryable | undefined;
  auditStore: AuditQueryable | undefined;
  ready: () => boolean;
}

const digest = (s: string) => createHash("sha256").update(s).digest();

/** Constant time in the candidate's content: both tokens are always compared, on fixed-length digests. */
export function tokenMatches(candidate: string | undefined, tokens: { current: string; next?: string | undefined }): boolean {
  const c = digest(candidate ?? "");
  const a = timingSafeEqual(c, digest(tokens.current));
  const b = timingSafeEqual(c, digest(tokens.next ?? `\u0000${tokens.current}`));
  return candidate !== undefined && (a || (b && tokens.next !== undefined));
}

const PREFIX = /^clsk_(live|test)_[0-9a-f]{8}$/;

export function createAdminApp(deps: AdminDeps): express.Express {
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);
  app.use((req, res, next) => {
    res.locals.id = `req_${randomUUID().replaceAll("-", "")}`; res.setHeader("X-Request-Id", res.locals.id as string); setSecurityHeaders(res);
    if (req.headers.host === undefined && req.httpVersion === "1.1") return void res.status(400).json(err("malformed_request", "A Host header is required.", res));
    next();
  });

  app.get("/healthz", (_req, res) => { res.json({ status: "ok" }); });
  app.get("/readyz", (_req, res) => { const ok = deps.ready(); res.status(ok ? 200 : 503).json({ status: ok ? "ready" : "not ready" }); });
  app.get("/openapi.json", (_req, res) => { res.type("application/json").send(openApiJson); });
  app.get("/metrics", async (_req, res) => { res.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics()); });

  app.use("/admin", (req: Request, res: Response, next: NextFunction) => {
    const ok = tokenMatches(req.get("x-admin-token"), deps.tokens);
    deps.metrics.adminAuth.labels(ok ? "succeeded" : "failed").inc();
    deps.audit.write(ok ? "admin_auth_succeeded" : "admin_auth_failed", {
      request_id: res.locals.id as string, actor_id: "admin-token", ip_address: normalise(req.socket.remoteAddress ?? ""),
      details: { method: req.method, path: req.path.slice(0, 200) },
    });
    if (!ok) return void res.status(401).json(err("invalid_admin_token", undefined, res));
    next();
  });

  app.get("/admin/usage", async (req, res) => {
    const q = parseQuery(req.query as Record<string, unknown>);
    if ("error" in q) return void res.status(400).json(err("invalid_request", q.error, res));
    if (!q.tenant) return void res.status(400).json(err("invalid_request", "tenant is required.", res));
    if (!deps.usage) return void res.status(503).json(err("usage_store_unavailable", "No usage store is configured (DATABASE_URL).", res));
    deps.audit.write("admin_action", { request_id: res.locals.id as string, actor_id: "admin-token", tenant_id: q.tenant, details: { action: "usage_query" } });
    try {
      const records = await deps.usage.query({ tenant: q.tenant, ...opt("environment", q.environment), ...opt("keyPrefix", q.keyPrefix), ...opt("from", q.from), ...opt("to", q.to), ...opt("limit", q.limit) });
      res.json({ object: "list", data: records });
    } catch {
      res.status(503).json(err("usage_store_unavailable", undefined, res));
    }
  });

  app.get("/admin/audit", async (req, res) => {
    const q = parseQuery(req.query as Record<string, unknown>);
    if ("error" in q) return void res.status(400).json(err("invalid_request", q.error, res));
    deps.audit.write("admin_action", { request_id: res.locals.id as string, actor_id: "admin-token", tenant_id: q.tenant ?? null, details: { action: "audit_query" } });
    if (!deps.auditStore) {
      return void res.json({ object: "list", data: deps.audit.recent({ ...opt("tenant", q.tenant), ...opt("action", q.action), ...opt("from", q.from?.getTime()), ...opt("to", q.to?.getTime()), ...opt("limit", q.limit) }) });
    }
    try {
      res.json({ object: "list", data: await deps.auditStore.query({ ...opt("tenant", q.tenant), ...opt("action", q.action), ...opt("from", q.from), ...opt("to", q.to), ...opt("limit", q.limit) }) });
    } catch {
      res.status(503).json(err("audit_store_unavailable", undefined, res));
    }
  });

  app.use((_req, res) => { res.status(404).json(err("not_found", undefined, res)); });
  app.use((_e: unknown, _req: Request, res: Response, _next: NextFunction) => { res.status(500).json(err("internal_error", undefined, res)); });
  return app;
}

function opt<K extends string, V>(k: K, v: V | undefined): Partial<Record<K, V>> {
  return v === undefined ? {} : ({ [k]: v } as Record<K, V>);
}

/** The catalog's body for `code` (its type and message; `message` replaces the catalog message when given). */
function err(code: ErrorCode, message: string | undefined, res: Response) {
  const e = Errors[code];
  return { error: { message: message ?? e.message, type: e.type, param: null, code, request_id: res.locals.id as string } };
}

/** Kubernetes object names (DNS-1123 subdomain), the only form tenants and environment names take. */
const NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
/** Control characters (C0, DEL, C1): never valid in any admin query value (PostgreSQL also refuses NUL). */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

interface AdminQuery { tenant?: string; environment?: string; keyPrefix?: string; action?: AuditAction; from?: Date; to?: Date; limit?: number }

/** Query parameters, as the OpenAPI document declares them. */
export function parseQuery(raw: Record<string, unknown>): AdminQuery | { error: string } {
  const s = (name: string, max: number): string | undefined => {
    const v = raw[name];
    if (v === undefined) return undefined;
    if (typeof v !== "string" || v.length === 0 || v.length > max) throw new Error(`${name} must be a string of 1..${max} characters.`);
    if (CONTROL.test(v) || !v.isWellFormed()) throw new Error(`${name} must not contain control characters or invalid Unicode.`);
    return v;
  };
  try {
    const q: AdminQuery = {};
    const tenant = s("tenant", 253);
    if (tenant) { if (!NAME.test(tenant)) throw new Error("tenant must be a Kubernetes object name."); q.tenant = tenant; }
    const environment = s("environment", 507);
    if (environment) {
      // `namespace/name` (the gateway's environment id) or a bare name.
      const parts = environment.split("/");
      if (parts.length > 2 || !parts.every((p) => NAME.test(p))) throw new Error("environment must be namespace/name or name (Kubernetes object names).");
      q.environment = environment;
    }
    const keyPrefix = s("keyPrefix", 18);
    if (keyPrefix) { if (!PREFIX.test(keyPrefix)) throw new Error("keyPrefix must look like clsk_live_1234abcd."); q.keyPrefix = keyPrefix; }
    const action = s("action", 64);
    if (action) { if (!(AuditActions as readonly string[]).includes(action)) throw new Error("action is not a known audit action."); q.action = action as AuditAction; }
    for (const name of ["from", "to"] as const) {
      const v = s(name, 40);
      if (v) { const d = new Date(v); if (Number.isNaN(d.getTime())) throw new Error(`${name} must be an RFC 3339 time.`); q[name] = d; }
    }
    const limit = s("limit", 6);
    if (limit) { const n = Number(limit); if (!Number.isInteger(n) || n < 1 || n > 10_000) throw new Error("limit must be 1..10000."); q.limit = n; }
    return q;
  } catch (e) {
    return { error: (e as Error).message };
  }
}

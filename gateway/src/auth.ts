/**
 * API-key verification: Bearer → format check → SHA-256 → in-memory index, then the ordered
 * checks. Returns a discriminated result with a distinct internal reason; clients only ever see
 * the uniform `invalid_api_key` (401) or `permission_denied` (403).
 */
import { createHash } from "node:crypto";
import type { ConfigStore, EnvironmentView, KeyView } from "./config-store.ts";
import type { ErrorCode } from "./errors.ts";

export type AuthFailure =
  | "missing" | "malformed" | "unknown" | "revoked" | "expired" | "wrong_environment"
  | "tenant_suspended" | "read_only_inference" | "model_not_allowed";

export type AuthResult =
  | { ok: true; key: KeyView; hash: string; prefix: string }
  | { ok: false; reason: AuthFailure; prefix: string | null; key?: KeyView };

/** Internal reason → the uniform external refusal. */
export const externalCode: Record<AuthFailure, ErrorCode> = {
  missing: "invalid_api_key", malformed: "invalid_api_key", unknown: "invalid_api_key", revoked: "invalid_api_key",
  expired: "invalid_api_key", wrong_environment: "invalid_api_key",
  tenant_suspended: "permission_denied", read_only_inference: "permission_denied", model_not_allowed: "permission_denied",
};

const KEY = /^clsk_(live|test)_[0-9a-f]{64}$/;

/** Key identity: who is calling. */
export function authenticate(store: ConfigStore, authorization: string | undefined, host: string | undefined, enforceHostnames: boolean, now = Date.now()): AuthResult {
  if (!authorization) return { ok: false, reason: "missing", prefix: null };
  if (authorization.length !== 81 || !authorization.startsWith("Bearer ")) {
    return { ok: false, reason: authorization.startsWith("Bearer ") || authorization.startsWith("bearer ") ? "malformed" : "missing", prefix: null };
  }
  const token = authorization.slice(7);
  if (!KEY.test(token)) return { ok: false, reason: "malformed", prefix: null };
  const prefix = token.slice(0, 18);
  const hash = createHash("sha256").update(token).digest("hex");
  const key = store.key(hash);
  if (store.isRevoked(hash)) return { ok: false, reason: "revoked", prefix, ...(key ? { key } : {}) };
  if (!key) return { ok: false, reason: "unknown", prefix };
  if (key.expiresAtMs <= now) return { ok: false, reason: "expired", prefix, key };
  if (!matchesEnvironment(store, key.env, token.slice(5, 9), host, enforceHostnames)) return { ok: false, reason: "wrong_environment", prefix, key };
  if (store.isSuspended(key.env)) return { ok: false, reason: "tenant_suspended", prefix, key };
  return { ok: true, key, hash, prefix };
}

function matchesEnvironment(store: ConfigStore, env: EnvironmentView, keyEnv: string, hostHeader: string | undefined, enforce: boolean): boolean {
  if (keyEnv !== env.keyEnv) return false;
  if (!enforce) return true;
  const host = hostOnly(hostHeader);
  const hostEnv = host ? store.environmentForHost(host) : undefined;
  if (hostEnv) return hostEnv.id === env.id; // shards of one environment are several documents
  return env.hostnames.size === 0;
}

/** Lowercased host without port (`[::1]:8080` → `::1`). */
export function hostOnly(host: string | undefined): string | undefined {
  if (!host) return undefined;
  const h = host.toLowerCase();
  if (h.startsWith("[")) return h.slice(1, h.indexOf("]"));
  const colon = h.indexOf(":");
  return colon === -1 ? h : h.slice(0, colon);
}

/** What the key may do: role and model allow-list. */
export function authorize(key: KeyView, inference: boolean, model: string | undefined): AuthFailure | undefined {
  if (inference && key.role === "read-only") return "read_only_inference";
  if (model !== undefined && key.models && !key.models.has(model)) return "model_not_allowed";
  return undefined;
}

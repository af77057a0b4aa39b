/**
 * Security headers on every response (seed 001, exact values) and CORS from the environment's
 * allow-list. helmet computes its header set once at start-up; the seed's values override it where
 * they differ (helmet writes X-XSS-Protection: 0 and joins CSP directives without a space); the
 * resulting static list is then written per response without running middleware.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import helmet from "helmet";

export const SEED_HEADERS: Readonly<Record<string, string>> = {
  "Strict-Transport-Security": "max-age=31536000; includeSubDomains; preload",
  "X-Frame-Options": "DENY",
  "X-Content-Type-Options": "nosniff",
  "X-XSS-Protection": "1; mode=block",
  "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
  "Referrer-Policy": "strict-origin-when-cross-origin",
  "Permissions-Policy": "geolocation=(), microphone=(), camera=()",
  "Cache-Control": "no-store, no-cache, must-revalidate",
};

/** helmet's full set (cross-origin policies, DNS prefetch…) with the seed's values on top. */
function computeHeaders(): Array<[string, string]> {
  const captured = new Map<string, string>();
  const res = {
    setHeader(name: string, value: string) { captured.set(name.toLowerCase(), String(value)); },
    removeHeader(name: string) { captured.delete(name.toLowerCase()); },
  };
  helmet({
    strictTransportSecurity: { maxAge: 31_536_000, includeSubDomains: true, preload: true },
    frameguard: { action: "deny" },
    referrerPolicy: { policy: "strict-origin-when-cross-origin" },
    contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'self'"], frameAncestors: ["'none'"] } },
    crossOriginResourcePolicy: { policy: "same-origin" },
  })({} as IncomingMessage, res as unknown as ServerResponse, () => undefined);
  for (const [name, value] of Object.entries(SEED_HEADERS)) captured.set(name.toLowerCase(), value);
  captured.delete("x-powered-by");
  return [...captured.entries()];
}

export const securityHeaders: ReadonlyArray<readonly [string, string]> = computeHeaders();

export function setSecurityHeaders(res: ServerResponse): void {
  for (const [name, value] of securityHeaders) res.setHeader(name, value);
}

export const CORS_METHODS = "GET, POST, OPTIONS";
export const CORS_HEADERS = "Authorization, Content-Type, X-API-Key, X-Request-Id";
export const CORS_MAX_AGE = "3600";
export const CORS_EXPOSE = "X-Request-Id, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After";

/**
 * Echoes an allowed origin exactly (never `*`), with credentials only for listed origins; always
 * `Vary: Origin`. Returns whether the origin was allowed.
 */
export function applyCors(res: ServerResponse, origin: string | undefined, allowed: ReadonlySet<string> | undefined): boolean {
  res.setHeader("Vary", "Origin");
  if (!origin || !allowed || !allowed.has(origin)) return false;
  res.setHeader("Access-Control-Allow-Origin", origin);
  res.setHeader("Access-Control-Allow-Credentials", "true");
  res.setHeader("Access-Control-Expose-Headers", CORS_EXPOSE);
  return true;
}

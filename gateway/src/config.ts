/**
 * The gateway's process configuration: parsed from the environment once (every problem listed at
 * once), then frozen. Nothing else in the gateway reads `process.env`.
 */
import { Type, type Static } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { Value } from "@sinclair/typebox/value";
import { DEFAULT_SYSTEM_NAMESPACE } from "@crosslogic/crds";
import { sourceProblem } from "./threat-feed.ts";

const Int = (def: number, min: number, max = Number.MAX_SAFE_INTEGER) => Type.Integer({ default: def, minimum: min, maximum: max });

export const EnvSchema = Type.Object({
  PORT: Int(8080, 0, 65535),
  ADMIN_PORT: Int(9090, 0, 65535),
  HOST: Type.String({ default: "0.0.0.0" }),
  ADMIN_HOST: Type.String({ default: "0.0.0.0" }),
  ADMIN_TOKEN: Type.String({ minLength: 32 }),
  ADMIN_TOKEN_NEXT: Type.Optional(Type.String({ minLength: 32 })),
  REDIS_URL: Type.String({ pattern: "^rediss?://" }),
  DATABASE_URL: Type.Optional(Type.String({ pattern: "^postgres(ql)?://" })),
  CONFIG_SOURCE: Type.Union([Type.Literal("kubernetes"), Type.Literal("directory")], { default: "kubernetes" }),
  CONFIG_DIR: Type.Optional(Type.String({ minLength: 1 })),
  SYSTEM_NAMESPACE: Type.String({ default: DEFAULT_SYSTEM_NAMESPACE, minLength: 1 }),
  /** Where the gateway-config Secrets are (default: SYSTEM_NAMESPACE). The chart uses a namespace of their own, so the gateway may read no other Secret. */
  GATEWAY_CONFIG_NAMESPACE: Type.Optional(Type.String({ minLength: 1 })),
  KUBECONFIG: Type.Optional(Type.String()),
  /** Whole-gateway cap (layer 1, shared by every replica through Redis); 0 = unlimited. */
  GLOBAL_REQUESTS_PER_MINUTE: Int(0, 0),
  /** Per client address (IPv4 /32, IPv6 /56) for every endpoint; 0 = unlimited. */
  CLIENT_REQUESTS_PER_MINUTE: Int(6000, 0),
  /** Per client address for the resource-intensive endpoints (completions, chat); 0 = unlimited. */
  CLIENT_GENERATION_REQUESTS_PER_MINUTE: Int(1200, 0),
  REDIS_FAILURE_POLICY: Type.Union([Type.Literal("fail-closed"), Type.Literal("fail-open")], { default: "fail-closed" }),
  REDIS_TIMEOUT_MS: Int(250, 1, 60_000),
  /** Prefix of every Redis key the gateway writes (replicas of one gateway share it). */
  REDIS_KEY_PREFIX: Type.String({ default: "clgw:", maxLength: 64 }),
  TRUSTED_PROXIES: Type.String({ default: "" }),
  /** Threat-intelligence feeds (src/threat-feed.ts): comma-separated absolute paths (files, or directories such as a mounted ConfigMap) or https:// URLs; empty = none. */
  THREAT_FEEDS: Type.String({ default: "" }),
  /** How often every feed is read again (public feeds ask for no more than hourly: 3600). */
  THREAT_FEED_REFRESH_SECONDS: Int(900, 1),
  TLS_CERT_DIR: Type.Optional(Type.String({ minLength: 1 })),
  TLS_MIN_VERSION: Type.Union([Type.Literal("TLSv1.3"), Type.Literal("TLSv1.2")], { default: "TLSv1.3" }),
  LOG_LEVEL: Type.Union(["error", "warn", "info", "debug"].map((l) => Type.Literal(l)), { default: "info" }),
  /** Tokens reserved for a request that sets no max_tokens. */
  DEFAULT_MAX_TOKENS: Int(1024, 1, 1_000_000),
  /** Upstream timeouts. */
  UPSTREAM_CONNECT_TIMEOUT_MS: Int(2000, 1),
  UPSTREAM_HEADERS_TIMEOUT_MS: Int(60_000, 1),
  /** Longest silence inside a response body (a stream stalls → aborted). */
  UPSTREAM_IDLE_TIMEOUT_MS: Int(60_000, 1),
  /** Longest whole request; also bounds a concurrency lease. */
  REQUEST_TIMEOUT_MS: Int(600_000, 1),
  UPSTREAM_CONNECTIONS: Int(128, 1, 100_000),
  /** Anomaly detection (per key and tenant, per window): window length and windows observed before alerts. */
  ANOMALY_WINDOW_MS: Int(60_000, 100),
  ANOMALY_WARMUP_WINDOWS: Int(5, 1, 1000),
  /** Concurrency leases expire after this unless refreshed (a gateway that dies frees its slots). */
  LEASE_TTL_MS: Int(30_000, 1000),
  /** Graduated response: refusals (per key or address) in VIOLATION_WINDOW_MS before delays, then a block. */
  VIOLATION_WINDOW_MS: Int(60_000, 1000),
  VIOLATION_DELAY_AFTER: Int(10, 1),
  VIOLATION_BLOCK_AFTER: Int(50, 1),
  VIOLATION_MAX_DELAY_MS: Int(2000, 0, 30_000),
  BLOCK_DURATION_MS: Int(300_000, 1000),
  /** Usage buffer: records kept in memory while PostgreSQL is unreachable; when full, inference is refused (503). */
  USAGE_BUFFER_MAX: Int(100_000, 10),
  USAGE_BATCH_SIZE: Int(500, 1, 10_000),
  USAGE_FLUSH_INTERVAL_MS: Int(1000, 10),
  /** Where unflushed usage is spooled on shutdown when PostgreSQL is down, and reloaded at start. */
  USAGE_SPOOL_DIR: Type.Optional(Type.String({ minLength: 1 })),
  SHUTDOWN_TIMEOUT_MS: Int(30_000, 0),
  /** Refuse a key on a Host that is not one of its environment's hostnames (environments without hostnames accept any). */
  ENFORCE_HOSTNAMES: Type.Boolean({ default: true }),
});
export type GatewayEnv = Static<typeof EnvSchema>;
export type Config = Readonly<GatewayEnv & { trustedProxies: readonly string[]; threatFeeds: readonly string[] }>;

const check = TypeCompiler.Compile(EnvSchema);
const CIDR = /^(\d{1,3}(\.\d{1,3}){3}|[0-9a-fA-F:.]+)(\/\d{1,3})?$/;

/** Parses the environment; throws one error listing every problem. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const raw: Record<string, unknown> = {};
  for (const [name, schema] of Object.entries(EnvSchema.properties)) {
    const v = env[name];
    if (v === undefined || v === "") continue;
    const t = (schema as { type?: string }).type;
    raw[name] = t === "integer" ? (/^-?\d+$/.test(v.trim()) ? Number(v) : v) : t === "boolean" ? (v === "true" ? true : v === "false" ? false : v) : v;
  }
  const value = Value.Default(EnvSchema, raw) as GatewayEnv;
  const problems = [...check.Errors(value)].map((e) => `${e.path.slice(1) || "(root)"}: ${e.message}${secretName(e.path) ? "" : ` (got ${JSON.stringify(e.value)})`}`);
  if (value.CONFIG_SOURCE === "directory" && !value.CONFIG_DIR) problems.push("CONFIG_DIR: required when CONFIG_SOURCE=directory");
  const trustedProxies = commaList(value.TRUSTED_PROXIES);
  for (const c of trustedProxies) if (!CIDR.test(c)) problems.push(`TRUSTED_PROXIES: ${JSON.stringify(c)} is not an address or CIDR`);
  const threatFeeds = commaList(value.THREAT_FEEDS);
  for (const s of threatFeeds) { const p = sourceProblem(s); if (p) problems.push(`THREAT_FEEDS: ${JSON.stringify(s.startsWith("/") ? s : s.split("?")[0])} ${p}`); }
  if (value.PORT === value.ADMIN_PORT && value.PORT !== 0) problems.push("ADMIN_PORT: must differ from PORT (the admin API never shares the public listener)");
  if (problems.length) throw new Error(`invalid gateway configuration:\n  ${problems.join("\n  ")}`);
  return Object.freeze({ ...value, trustedProxies: Object.freeze(trustedProxies), threatFeeds: Object.freeze(threatFeeds) });
}

const commaList = (v: string | undefined): string[] => (v ?? "").split(",").map((s) => s.trim()).filter(Boolean);

function secretName(path: string): boolean {
  return /TOKEN|URL/.test(path);
}

/**
 * The operator's configuration, parsed once from the environment (every problem reported at once),
 * then frozen. Nothing else reads process.env.
 */
import os from "node:os";
import { Type, type Static } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { DEFAULT_SYSTEM_NAMESPACE } from "@crosslogic/crds";

const Bool = Type.Union([Type.Literal("true"), Type.Literal("false")]);
const Int = Type.String({ pattern: "^[0-9]+$" });

const Env = Type.Object({
  KUBECONFIG: Type.Optional(Type.String({ minLength: 1 })),
  SYSTEM_NAMESPACE: Type.Optional(Type.String({ pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", maxLength: 63 })),
  GATEWAY_CONFIG_NAMESPACE: Type.Optional(Type.String({ pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", maxLength: 63 })),
  POD_NAME: Type.Optional(Type.String({ minLength: 1, maxLength: 253 })),
  LEADER_ELECTION: Type.Optional(Bool),
  HTTP_PORT: Type.Optional(Int),
  HTTP_HOST: Type.Optional(Type.String({ minLength: 1 })),
  DEFAULT_ISSUER_NAME: Type.Optional(Type.String({ minLength: 1, maxLength: 253 })),
  DEFAULT_ISSUER_KIND: Type.Optional(Type.Union([Type.Literal("Issuer"), Type.Literal("ClusterIssuer")])),
  KEY_ROTATION_GRACE_SECONDS: Type.Optional(Int),
  KEY_EXPIRY_NOTICE_SECONDS: Type.Optional(Int),
  AUDIT_FLUSH_INTERVAL_MS: Type.Optional(Int),
  AUDIT_BUFFER_MAX: Type.Optional(Int),
  REDIS_URL: Type.Optional(Type.String({ pattern: "^rediss?://" })),
  DATABASE_URL: Type.Optional(Type.String({ pattern: "^postgres(ql)?://" })),
  LOG_LEVEL: Type.Optional(Type.Union(["error", "warn", "info", "debug"].map((l) => Type.Literal(l)))),
  RESYNC_SECONDS: Type.Optional(Int),
  WORKERS: Type.Optional(Int),
  WATCH_TIMEOUT_SECONDS: Type.Optional(Int),
  LEASE_DURATION_SECONDS: Type.Optional(Int),
  GATEWAY_CONFIG_MAX_SECRETS: Type.Optional(Int),
});
type Env = Static<typeof Env>;
const check = TypeCompiler.Compile(Env);

export interface Config {
  kubeconfig: string | undefined;
  /** The operator's own namespace: its leader Lease; the gateway pods' namespace for NetworkPolicies. */
  systemNamespace: string;
  /** Where the gateway-config Secrets are written (GATEWAY_CONFIG_NAMESPACE; default SYSTEM_NAMESPACE). */
  gatewayConfigNamespace: string;
  identity: string;
  leaderElection: boolean;
  httpPort: number;
  httpHost: string;
  defaultIssuer: { name: string; kind: "Issuer" | "ClusterIssuer" } | undefined;
  keyRotationGraceSeconds: number;
  /** How long before a key's expiry the key.expiring notification is sent. */
  keyExpiryNoticeSeconds: number;
  /** Audit persistence (DATABASE_URL): longest wait before a batch is written; events held at most while the database is unreachable. */
  auditFlushIntervalMs: number;
  auditBufferMax: number;
  redisUrl: string | undefined;
  databaseUrl: string | undefined;
  logLevel: string;
  resyncSeconds: number;
  workers: number;
  watchTimeoutSeconds: number;
  leaseDurationSeconds: number;
  /** Most Secrets one Environment's gateway config is spread over (each holds 1 MiB, ~4,000 keys). */
  gatewayConfigMaxSecrets: number;
}

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`invalid operator configuration:\n  ${problems.join("\n  ")}`);
    this.name = "ConfigError";
    this.problems = problems;
  }
}

const names = Object.keys(Env.properties) as Array<keyof Env>;

export function loadConfig(environment: Record<string, string | undefined>): Readonly<Config> {
  const env: Record<string, string> = {};
  for (const n of names) if (environment[n] !== undefined && environment[n] !== "") env[n] = environment[n]!;
  const problems = [...check.Errors(env)].map((e) => `${e.path.slice(1)}: ${e.message} (got ${JSON.stringify(e.value)})`);
  const e = env as Env;
  const num = (v: string | undefined, d: number) => (v === undefined ? d : Number(v));
  const cfg: Config = {
    kubeconfig: e.KUBECONFIG,
    systemNamespace: e.SYSTEM_NAMESPACE ?? DEFAULT_SYSTEM_NAMESPACE,
    gatewayConfigNamespace: e.GATEWAY_CONFIG_NAMESPACE ?? e.SYSTEM_NAMESPACE ?? DEFAULT_SYSTEM_NAMESPACE,
    identity: e.POD_NAME ?? `${os.hostname()}-${process.pid}`,
    leaderElection: e.LEADER_ELECTION !== "false",
    httpPort: num(e.HTTP_PORT, 8081),
    httpHost: e.HTTP_HOST ?? "0.0.0.0",
    defaultIssuer: e.DEFAULT_ISSUER_NAME ? { name: e.DEFAULT_ISSUER_NAME, kind: e.DEFAULT_ISSUER_KIND ?? "ClusterIssuer" } : undefined,
    keyRotationGraceSeconds: num(e.KEY_ROTATION_GRACE_SECONDS, 86_400),
    keyExpiryNoticeSeconds: num(e.KEY_EXPIRY_NOTICE_SECONDS, 604_800),
    auditFlushIntervalMs: num(e.AUDIT_FLUSH_INTERVAL_MS, 1000),
    auditBufferMax: num(e.AUDIT_BUFFER_MAX, 50_000),
    redisUrl: e.REDIS_URL,
    databaseUrl: e.DATABASE_URL,
    logLevel: e.LOG_LEVEL ?? "info",
    resyncSeconds: num(e.RESYNC_SECONDS, 600),
    workers: num(e.WORKERS, 4),
    watchTimeoutSeconds: num(e.WATCH_TIMEOUT_SECONDS, 300),
    leaseDurationSeconds: num(e.LEASE_DURATION_SECONDS, 15),
    gatewayConfigMaxSecrets: num(e.GATEWAY_CONFIG_MAX_SECRETS, 32),
  };
  if (cfg.httpPort > 65535) problems.push(`HTTP_PORT: must be at most 65535 (got ${cfg.httpPort})`);
  if (cfg.workers < 1 || cfg.workers > 64) problems.push(`WORKERS: must be between 1 and 64 (got ${cfg.workers})`);
  if (cfg.resyncSeconds < 1) problems.push("RESYNC_SECONDS: must be at least 1");
  if (cfg.watchTimeoutSeconds < 5) problems.push("WATCH_TIMEOUT_SECONDS: must be at least 5");
  if (cfg.leaseDurationSeconds < 3) problems.push("LEASE_DURATION_SECONDS: must be at least 3");
  if (cfg.keyRotationGraceSeconds > 2_592_000) problems.push("KEY_ROTATION_GRACE_SECONDS: must be at most 2592000 (30 days)");
  if (cfg.keyExpiryNoticeSeconds > 7_776_000) problems.push("KEY_EXPIRY_NOTICE_SECONDS: must be at most 7776000 (90 days)");
  if (cfg.auditFlushIntervalMs < 10) problems.push("AUDIT_FLUSH_INTERVAL_MS: must be at least 10");
  if (cfg.gatewayConfigMaxSecrets < 1 || cfg.gatewayConfigMaxSecrets > 1024) problems.push(`GATEWAY_CONFIG_MAX_SECRETS: must be between 1 and 1024 (got ${cfg.gatewayConfigMaxSecrets})`);
  if (cfg.auditBufferMax < 100) problems.push("AUDIT_BUFFER_MAX: must be at least 100");
  if (!cfg.kubeconfig && !environment.KUBERNETES_SERVICE_HOST) problems.push("KUBECONFIG: required outside a cluster (no KUBERNETES_SERVICE_HOST)");
  if (problems.length) throw new ConfigError(problems);
  return Object.freeze(cfg);
}

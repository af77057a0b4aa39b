/**
 * The gateway config: the one contract between operator and gateway. The operator renders each
 * Environment into a Secret in the gateway's namespace (label `crosslogic.ai/gateway-config=true`,
 * data key `config.json`), or into several when its keys do not fit in one Secret's 1 MiB: shards,
 * each with the whole environment and some of its keys. Standalone gateways read the same documents
 * from a directory (`*.json`). Every value is resolved (plan defaults applied), so the gateway
 * needs no knowledge of plans or of the CRDs.
 */
import { Type, type Static } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import "./formats.ts";

export const GATEWAY_CONFIG_API_VERSION = "gateway.crosslogic.ai/v1";
export const GATEWAY_CONFIG_LABEL = "crosslogic.ai/gateway-config";
export const GATEWAY_CONFIG_DATA_KEY = "config.json";
/** Redis pub/sub channel on which revocations are broadcast to every gateway replica. */
export const REVOCATION_CHANNEL = "crosslogic:revocations";

const Name = Type.String({ minLength: 1, maxLength: 253 });
const PerMinute = Type.Integer({ minimum: 0, description: "Per minute; 0 means unlimited." });

export const Limits = Type.Object({
  requestsPerMinute: PerMinute,
  tokensPerMinute: PerMinute,
});

export const KeyEntry = Type.Object({
  /** SHA-256 of the full key, lowercase hex. */
  hash: Type.String({ pattern: "^[0-9a-f]{64}$" }),
  prefix: Type.String({ pattern: "^clsk_(live|test)_[0-9a-f]{8}$" }),
  /** The ApiKey object's name. */
  name: Name,
  role: Type.Union([Type.Literal("admin"), Type.Literal("developer"), Type.Literal("read-only")]),
  /** RFC 3339; after it the key is refused (also used for a rotated key's grace period). */
  expiresAt: Type.Optional(Type.String({ format: "date-time" })),
  /** Allowed models; absent means every model of the environment. */
  models: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
  limits: Type.Object({
    requestsPerMinute: PerMinute,
    tokensPerMinute: PerMinute,
    concurrency: Type.Integer({ minimum: 1, maximum: 10_000 }),
  }),
});

export const Backend = Type.Union([
  Type.Object({ url: Type.String({ pattern: "^https?://" }) }),
  Type.Object({ service: Type.Object({ name: Name, namespace: Name, port: Type.Integer({ minimum: 1, maximum: 65535 }) }) }),
]);

export const Route = Type.Object({
  model: Type.String({ minLength: 1 }),
  nodePool: Type.Optional(Type.String()),
  backend: Backend,
});

const Mode = Type.Union([Type.Literal("off"), Type.Literal("monitor"), Type.Literal("block")]);
export const ContentSafetyConfig = Type.Object({
  mode: Mode,
  outputFiltering: Type.Optional(Type.Boolean()),
  normalizeOutput: Type.Optional(Type.Boolean()),
  threshold: Type.Optional(Type.Number({ minimum: 0.05, maximum: 1 })),
  classifier: Type.Optional(Type.Object({
    model: Type.String({ minLength: 1 }),
    timeoutMs: Type.Optional(Type.Integer({ minimum: 10, maximum: 10_000 })),
    fallback: Type.Optional(Type.Union([Type.Literal("rules"), Type.Literal("block")])),
  })),
});
export type GatewayContentSafety = Static<typeof ContentSafetyConfig>;

export const GatewayConfig = Type.Object({
  apiVersion: Type.Literal(GATEWAY_CONFIG_API_VERSION),
  kind: Type.Literal("GatewayConfig"),
  tenant: Type.Object({
    name: Name,
    plan: Type.String(),
    suspended: Type.Boolean(),
    limits: Limits,
  }),
  environment: Type.Object({
    name: Name,
    namespace: Name,
    tier: Type.Union([Type.Literal("development"), Type.Literal("staging"), Type.Literal("production")]),
    hostnames: Type.Array(Type.String()),
    limits: Limits,
    cors: Type.Object({ allowedOrigins: Type.Array(Type.String()) }),
    /** Content-safety policy (the Environment's spec.contentSafety); absent means off. Optional: older gateways ignore it. */
    contentSafety: Type.Optional(ContentSafetyConfig),
  }),
  routes: Type.Array(Route),
  /**
   * Set on a shard: one of several documents for the environment, each with the same environment
   * and some of its keys (every key in one of them). Documents for one environment are in force
   * together only when each of them is a shard; otherwise the second one waits for the first to go.
   */
  shard: Type.Optional(Type.Integer({ minimum: 0, maximum: 1023 })),
  keys: Type.Array(KeyEntry),
});

export type GatewayConfig = Static<typeof GatewayConfig>;
export type GatewayKeyEntry = Static<typeof KeyEntry>;
export type GatewayRoute = Static<typeof Route>;

const compiled = TypeCompiler.Compile(GatewayConfig);

/** Validates a parsed document; returns every problem found, as `path: message` lines. */
export function validateGatewayConfig(doc: unknown): { ok: true; value: GatewayConfig } | { ok: false; errors: string[] } {
  if (compiled.Check(doc)) return { ok: true, value: doc };
  return { ok: false, errors: [...compiled.Errors(doc)].slice(0, 20).map((e) => `${e.path || "/"}: ${e.message}`) };
}

/**
 * The name of the Secret (in the gateway namespace) holding an Environment's gateway config:
 * `gwcfg-{namespace}.{environment}`, and `….{shard}` for the shards after the first. Namespaces and
 * Environment names are DNS labels (no dots, at most 63 characters), so the first dot tells them
 * apart and no two Environments share a name.
 * (It used to be `gwcfg-{namespace}-{environment}`, which two tenants could share: tenant `a`'s
 * Environment `b-c` and tenant `a-b`'s Environment `c`. The operator deletes a Secret of that form
 * once the new one is written; the gateway hands the environment over without a gap.)
 */
export function gatewayConfigSecretName(namespace: string, environment: string, shard = 0): string {
  return shard === 0 ? `gwcfg-${namespace}.${environment}` : `gwcfg-${namespace}.${environment}.${shard}`;
}

/** The shard a gateway-config Secret name stands for (0 for the first), or undefined when it is not one of the Environment's. */
export function gatewayConfigShardOf(secretName: string, namespace: string, environment: string): number | undefined {
  const base = gatewayConfigSecretName(namespace, environment);
  if (secretName === base) return 0;
  const m = secretName.startsWith(`${base}.`) ? /^[1-9]\d{0,3}$/.exec(secretName.slice(base.length + 1)) : null;
  return m ? Number(m[0]) : undefined;
}

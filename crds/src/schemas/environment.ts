/**
 * Environment (namespaced, in the tenant namespace): one deployment stage of a tenant. Reconciled
 * into a cert-manager Certificate, NetworkPolicies in the GPU node-pool namespaces and the
 * environment's gateway config.
 */
import { Type, type Static } from "@sinclair/typebox";
import { DEFAULT_ENVIRONMENT_REQUESTS_PER_MINUTE } from "../plans.ts";
import { cel, Conditions, DNS_LABEL, immutable, ObjectName, ObservedGeneration, PerMinute, StringEnum } from "./common.ts";

export const Tiers = ["development", "staging", "production"] as const;

export const IssuerRef = Type.Object({
  name: Type.String({ description: "Name of the cert-manager Issuer or ClusterIssuer.", minLength: 1, maxLength: 253 }),
  kind: StringEnum(["Issuer", "ClusterIssuer"] as const, { description: "Issuer (in the tenant namespace) or ClusterIssuer.", default: "ClusterIssuer" }),
  group: Type.String({ description: "API group of the issuer.", default: "cert-manager.io", maxLength: 253 }),
}, { description: "The cert-manager issuer that signs this environment's certificate. Default: the operator's DEFAULT_ISSUER_NAME/KIND." });

export const Tls = Type.Object({
  issuerRef: Type.Optional(IssuerRef),
  privateKey: Type.Object({
    algorithm: StringEnum(["ECDSA", "RSA"] as const, { description: "Key algorithm: ECDSA (P-256 or P-384) or RSA (4096 bits).", default: "ECDSA" }),
    size: Type.Integer({ description: "Key size: 256 or 384 for ECDSA, 4096 for RSA.", default: 256, enum: [256, 384, 4096] }),
  }, {
    description: "Private key of the certificate; re-generated on every renewal.", default: { algorithm: "ECDSA", size: 256 },
    ...cel({ rule: "self.algorithm == 'ECDSA' ? self.size in [256, 384] : self.size == 4096", message: "privateKey.size must be 256 or 384 for ECDSA and 4096 for RSA" }),
  }),
  duration: Type.String({ description: "Certificate lifetime as a Go duration (e.g. 2160h); at most 90 days (2160h).", default: "2160h", maxLength: 32 }),
  renewBefore: Type.String({ description: "How long before expiry cert-manager renews, as a Go duration (e.g. 720h); must be shorter than duration.", default: "720h", maxLength: 32 }),
}, {
  description: "TLS certificate for the environment's hostnames, issued by cert-manager.",
  default: { privateKey: { algorithm: "ECDSA", size: 256 }, duration: "2160h", renewBefore: "720h" },
  ...cel(
    { rule: "duration(self.duration) <= duration('2160h') && duration(self.duration) >= duration('1h')", message: "tls.duration must be between 1h and 2160h (90 days)", fieldPath: ".duration" },
    { rule: "duration(self.renewBefore) >= duration('5m') && duration(self.renewBefore) < duration(self.duration)", message: "tls.renewBefore must be at least 5m and shorter than tls.duration", fieldPath: ".renewBefore" },
  ),
});

export const ServiceBackend = Type.Object({
  name: ObjectName("Name of the model server's Service.", 63),
  namespace: ObjectName("Namespace of the Service: the GPU node pool's namespace.", 63),
  port: Type.Integer({ description: "Service port serving the OpenAI-compatible API.", minimum: 1, maximum: 65535 }),
}, { description: "A Kubernetes Service in a GPU node-pool namespace; the gateway balances over its EndpointSlices." });

export const Route = Type.Object({
  model: Type.String({ description: "Model name clients send in the request's `model` field.", minLength: 1, maxLength: 128, pattern: "^[A-Za-z0-9][A-Za-z0-9._:/-]*$" }),
  nodePool: Type.Optional(Type.String({ description: "GPU node pool serving the model (Nodes labelled crosslogic.ai/node-pool=<pool>; its model servers run in namespace <pool>).", minLength: 1, maxLength: 63, pattern: DNS_LABEL })),
  backend: Type.Object({
    service: Type.Optional(ServiceBackend),
    url: Type.Optional(Type.String({ description: "Base URL of an external OpenAI-compatible endpoint (http or https), for standalone and development runs.", minLength: 8, maxLength: 2048, pattern: "^https?://[^\\s/]+(/\\S*)?$" })),
  }, {
    description: "Where requests for the model go: exactly one of service or url.",
    ...cel({ rule: "has(self.service) != has(self.url)", message: "backend needs exactly one of service or url" }),
  }),
}, {
  description: "Routes one model to its backend.",
  ...cel({
    rule: "!has(self.nodePool) || !has(self.backend.service) || self.backend.service.__namespace__ == self.nodePool",
    message: "backend.service.namespace must equal nodePool: a GPU pool's model servers run in the namespace named after the pool", fieldPath: ".backend.service.namespace",
  }),
});

export const ContentSafetyModes = ["off", "monitor", "block"] as const;

export const ContentSafety = Type.Object({
  mode: StringEnum(ContentSafetyModes, {
    description: "Screening of request bodies (jailbreaks, prompt injection, harmful requests, unsafe URLs and file references): off (nothing is read), monitor (allowed; the verdict is recorded as a content_flagged audit event and an X-Content-Warning header), block (refused with 400 content_policy_violation).",
    default: "off",
  }),
  outputFiltering: Type.Boolean({
    description: "Also filter completions (non-streamed and streamed) with the same mode: monitor adds X-Content-Warning (an SSE comment for streams), block replaces the answer with an error (a stream is cut with a final error event).",
    default: false,
  }),
  normalizeOutput: Type.Boolean({
    description: "Unicode-normalise text outputs of non-streamed completions (NFC; bidi overrides, zero-width space, BOM, soft hyphen and tag characters removed).",
    default: false,
  }),
  threshold: Type.Optional(Type.Number({ description: "Score (0.05-1) at or above which content is flagged or blocked. Default 0.5.", minimum: 0.05, maximum: 1 })),
  classifier: Type.Optional(Type.Object({
    model: Type.String({ description: "Model name of one of this environment's routes that serves the safety classifier (replies SAFE or UNSAFE <category> <score>).", minLength: 1, maxLength: 128, pattern: "^[A-Za-z0-9][A-Za-z0-9._:/-]*$" }),
    timeoutMs: Type.Integer({ description: "How long one classifier call may take (10-10000 ms).", minimum: 10, maximum: 10_000, default: 300 }),
    fallback: StringEnum(["rules", "block"] as const, { description: "On classifier timeout or error: rules (keep the rule verdict) or block (treat as unsafe).", default: "rules" }),
  }, { description: "An external classifier consulted when the built-in rules are unsure." })),
}, { description: "Content-safety policy of the environment (absent: off)." });

export const EnvironmentSpec = Type.Object({
  tier: StringEnum(Tiers, { description: "development, staging or production. Production keys are clsk_live_…, the others clsk_test_…. Immutable.", ...immutable("tier") }),
  hostnames: Type.Optional(Type.Array(Type.String({ description: "A DNS name (a leading *. is a wildcard).", format: "hostname", minLength: 1, maxLength: 253 }), {
    description: "Public hostnames of the environment's gateway endpoint; the Certificate covers all of them.", maxItems: 32, "x-kubernetes-list-type": "set",
  })),
  tls: Tls,
  limits: Type.Object({
    requestsPerMinute: PerMinute("Requests across the environment's keys", DEFAULT_ENVIRONMENT_REQUESTS_PER_MINUTE),
    tokensPerMinute: PerMinute("Tokens across the environment's keys", 0),
  }, { description: `Environment-wide rate limits (default ${DEFAULT_ENVIRONMENT_REQUESTS_PER_MINUTE.toLocaleString("en-US")} requests/min, tokens unlimited).`, default: {} }),
  cors: Type.Optional(Type.Object({
    allowedOrigins: Type.Array(Type.String({ description: "An origin: scheme://host[:port], no path.", maxLength: 512, pattern: "^https?://[^\\s/]+$" }), {
      description: "Browser origins allowed to call the gateway (exact match).", maxItems: 64, "x-kubernetes-list-type": "set",
    }),
  }, { description: "Cross-origin policy for browser clients." })),
  routes: Type.Optional(Type.Array(Route, {
    description: "Models served by the environment and where their requests go.", maxItems: 128,
    "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["model"],
  })),
  contentSafety: Type.Optional(ContentSafety),
}, { description: "Desired state of the environment." });

export const NodePoolCapacity = Type.Object({
  name: Type.String({ description: "Node pool name.", maxLength: 63 }),
  nodes: Type.Integer({ description: "Nodes carrying the pool label.", minimum: 0 }),
  readyNodes: Type.Integer({ description: "Of those, nodes whose Ready condition is True.", minimum: 0 }),
  gpus: Type.Integer({ description: "Allocatable GPUs (nvidia.com/gpu) on the ready nodes.", minimum: 0 }),
}, { description: "Capacity of one GPU node pool used by the environment's routes." });

export const EnvironmentStatus = Type.Object({
  certificateSecretName: Type.Optional(Type.String({ description: "Secret (in this namespace) where cert-manager stores the certificate and key.", maxLength: 253 })),
  gatewayConfigSecretName: Type.Optional(Type.String({ description: "Secret in the system namespace holding this environment's gateway config (the first, when its keys are spread over several: see gatewayConfigSecrets).", maxLength: 253 })),
  gatewayConfigSecrets: Type.Optional(Type.Integer({ description: "How many Secrets the gateway config takes: one holds up to 1 MiB (~4,000 keys); the others are named after the first, with .1, .2, … appended.", minimum: 0 })),
  keys: Type.Optional(Type.Integer({ description: "Key hashes in the gateway config (active keys plus rotated keys in their grace period).", minimum: 0 })),
  nodePools: Type.Optional(Type.Array(NodePoolCapacity, { description: "Capacity of the GPU node pools the routes use.", maxItems: 128 })),
  observedGeneration: Type.Optional(ObservedGeneration),
  conditions: Type.Optional(Conditions),
}, { description: "Observed state of the environment, written by the operator." });

export type EnvironmentSpec = Static<typeof EnvironmentSpec>;
export type EnvironmentStatus = Static<typeof EnvironmentStatus>;
export type EnvironmentRoute = Static<typeof Route>;
export type EnvironmentContentSafety = Static<typeof ContentSafety>;
export type Tier = (typeof Tiers)[number];

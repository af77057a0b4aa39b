/**
 * ApiKey (namespaced, in the tenant namespace): one `clsk_…` key of one Environment. The operator
 * generates the key once into Secret `apikey-<name>` in the same namespace; only its SHA-256 hash
 * and prefix leave that Secret (gateway config, status, logs).
 */
import { Type, type Static } from "@sinclair/typebox";
import { DEFAULT_KEY_CONCURRENCY } from "../plans.ts";
import { MemberRoles } from "./tenant.ts";
import { cel, Conditions, immutable, ObjectName, ObservedGeneration, PerMinute, StringEnum } from "./common.ts";

export const ApiKeyPhases = ["Pending", "Active", "Expired", "Revoked"] as const;

export const ApiKeySpec = Type.Object({
  environment: ObjectName("Name of the Environment (in this namespace) the key belongs to. Immutable.", 63),
  role: StringEnum(MemberRoles, {
    description: "admin and developer keys call every endpoint; read-only keys can list models but never call inference endpoints.", default: "developer",
  }),
  expiresAt: Type.Optional(Type.String({ description: "When the key stops working (RFC 3339, e.g. 2027-01-01T00:00:00Z). The gateway refuses it from then on. Omit for no expiry.", format: "date-time", maxLength: 64 })),
  revoked: Type.Boolean({ description: "True revokes the key at once on every gateway replica. Final: a revoked key cannot be un-revoked.", default: false }),
  models: Type.Optional(Type.Array(Type.String({ description: "A model name of the environment's routes.", minLength: 1, maxLength: 128 }), {
    description: "Models the key may use; omit for every model of the environment.", minItems: 1, maxItems: 128, "x-kubernetes-list-type": "set",
  })),
  limits: Type.Object({
    requestsPerMinute: Type.Optional(PerMinute("Requests with this key (default: the tenant plan's key default)")),
    tokensPerMinute: Type.Optional(PerMinute("Tokens with this key (default: the tenant plan's key default)")),
    concurrency: Type.Integer({ description: "Requests in flight at once with this key.", minimum: 1, maximum: 10_000, default: DEFAULT_KEY_CONCURRENCY }),
  }, { description: "Per-key limits (layer 4); the tenant and environment limits apply on top.", default: {} }),
  rotationRequest: Type.Optional(Type.String({
    description: "Set or change this value (any string, e.g. the current date) to rotate the key: a new key replaces the Secret's value, and the previous key keeps working for the grace period.",
    minLength: 1, maxLength: 63,
  })),
  rotationGracePeriodSeconds: Type.Optional(Type.Integer({ description: "How long the previous key keeps working after a rotation (default: the operator's KEY_ROTATION_GRACE_SECONDS, 24h).", minimum: 0, maximum: 2_592_000 })),
}, {
  description: "Desired state of the API key.",
  ...cel(
    { rule: "!oldSelf.revoked || self.revoked", message: "a revoked key cannot be un-revoked: create a new ApiKey", fieldPath: ".revoked" },
    {
      rule: "!self.revoked || (has(self.rotationRequest) == has(oldSelf.rotationRequest) && (!has(self.rotationRequest) || self.rotationRequest == oldSelf.rotationRequest))",
      message: "a revoked key cannot be rotated", fieldPath: ".rotationRequest",
    },
  ),
});
// The environment field carries its own immutability rule.
Object.assign(ApiKeySpec.properties.environment, immutable("environment"));

export const ApiKeyStatus = Type.Object({
  prefix: Type.Optional(Type.String({ description: "First characters of the key (clsk_live_a4f5b2c8): safe to show and log.", maxLength: 32 })),
  secretName: Type.Optional(Type.String({ description: "Secret in this namespace holding the key (data key `key`).", maxLength: 253 })),
  phase: Type.Optional(StringEnum(ApiKeyPhases, { description: "Pending until the key exists; Active while usable; Expired after expiresAt; Revoked once revoked." })),
  expiresAt: Type.Optional(Type.String({ description: "When the key expires (copied from spec.expiresAt).", format: "date-time" })),
  rotatedAt: Type.Optional(Type.String({ description: "When the key was last rotated.", format: "date-time" })),
  previousKeyPrefix: Type.Optional(Type.String({ description: "Prefix of the previous key while it is still valid after a rotation.", maxLength: 32 })),
  previousKeyExpiresAt: Type.Optional(Type.String({ description: "When the previous key stops working.", format: "date-time" })),
  observedGeneration: Type.Optional(ObservedGeneration),
  conditions: Type.Optional(Conditions),
}, { description: "Observed state of the API key, written by the operator." });

export type ApiKeySpec = Static<typeof ApiKeySpec>;
export type ApiKeyStatus = Static<typeof ApiKeyStatus>;
export type ApiKeyPhase = (typeof ApiKeyPhases)[number];

/** What to do with an ApiKey's Secret, and the ApiKey's status (pure). */
import { ConditionTypes, Reasons, type ApiKey, type ApiKeyStatus } from "@crosslogic/crds";
import { mergeConditions, readyCondition, type Condition, type ConditionInput } from "../../kube/conditions.ts";
import { livePreviousKeys, type KeyMaterial } from "./key-material.ts";

export type KeyAction =
  | { kind: "none" }
  | { kind: "create" }
  | { kind: "regenerate"; reason: string }
  | { kind: "rotate" }
  | { kind: "prunePrevious" };

/** Ordered checks; the first that applies wins. A revoked key's Secret is never touched again. */
export function decideKeyAction(apiKey: ApiKey, secretExists: boolean, material: KeyMaterial, now: Date): KeyAction {
  if (apiKey.spec.revoked) return { kind: "none" };
  if (!secretExists) return { kind: "create" };
  if (!material.current) return { kind: "regenerate", reason: "the Secret's key is missing or does not match the hash the operator recorded" };
  if (apiKey.spec.rotationRequest !== undefined && apiKey.spec.rotationRequest !== material.rotationRequest) return { kind: "rotate" };
  if (livePreviousKeys(material, now).length !== material.previous.length) return { kind: "prunePrevious" };
  return { kind: "none" };
}

export function isExpired(apiKey: ApiKey, now: Date): boolean {
  return apiKey.spec.expiresAt !== undefined && Date.parse(apiKey.spec.expiresAt) <= now.getTime();
}

/** Milliseconds until the next time-driven change (expiry, end of a grace period), if any. */
export function nextTimedChange(apiKey: ApiKey, material: KeyMaterial, now: Date): number | undefined {
  const times = [apiKey.spec.expiresAt, ...material.previous.map((p) => p.expiresAt)]
    .filter((t): t is string => t !== undefined).map((t) => Date.parse(t) - now.getTime()).filter((d) => d > 0);
  return times.length ? Math.min(...times) + 1000 : undefined;
}

/** How long a freshly issued key may wait for publication before its status says it is waiting. */
export const PUBLICATION_GRACE_MS = 10_000;

/**
 * Milliseconds to hold back a status write that would only say "issued, waiting for the gateway
 * config" (0: write it now). Publication follows issuance within a pass or two of the Environment,
 * so the status is written once, as Ready, instead of twice; a key still unpublished after the grace
 * period gets its waiting status. `issuedAt`: when the current key was generated (epoch ms).
 */
export function publicationPendingMs(apiKey: ApiKey, material: KeyMaterial, published: boolean, issuedAt: number | undefined, now: Date): number {
  if (apiKey.spec.revoked || published || !material.current || issuedAt === undefined || isExpired(apiKey, now)) return 0;
  return Math.max(0, issuedAt + PUBLICATION_GRACE_MS - now.getTime());
}

export interface ApiKeyObservation {
  environmentFound: boolean;
  secretName: string;
  material: KeyMaterial;
  /** Whether the current key's hash is in the environment's gateway config. */
  published: boolean;
}

export function apiKeyStatus(apiKey: ApiKey, seen: ApiKeyObservation, now: Date): ApiKeyStatus {
  const current = seen.material.current;
  const expired = isExpired(apiKey, now);
  const phase = apiKey.spec.revoked ? "Revoked" : !current ? "Pending" : expired ? "Expired" : "Active";
  const issued: ConditionInput = !seen.environmentFound && !current
    ? { type: ConditionTypes.keyIssued, status: "False", reason: Reasons.environmentNotFound, message: `Environment ${apiKey.spec.environment} not found in this namespace, or the namespace belongs to no Tenant` }
    : current
      ? { type: ConditionTypes.keyIssued, status: "True", reason: Reasons.keyGenerated, message: `Key ${current.prefix}… stored in Secret ${seen.secretName}` }
      : { type: ConditionTypes.keyIssued, status: "False", reason: apiKey.spec.revoked ? Reasons.keyRevoked : Reasons.progressing, message: apiKey.spec.revoked ? "Revoked before a key was issued" : "Key not yet generated" };
  const published: ConditionInput = apiKey.spec.revoked
    ? { type: ConditionTypes.published, status: seen.published ? "False" : "True", reason: Reasons.keyRevoked, message: seen.published ? "Revoked; removal from the gateway config pending" : "Revoked: removed from the gateway config" }
    : seen.published
      ? { type: ConditionTypes.published, status: "True", reason: Reasons.reconciled, message: "Key hash is in the environment's gateway config" }
      : { type: ConditionTypes.published, status: "False", reason: seen.environmentFound ? Reasons.progressing : Reasons.environmentNotFound, message: seen.environmentFound ? "Waiting for the environment's gateway config (if this lasts, the Environment's GatewayConfigReady condition says why)" : `Environment ${apiKey.spec.environment} not found in this namespace` };
  const ready: ConditionInput = apiKey.spec.revoked
    ? { type: ConditionTypes.ready, status: "False", reason: Reasons.keyRevoked, message: "The key is revoked" }
    : expired && current
      ? { type: ConditionTypes.ready, status: "False", reason: Reasons.keyExpired, message: `The key expired at ${apiKey.spec.expiresAt}` }
      : readyCondition([issued, published], "Key issued and published to the gateway");
  const live = livePreviousKeys(seen.material, now);
  const lastPrev = live.at(-1);
  return {
    ...(current ? { prefix: current.prefix } : {}),
    secretName: seen.secretName,
    phase,
    ...(apiKey.spec.expiresAt ? { expiresAt: apiKey.spec.expiresAt } : {}),
    ...(seen.material.rotatedAt ? { rotatedAt: seen.material.rotatedAt } : {}),
    ...(lastPrev ? { previousKeyPrefix: lastPrev.prefix, previousKeyExpiresAt: lastPrev.expiresAt } : {}),
    observedGeneration: apiKey.metadata.generation ?? 0,
    conditions: mergeConditions(apiKey.status?.conditions as Condition[] | undefined, [ready, issued, published], apiKey.metadata.generation, now),
  };
}

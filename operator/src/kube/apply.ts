/**
 * Deciding whether a server-side apply would change anything, without sending it: the observed
 * object must contain every desired field (a manual edit of an owned field shows up here) and carry
 * the hash of the last desired object applied (a field dropped from the desired object shows up
 * there). Both hold → skip the write.
 */
import { createHash } from "node:crypto";

export const APPLIED_HASH_ANNOTATION = "crosslogic.ai/applied-hash";

export function stableStringify(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableStringify).join(",")}]`;
  if (v !== null && typeof v === "object") {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${stableStringify((v as Record<string, unknown>)[k])}`).join(",")}}`;
  }
  return JSON.stringify(v);
}

export function hashOf(v: unknown): string {
  return createHash("sha256").update(stableStringify(v)).digest("hex").slice(0, 16);
}

/** True when `observed` holds every field of `desired` with the same value (arrays element-wise). */
export function contains(observed: unknown, desired: unknown): boolean {
  if (Array.isArray(desired)) {
    return Array.isArray(observed) && observed.length === desired.length && desired.every((d, i) => contains(observed[i], d));
  }
  if (desired !== null && typeof desired === "object") {
    if (observed === null || typeof observed !== "object" || Array.isArray(observed)) return false;
    return Object.entries(desired).every(([k, v]) => contains((observed as Record<string, unknown>)[k], v));
  }
  return observed === desired;
}

interface Meta { metadata: { annotations?: Record<string, string> } }

/** The desired object with its own hash annotation (the hash excludes the annotation itself). */
export function withAppliedHash<T extends Meta>(desired: T): T {
  const hash = hashOf(desired);
  return { ...desired, metadata: { ...desired.metadata, annotations: { ...desired.metadata.annotations, [APPLIED_HASH_ANNOTATION]: hash } } };
}

/** Whether applying `desired` (already carrying its hash annotation) would change `observed`. */
export function needsApply(observed: Meta | undefined, desired: Meta): boolean {
  if (!observed) return true;
  if (observed.metadata.annotations?.[APPLIED_HASH_ANNOTATION] !== desired.metadata.annotations?.[APPLIED_HASH_ANNOTATION]) return true;
  return !contains(observed, desired);
}

/**
 * Building blocks for the CRD schemas. Every helper emits a structural OpenAPI v3 schema that the
 * Kubernetes API server accepts as-is (no `anyOf`/`const`, which structural schemas forbid) and that
 * TypeBox can still compile for runtime validation.
 */
import { Kind, Type, TypeRegistry, type SchemaOptions, type TString, type TUnsafe } from "@sinclair/typebox";
import { FormatRegistry } from "@sinclair/typebox";
import "../formats.ts";

/** A CEL rule as the API server evaluates it (`x-kubernetes-validations`). */
export interface CelRule {
  rule: string;
  message: string;
  /** Field path reported with the error, e.g. `.tls.duration`. */
  fieldPath?: string;
  reason?: "FieldValueInvalid" | "FieldValueForbidden" | "FieldValueRequired" | "FieldValueDuplicate";
}

export function cel(...rules: CelRule[]): { "x-kubernetes-validations": CelRule[] } {
  return { "x-kubernetes-validations": rules };
}

/** `self == oldSelf` on a field: the API server refuses any change after creation. */
export function immutable(field: string): { "x-kubernetes-validations": CelRule[] } {
  return cel({ rule: "self == oldSelf", message: `${field} is immutable: delete and recreate the object to change it` });
}

if (!TypeRegistry.Has("StringEnum")) {
  TypeRegistry.Set<{ enum: string[] }>("StringEnum", (schema, value) => typeof value === "string" && schema.enum.includes(value));
}

/** A string enum as `{type: string, enum: [...]}` (what `kubectl explain` shows as ENUM). */
export function StringEnum<const T extends readonly string[]>(values: T, options: SchemaOptions & { description: string }): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({ ...options, [Kind]: "StringEnum", type: "string", enum: [...values] });
}

const HOSTNAME = /^(\*\.)?([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
if (!FormatRegistry.Has("hostname")) FormatRegistry.Set("hostname", (v) => v.length <= 253 && HOSTNAME.test(v));

/** A DNS-1123 label: names that become parts of other object names. */
export const DNS_LABEL = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
/** A DNS-1123 subdomain: Kubernetes object names. */
export const DNS_SUBDOMAIN = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

export function ObjectName(description: string, maxLength = 253): TString {
  return Type.String({ description, minLength: 1, maxLength, pattern: maxLength <= 63 ? DNS_LABEL : DNS_SUBDOMAIN });
}

export const PerMinute = (what: string, defaultValue?: number) => Type.Integer({
  description: `${what} per minute; 0 means unlimited.`, minimum: 0, maximum: 1_000_000_000, format: "int64",
  ...(defaultValue === undefined ? {} : { default: defaultValue }),
});

/** metav1.Condition, as `kubectl explain` documents it for built-in kinds. */
export const Condition = Type.Object({
  type: Type.String({ description: "Kind of condition, in CamelCase: Ready, plus kind-specific ones (NamespaceReady, KeyIssued…).", minLength: 1, maxLength: 316, pattern: "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$" }),
  status: StringEnum(["True", "False", "Unknown"] as const, { description: "Whether the condition holds: True, False or Unknown." }),
  observedGeneration: Type.Optional(Type.Integer({ description: "The .metadata.generation the condition was computed from; older than the object's generation means the status is stale.", minimum: 0, format: "int64" })),
  lastTransitionTime: Type.String({ description: "When the status last changed (RFC 3339).", format: "date-time" }),
  reason: Type.String({ description: "Machine-readable CamelCase reason for the last transition.", minLength: 1, maxLength: 1024, pattern: "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$" }),
  message: Type.String({ description: "Human-readable details about the last transition.", maxLength: 32768 }),
}, { description: "One observation of the object's state." });

export const Conditions = Type.Array(Condition, {
  description: "Observations of the object's state. `Ready` is True when every output the operator owns for this object is in place.",
  maxItems: 16, "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"],
});

export const ObservedGeneration = Type.Integer({ description: "The .metadata.generation the operator last reconciled.", minimum: 0, format: "int64" });

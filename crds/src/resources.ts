/**
 * The three custom resources: their TS object types, runtime validation and CRD manifests, all
 * derived from the TypeBox schemas in ./schemas (the one source of truth; `make generate` writes
 * the YAML, `make verify` fails when it is stale).
 */
import { Type, type TObject, type TSchema } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { Value } from "@sinclair/typebox/value";
import { GROUP, VERSION, type API_VERSION } from "./labels.ts";
import { ApiKeySpec, ApiKeyStatus } from "./schemas/api-key.ts";
import { EnvironmentSpec, EnvironmentStatus } from "./schemas/environment.ts";
import { TenantSpec, TenantStatus } from "./schemas/tenant.ts";
import type * as ak from "./schemas/api-key.ts";
import type * as en from "./schemas/environment.ts";
import type * as tn from "./schemas/tenant.ts";
import type { CelRule } from "./schemas/common.ts";

export type { ApiKeySpec, ApiKeyStatus, ApiKeyPhase } from "./schemas/api-key.ts";
export type { EnvironmentSpec, EnvironmentStatus, EnvironmentRoute } from "./schemas/environment.ts";
export type { TenantSpec, TenantStatus, TenantMember } from "./schemas/tenant.ts";
export { MemberRoles, WebhookEvents } from "./schemas/tenant.ts";
export { Tiers } from "./schemas/environment.ts";
export { ApiKeyPhases } from "./schemas/api-key.ts";

/** The subset of metav1.ObjectMeta the operator and tests use. */
export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: Array<{ apiVersion: string; kind: string; name: string; uid: string; controller?: boolean; blockOwnerDeletion?: boolean }>;
}

export interface CustomResource<K extends string, S, St> {
  apiVersion: typeof API_VERSION;
  kind: K;
  metadata: ObjectMeta;
  spec: S;
  status?: St;
}
export type Tenant = CustomResource<"Tenant", tn.TenantSpec, tn.TenantStatus>;
export type Environment = CustomResource<"Environment", en.EnvironmentSpec, en.EnvironmentStatus>;
export type ApiKey = CustomResource<"ApiKey", ak.ApiKeySpec, ak.ApiKeyStatus>;

const readyColumn = { name: "Ready", type: "string", jsonPath: '.status.conditions[?(@.type=="Ready")].status', description: "Whether every output of the object is in place." };
const ageColumn = { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" };

export interface ResourceDefinition {
  kind: "Tenant" | "Environment" | "ApiKey";
  plural: string;
  singular: string;
  shortNames: string[];
  scope: "Cluster" | "Namespaced";
  description: string;
  spec: TObject;
  status: TObject;
  rootRules?: CelRule[];
  printerColumns: Array<{ name: string; type: string; jsonPath: string; description?: string; priority?: number }>;
}

export const CATEGORY = "crosslogic";

export const TenantResource: ResourceDefinition = {
  kind: "Tenant", plural: "tenants", singular: "tenant", shortNames: ["tn"], scope: "Cluster",
  description: "A customer of the inference cloud. The operator creates namespace tenant-<name> with RBAC for its members and a default-deny NetworkPolicy; Environments and ApiKeys of the tenant live in that namespace.",
  spec: TenantSpec, status: TenantStatus,
  rootRules: [{
    rule: "self.metadata.name.size() <= 56 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",
    message: "Tenant name must be a DNS label of at most 56 characters (lowercase letters, digits, '-'): it becomes namespace tenant-<name>",
    reason: "FieldValueInvalid",
  }],
  printerColumns: [
    { name: "Plan", type: "string", jsonPath: ".spec.plan" },
    { name: "Phase", type: "string", jsonPath: ".status.phase" },
    { name: "Namespace", type: "string", jsonPath: ".status.namespace" },
    readyColumn, ageColumn,
  ],
};

export const EnvironmentResource: ResourceDefinition = {
  kind: "Environment", plural: "environments", singular: "environment", shortNames: ["clenv"], scope: "Namespaced",
  description: "A deployment stage (development, staging, production) of a tenant, in the tenant's namespace. The operator issues its TLS certificate, isolates its GPU backends with NetworkPolicies and renders its gateway config.",
  spec: EnvironmentSpec, status: EnvironmentStatus,
  rootRules: [{
    rule: "self.metadata.name.size() <= 63 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",
    message: "Environment name must be a DNS label (lowercase letters, digits, '-', at most 63 characters)", reason: "FieldValueInvalid",
  }],
  printerColumns: [
    { name: "Tier", type: "string", jsonPath: ".spec.tier" },
    { name: "Hostnames", type: "string", jsonPath: ".spec.hostnames", priority: 1 },
    { name: "Keys", type: "integer", jsonPath: ".status.keys" },
    readyColumn, ageColumn,
  ],
};

export const ApiKeyResource: ResourceDefinition = {
  kind: "ApiKey", plural: "apikeys", singular: "apikey", shortNames: ["ak", "apik"], scope: "Namespaced",
  description: "An API key (clsk_live_… or clsk_test_…) of one Environment. The operator generates it once into Secret apikey-<name> (data key `key`) in the same namespace and publishes only its SHA-256 hash and prefix to the gateway.",
  spec: ApiKeySpec, status: ApiKeyStatus,
  printerColumns: [
    { name: "Environment", type: "string", jsonPath: ".spec.environment" },
    { name: "Role", type: "string", jsonPath: ".spec.role" },
    { name: "Prefix", type: "string", jsonPath: ".status.prefix" },
    { name: "Phase", type: "string", jsonPath: ".status.phase" },
    readyColumn,
    { name: "Expires", type: "string", jsonPath: ".spec.expiresAt", priority: 1 },
    ageColumn,
  ],
};

export const Resources = [TenantResource, EnvironmentResource, ApiKeyResource] as const;

/**
 * A TypeBox schema as plain JSON (TypeBox's symbol keys dropped). Properties with a default leave
 * `required`: the API server fills them in before validation, so users may omit them (the TS types
 * keep them required because every stored object has them).
 */
function plain(schema: TSchema): Record<string, unknown> {
  const walk = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(walk);
    if (node === null || typeof node !== "object") return node;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) out[k] = walk(v);
    // `kubectl explain` does not print defaults: say them in the description.
    if (typeof out.description === "string" && out.default !== undefined && typeof out.default !== "object" && !/\(default/i.test(out.description)) {
      out.description = `${out.description} Default: ${String(out.default)}.`;
    }
    const props = out.properties as Record<string, { default?: unknown }> | undefined;
    if (props && Array.isArray(out.required)) {
      const required = (out.required as string[]).filter((name) => props[name]?.default === undefined);
      if (required.length) out.required = required; else delete out.required;
    }
    return out;
  };
  return walk(JSON.parse(JSON.stringify(schema))) as Record<string, unknown>;
}

/** The CustomResourceDefinition manifest for one resource. */
export function crdManifest(def: ResourceDefinition): Record<string, unknown> {
  const openAPIV3Schema: Record<string, unknown> = {
    type: "object",
    description: def.description,
    required: ["spec"],
    properties: {
      apiVersion: { type: "string", description: "Versioned schema of this representation of an object: crosslogic.ai/v1alpha1." },
      kind: { type: "string", description: `The REST resource this object represents: ${def.kind}.` },
      metadata: { type: "object" },
      spec: plain(def.spec),
      status: plain(def.status),
    },
    ...(def.rootRules ? { "x-kubernetes-validations": def.rootRules } : {}),
  };
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${def.plural}.${GROUP}`, labels: { "app.kubernetes.io/part-of": "crosslogic" } },
    spec: {
      group: GROUP,
      names: { kind: def.kind, listKind: `${def.kind}List`, plural: def.plural, singular: def.singular, shortNames: def.shortNames, categories: [CATEGORY] },
      scope: def.scope,
      versions: [{
        name: VERSION, served: true, storage: true,
        schema: { openAPIV3Schema },
        subresources: { status: {} },
        additionalPrinterColumns: def.printerColumns,
      }],
    },
  };
}

const compiled = new Map(Resources.map((r) => [r.kind, TypeCompiler.Compile(Type.Object({ spec: r.spec, status: Type.Optional(r.status) }))]));

/**
 * Checks an object's spec and status against the schema (the CEL rules run in the API server only).
 * Returns every problem as `path: message`.
 */
export function validateResource(kind: ResourceDefinition["kind"], obj: { spec?: unknown; status?: unknown }): { ok: true } | { ok: false; errors: string[] } {
  const c = compiled.get(kind)!;
  const doc = { spec: obj.spec, ...(obj.status === undefined ? {} : { status: obj.status }) };
  if (c.Check(doc)) return { ok: true };
  return { ok: false, errors: [...c.Errors(doc)].slice(0, 20).map((e) => `${e.path || "/"}: ${e.message}`) };
}

/** A spec with the schema's defaults filled in, as the API server would store it. */
export function withDefaults<T>(kind: ResourceDefinition["kind"], spec: unknown): T {
  const def = Resources.find((r) => r.kind === kind)!;
  return Value.Default(def.spec, structuredClone(spec)) as T;
}

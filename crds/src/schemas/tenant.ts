/** Tenant (cluster-scoped): a customer. Reconciled into namespace `tenant-<name>`, RBAC and a default-deny NetworkPolicy. */
import { Type, type Static } from "@sinclair/typebox";
import { DEFAULT_PLAN, Plans } from "../plans.ts";
import { cel, Conditions, ObservedGeneration, PerMinute, StringEnum } from "./common.ts";

export const MemberRoles = ["admin", "developer", "read-only"] as const;
export const WebhookEvents = [
  "key.created", "key.rotated", "key.revoked", "key.expiring", "key.expired", "tenant.suspended", "tenant.resumed", "usage.threshold", "limit.threshold", "payment.failed", "usage.anomaly",
] as const;

export const TenantLimits = Type.Object({
  requestsPerMinute: Type.Optional(PerMinute("Requests across all of the tenant's environments")),
  tokensPerMinute: Type.Optional(PerMinute("Tokens (prompt + completion) across all of the tenant's environments")),
}, { description: "Tenant-wide rate limits. Each field overrides the plan's default (free: 50,000 requests/min); omit a field to keep the plan's value." });

export const Member = Type.Object({
  kind: StringEnum(["User", "Group", "ServiceAccount"] as const, { description: "Kind of RBAC subject." }),
  name: Type.String({ description: "User name, group name or ServiceAccount name, exactly as the cluster's authenticator reports it.", minLength: 1, maxLength: 253 }),
  namespace: Type.Optional(Type.String({ description: "Namespace of a ServiceAccount member (default: the tenant namespace). Only for kind ServiceAccount.", minLength: 1, maxLength: 63 })),
  role: StringEnum(MemberRoles, { description: "admin: manages Environments, ApiKeys and reads key Secrets; developer: manages ApiKeys and reads key Secrets; read-only: reads Environments and ApiKeys, never key Secrets." }),
}, {
  description: "A subject bound to one of the tenant's roles in the tenant namespace.",
  ...cel({ rule: "self.kind == 'ServiceAccount' || !has(self.__namespace__)", message: "namespace is only allowed for kind ServiceAccount", fieldPath: ".namespace" }),
});

export const SecretKeyRef = Type.Object({
  name: Type.String({ description: "Name of a Secret in the tenant namespace.", minLength: 1, maxLength: 253 }),
  key: Type.String({ description: "Key inside the Secret's data.", minLength: 1, maxLength: 253 }),
}, { description: "A key in a Secret in the tenant namespace." });

export const Webhook = Type.Object({
  url: Type.String({ description: "HTTPS endpoint that receives signed notifications (HMAC-SHA256 in X-Signature). Plain HTTP is refused.", minLength: 9, maxLength: 2048, pattern: "^https://[^\\s/]+(/\\S*)?$" }),
  secretRef: SecretKeyRef,
  events: Type.Array(StringEnum(WebhookEvents, { description: "A notification type." }), {
    description: "Notification types delivered to this endpoint.", minItems: 1, maxItems: WebhookEvents.length, "x-kubernetes-list-type": "set",
  }),
}, { description: "An outgoing webhook endpoint." });

export const TenantSpec = Type.Object({
  displayName: Type.Optional(Type.String({ description: "Human-readable name shown in dashboards and invoices.", minLength: 1, maxLength: 128 })),
  plan: StringEnum(Plans, { description: "Pricing plan; it sets the default rate limits of the tenant, its environments and keys.", default: DEFAULT_PLAN }),
  suspended: Type.Boolean({ description: "True makes the gateway refuse (403) every key of the tenant at once; false resumes service.", default: false }),
  limits: Type.Optional(TenantLimits),
  members: Type.Optional(Type.Array(Member, {
    description: "People and workloads allowed to use the tenant namespace, each bound to one role.",
    maxItems: 256, "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["kind", "name"],
  })),
  billing: Type.Optional(Type.Object({
    stripeCustomerId: Type.Optional(Type.String({ description: "Stripe customer id (cus_…) billed for this tenant's usage.", pattern: "^cus_[A-Za-z0-9]+$", maxLength: 255 })),
  }, { description: "Billing account of the tenant." })),
  webhooks: Type.Optional(Type.Array(Webhook, { description: "Endpoints notified of key and tenant lifecycle events.", maxItems: 16 })),
}, { description: "Desired state of the tenant." });

export const TenantStatus = Type.Object({
  namespace: Type.Optional(Type.String({ description: "The tenant's namespace (tenant-<name>): its Environments, ApiKeys and key Secrets live there.", maxLength: 63 })),
  phase: Type.Optional(StringEnum(["Pending", "Active", "Suspended", "Terminating"] as const, { description: "Active serves traffic; Suspended refuses every key; Pending until the namespace exists." })),
  effectiveLimits: Type.Optional(Type.Object({
    requestsPerMinute: PerMinute("Requests"),
    tokensPerMinute: PerMinute("Tokens"),
  }, { description: "The tenant-wide limits in force (plan defaults with spec.limits applied)." })),
  observedGeneration: Type.Optional(ObservedGeneration),
  conditions: Type.Optional(Conditions),
}, { description: "Observed state of the tenant, written by the operator." });

export type TenantSpec = Static<typeof TenantSpec>;
export type TenantStatus = Static<typeof TenantStatus>;
export type TenantMember = Static<typeof Member>;

/** The Tenant's status (pure): phase, effective limits and conditions from what the reconcile saw. */
import { ConditionTypes, planLimits, Reasons, tenantNamespace, type Tenant, type TenantStatus } from "@crosslogic/crds";
import { mergeConditions, readyCondition, type Condition, type ConditionInput } from "../../kube/conditions.ts";

export interface TenantObservation {
  namespaceReady: boolean;
  rbacReady: boolean;
  networkPolicyReady: boolean;
}

export function effectiveTenantLimits(tenant: Tenant): { requestsPerMinute: number; tokensPerMinute: number } {
  const plan = planLimits(tenant.spec.plan).tenant;
  return {
    requestsPerMinute: tenant.spec.limits?.requestsPerMinute ?? plan.requestsPerMinute,
    tokensPerMinute: tenant.spec.limits?.tokensPerMinute ?? plan.tokensPerMinute,
  };
}

const cond = (type: string, ok: boolean, what: string): ConditionInput => ok
  ? { type, status: "True", reason: Reasons.reconciled, message: `${what} in place` }
  : { type, status: "False", reason: Reasons.progressing, message: `${what} not yet in place` };

export function tenantStatus(tenant: Tenant, seen: TenantObservation, now: Date): TenantStatus {
  const conditions: ConditionInput[] = [
    cond(ConditionTypes.namespaceReady, seen.namespaceReady, `Namespace ${tenantNamespace(tenant.metadata.name)}`),
    cond(ConditionTypes.rbacReady, seen.rbacReady, "Roles and RoleBindings"),
    cond(ConditionTypes.networkPolicyReady, seen.networkPolicyReady, "Default-deny NetworkPolicy"),
  ];
  const phase = !seen.namespaceReady ? "Pending" : tenant.spec.suspended ? "Suspended" : "Active";
  return {
    namespace: tenantNamespace(tenant.metadata.name),
    phase,
    effectiveLimits: effectiveTenantLimits(tenant),
    observedGeneration: tenant.metadata.generation ?? 0,
    conditions: mergeConditions(tenant.status?.conditions as Condition[] | undefined, [
      readyCondition(conditions, tenant.spec.suspended ? "Tenant reconciled (suspended: the gateway refuses its keys)" : "Tenant reconciled"),
      ...conditions,
    ], tenant.metadata.generation, now),
  };
}

/**
 * What a Tenant should produce (pure): its namespace, a default-deny NetworkPolicy, and a RoleBinding
 * per member role to the ClusterRole of that role, which every tenant shares. The namespace is
 * cluster-scoped, so it is found again by labels and removed by the Tenant's finalizer; namespaced
 * children carry an owner reference to the Tenant.
 */
import {
  API_VERSION, Labels, MANAGED_BY, MemberRoles, TenantClusterRoleNames, TenantRoleNames, tenantNamespace, type Tenant, type TenantMember,
} from "@crosslogic/crds";

export interface ChildObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string; namespace?: string; labels: Record<string, string>; annotations?: Record<string, string>;
    ownerReferences?: Array<{ apiVersion: string; kind: string; name: string; uid: string; controller: boolean; blockOwnerDeletion: boolean }>;
  };
  [field: string]: unknown;
}

export const DEFAULT_DENY_POLICY = "crosslogic-default-deny";

/** Owner reference to one of our kinds (list items do not always carry apiVersion and kind). */
export function ownerRef(owner: { kind: string; metadata: { name: string; uid?: string } }) {
  return { apiVersion: API_VERSION, kind: owner.kind, name: owner.metadata.name, uid: owner.metadata.uid ?? "", controller: true, blockOwnerDeletion: true };
}

export function tenantLabels(tenant: string): Record<string, string> {
  return { [Labels.managedBy]: MANAGED_BY, [Labels.tenant]: tenant };
}

const crosslogicResources = ["environments", "apikeys"];
const statusResources = ["environments/status", "apikeys/status"];
const read = ["get", "list", "watch"];
const write = ["create", "update", "patch", "delete"];

/** RBAC rules per member role. Only admin and developer can read Secrets (where keys live). */
export function roleRules(role: TenantMember["role"]) {
  const base = [{ apiGroups: ["crosslogic.ai"], resources: [...crosslogicResources, ...statusResources], verbs: read }, { apiGroups: [""], resources: ["events"], verbs: read }];
  switch (role) {
    case "admin":
      return [
        { apiGroups: ["crosslogic.ai"], resources: crosslogicResources, verbs: [...read, ...write] },
        { apiGroups: ["crosslogic.ai"], resources: statusResources, verbs: read },
        { apiGroups: [""], resources: ["secrets"], verbs: read },
        { apiGroups: [""], resources: ["events"], verbs: read },
        { apiGroups: ["cert-manager.io"], resources: ["certificates"], verbs: read },
      ];
    case "developer":
      return [
        { apiGroups: ["crosslogic.ai"], resources: ["apikeys"], verbs: [...read, ...write] },
        ...base,
        { apiGroups: [""], resources: ["secrets"], verbs: read },
      ];
    case "read-only":
      return base;
  }
}

/**
 * The member roles' rules, as ClusterRoles shared by every tenant: one object per role for the whole
 * cluster instead of a Role per tenant namespace, and the operator binds them by name (the chart
 * grants `bind` on these three names only), which spares the API server an escalation check on
 * every tenant's Roles and RoleBindings. Not owned by any Tenant: they stay while the operator runs.
 */
export function desiredTenantRoles(): ChildObject[] {
  return MemberRoles.map((role) => ({
    apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole",
    metadata: { name: TenantClusterRoleNames[role], labels: { [Labels.managedBy]: MANAGED_BY, [Labels.tenantRole]: role } },
    rules: roleRules(role),
  }));
}

/** Name of the ClusterRole (and its binding) that lets a tenant's members read their own Tenant. */
export const tenantViewerName = (tenant: string): string => `crosslogic-tenant-${tenant}-viewer`;

/**
 * A Tenant is cluster-scoped, so no Role in its namespace can show it: every member gets `get` on
 * this one Tenant by name (resourceNames), nothing else cluster-wide.
 */
export function desiredTenantViewer(tenant: Tenant): ChildObject[] {
  const name = tenant.metadata.name;
  const meta = { name: tenantViewerName(name), labels: tenantLabels(name), ownerReferences: [ownerRef({ kind: "Tenant", metadata: tenant.metadata })] };
  const subjects = (tenant.spec.members ?? []).map((m) => subject(m, tenantNamespace(name)));
  return [
    { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", metadata: meta, rules: [{ apiGroups: ["crosslogic.ai"], resources: ["tenants"], resourceNames: [name], verbs: ["get"] }] },
    {
      apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRoleBinding", metadata: meta,
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: meta.name },
      ...(subjects.length ? { subjects } : {}),
    },
  ];
}

const subject = (m: TenantMember, ns: string) => m.kind === "ServiceAccount"
  ? { kind: "ServiceAccount", name: m.name, namespace: m.namespace ?? ns }
  : { kind: m.kind, apiGroup: "rbac.authorization.k8s.io", name: m.name };

export function desiredTenantChildren(tenant: Tenant): { namespace: ChildObject; namespaced: ChildObject[] } {
  const name = tenant.metadata.name;
  const ns = tenantNamespace(name);
  const labels = tenantLabels(name);
  const owner = [ownerRef({ kind: "Tenant", metadata: tenant.metadata })];
  const namespace: ChildObject = {
    apiVersion: "v1", kind: "Namespace",
    metadata: {
      name: ns, ownerReferences: owner,
      labels: { ...labels, "pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest" },
    },
  };
  const meta = (n: string) => ({ name: n, namespace: ns, labels, ownerReferences: owner });
  const denyAll: ChildObject = {
    apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: meta(DEFAULT_DENY_POLICY),
    spec: { podSelector: {}, policyTypes: ["Ingress", "Egress"] },
  };
  const members = tenant.spec.members ?? [];
  const rbac = MemberRoles.map((role): ChildObject => {
    const subjects = members.filter((m) => m.role === role).map((m) => subject(m, ns));
    return {
      apiVersion: "rbac.authorization.k8s.io/v1", kind: "RoleBinding", metadata: meta(TenantRoleNames[role]),
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: TenantClusterRoleNames[role] },
      // The API server drops an empty list; leaving it out keeps "nothing changed" exact.
      ...(subjects.length ? { subjects } : {}),
    };
  });
  return { namespace, namespaced: [denyAll, ...rbac] };
}

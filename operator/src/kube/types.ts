/** The resource types the operator reads and writes. */
import { GROUP, VERSION } from "@crosslogic/crds";
import type { ResourceType } from "@crosslogic/kube/client";

const core = (plural: string, kind: string, namespaced = true): ResourceType => ({ group: "", version: "v1", plural, kind, namespaced });

export const Types = {
  tenant: { group: GROUP, version: VERSION, plural: "tenants", kind: "Tenant", namespaced: false },
  environment: { group: GROUP, version: VERSION, plural: "environments", kind: "Environment", namespaced: true },
  apiKey: { group: GROUP, version: VERSION, plural: "apikeys", kind: "ApiKey", namespaced: true },
  namespace: core("namespaces", "Namespace", false),
  secret: core("secrets", "Secret"),
  service: core("services", "Service"),
  node: core("nodes", "Node", false),
  event: core("events", "Event"),
  networkPolicy: { group: "networking.k8s.io", version: "v1", plural: "networkpolicies", kind: "NetworkPolicy", namespaced: true },
  role: { group: "rbac.authorization.k8s.io", version: "v1", plural: "roles", kind: "Role", namespaced: true },
  roleBinding: { group: "rbac.authorization.k8s.io", version: "v1", plural: "rolebindings", kind: "RoleBinding", namespaced: true },
  clusterRole: { group: "rbac.authorization.k8s.io", version: "v1", plural: "clusterroles", kind: "ClusterRole", namespaced: false },
  clusterRoleBinding: { group: "rbac.authorization.k8s.io", version: "v1", plural: "clusterrolebindings", kind: "ClusterRoleBinding", namespaced: false },
  certificate: { group: "cert-manager.io", version: "v1", plural: "certificates", kind: "Certificate", namespaced: true },
  lease: { group: "coordination.k8s.io", version: "v1", plural: "leases", kind: "Lease", namespaced: true },
} as const satisfies Record<string, ResourceType>;

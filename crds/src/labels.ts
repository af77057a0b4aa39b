/** Names shared by the operator, the gateway, the chart and the tests. */
export const GROUP = "crosslogic.ai";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;

/** Default namespace of the control plane (operator, gateway, gateway-config Secrets). */
export const DEFAULT_SYSTEM_NAMESPACE = "crosslogic-system";

export const Labels = {
  /** On every object the operator creates; value `crosslogic-operator`. */
  managedBy: "app.kubernetes.io/managed-by",
  tenant: "crosslogic.ai/tenant",
  environment: "crosslogic.ai/environment",
  apiKey: "crosslogic.ai/api-key",
  /** On gateway pods: NetworkPolicies in GPU node-pool namespaces admit only pods with this label `true`. */
  gateway: "crosslogic.ai/gateway",
  /** On Nodes of a GPU pool; value is the pool name (also the namespace its model servers run in). */
  nodePool: "crosslogic.ai/node-pool",
  /** On gateway-config Secrets. */
  gatewayConfig: "crosslogic.ai/gateway-config",
  /** On the ClusterRoles shared by every tenant's RoleBindings; value is the member role. */
  tenantRole: "crosslogic.ai/tenant-role",
} as const;

export const MANAGED_BY = "crosslogic-operator";
export const FINALIZER = "crosslogic.ai/cleanup";

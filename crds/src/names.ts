/** Names of the objects the operator creates, shared with the chart, the gateway and the tests. */
export const TENANT_NAMESPACE_PREFIX = "tenant-";

export function tenantNamespace(tenant: string): string {
  return `${TENANT_NAMESPACE_PREFIX}${tenant}`;
}

/** The tenant owning a namespace, or undefined for other namespaces. */
export function tenantOfNamespace(namespace: string): string | undefined {
  return namespace.startsWith(TENANT_NAMESPACE_PREFIX) ? namespace.slice(TENANT_NAMESPACE_PREFIX.length) : undefined;
}

/** Secret (in the tenant namespace) holding an ApiKey's plaintext under data key `key`. */
export function apiKeySecretName(apiKey: string): string {
  return `apikey-${apiKey}`.slice(0, 253);
}
export const API_KEY_SECRET_DATA_KEY = "key";

/** cert-manager Certificate (and its Secret) of an Environment, in the tenant namespace. */
export function environmentCertificateName(environment: string): string {
  return `${environment}-tls`;
}

/** Server-side apply field managers: one per controller. */
export const FieldManagers = {
  tenant: "crosslogic-tenant-controller",
  environment: "crosslogic-environment-controller",
  apiKey: "crosslogic-apikey-controller",
} as const;

/** Leader-election Lease of the operator, in the system namespace. */
export const OPERATOR_LEASE_NAME = "crosslogic-operator";

/** RoleBindings created in every tenant namespace, one per member role. */
export const TenantRoleNames = { admin: "crosslogic-admin", developer: "crosslogic-developer", "read-only": "crosslogic-read-only" } as const;

/**
 * The ClusterRoles those RoleBindings grant, one per member role, shared by every tenant (a
 * RoleBinding grants a ClusterRole's rules in its own namespace only). The chart lets the operator
 * `bind` exactly these names.
 */
export const TenantClusterRoleNames = { admin: "crosslogic-tenant-admin", developer: "crosslogic-tenant-developer", "read-only": "crosslogic-tenant-read-only" } as const;

/**
 * Condition types and reasons the operator writes (also the reasons of its Events). `Ready` is on
 * every kind; the others belong to one kind each.
 */
export const ConditionTypes = {
  ready: "Ready",
  // Tenant
  namespaceReady: "NamespaceReady",
  rbacReady: "RBACReady",
  networkPolicyReady: "NetworkPolicyReady",
  // Environment
  certificateReady: "CertificateReady",
  backendsIsolated: "BackendsIsolated",
  gatewayConfigReady: "GatewayConfigReady",
  // ApiKey
  keyIssued: "KeyIssued",
  published: "Published",
} as const;

export const Reasons = {
  reconciled: "Reconciled",
  progressing: "Progressing",
  suspended: "Suspended",
  tenantNotFound: "TenantNotFound",
  tenantSuspended: "TenantSuspended",
  environmentNotFound: "EnvironmentNotFound",
  invalidSpec: "InvalidSpec",
  invalidGatewayConfig: "InvalidGatewayConfig",
  gatewayConfigTooLarge: "GatewayConfigTooLarge",
  serviceNotFound: "ServiceNotFound",
  certificatePending: "CertificatePending",
  certificateIssued: "CertificateIssued",
  noHostnames: "NoHostnames",
  keyGenerated: "KeyGenerated",
  keyRegenerated: "KeyRegenerated",
  keyRotated: "KeyRotated",
  keyRevoked: "KeyRevoked",
  keyExpired: "KeyExpired",
  keyDeleted: "KeyDeleted",
  applyFailed: "ApplyFailed",
  created: "Created",
  repaired: "Repaired",
  deleted: "Deleted",
} as const;
export type Reason = (typeof Reasons)[keyof typeof Reasons];

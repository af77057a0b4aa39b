/** The Environment's status (pure). */
import { ConditionTypes, Reasons, type Environment, type EnvironmentStatus } from "@crosslogic/crds";
import { mergeConditions, readyCondition, type Condition, type ConditionInput } from "../../kube/conditions.ts";

export interface EnvironmentObservation {
  tenantFound: boolean;
  tenantSuspended: boolean;
  /** undefined: no certificate wanted (no hostnames); "no-issuer": hostnames but no issuer configured. */
  certificate: undefined | "no-issuer" | { name: string; issued: boolean; message?: string };
  missingServices: string[];
  /** secretName: the first of `secrets` Secrets; tooLarge: keys left out because every Secret allowed is full. */
  gatewayConfig: { secretName: string; secrets: number; keys: number; tooLarge?: number } | { invalid: string[] } | undefined;
  nodePools: Array<{ name: string; nodes: number; readyNodes: number; gpus: number }>;
}

const where = (gc: { secretName: string; secrets: number }) => (gc.secrets > 1 ? `${gc.secretName} (and ${gc.secrets - 1} more Secret(s), ${gc.secretName}.1 …)` : gc.secretName);

export function environmentConditions(seen: EnvironmentObservation): { ready: ConditionInput; others: ConditionInput[] } {
  const cert: ConditionInput = seen.certificate === undefined
    ? { type: ConditionTypes.certificateReady, status: "True", reason: Reasons.noHostnames, message: "No hostnames: no certificate needed" }
    : seen.certificate === "no-issuer"
      ? { type: ConditionTypes.certificateReady, status: "False", reason: Reasons.invalidSpec, message: "No issuer: set spec.tls.issuerRef or the operator's DEFAULT_ISSUER_NAME" }
      : seen.certificate.issued
        ? { type: ConditionTypes.certificateReady, status: "True", reason: Reasons.certificateIssued, message: `Certificate ${seen.certificate.name} issued` }
        : { type: ConditionTypes.certificateReady, status: "False", reason: Reasons.certificatePending, message: `Certificate ${seen.certificate.name} requested; waiting for cert-manager${seen.certificate.message ? `: ${seen.certificate.message}` : ""}` };
  const backends: ConditionInput = seen.missingServices.length
    ? { type: ConditionTypes.backendsIsolated, status: "False", reason: Reasons.serviceNotFound, message: `Backend Service not found: ${seen.missingServices.join(", ")}` }
    : { type: ConditionTypes.backendsIsolated, status: "True", reason: Reasons.reconciled, message: "Only gateway pods can reach the backends" };
  const gc = seen.gatewayConfig;
  const config: ConditionInput = !seen.tenantFound
    ? { type: ConditionTypes.gatewayConfigReady, status: "False", reason: Reasons.tenantNotFound, message: "No Tenant owns this namespace (expected namespace tenant-<tenant>)" }
    : gc === undefined
      ? { type: ConditionTypes.gatewayConfigReady, status: "Unknown", reason: Reasons.progressing, message: "Gateway config not yet written" }
      : "invalid" in gc
        ? { type: ConditionTypes.gatewayConfigReady, status: "False", reason: Reasons.invalidGatewayConfig, message: `Gateway config rejected by its schema: ${gc.invalid.join("; ")}` }
        : gc.tooLarge
          ? {
            type: ConditionTypes.gatewayConfigReady, status: "False", reason: Reasons.gatewayConfigTooLarge,
            message: `Gateway config ${where(gc)} holds ${gc.keys} key(s); ${gc.tooLarge} more would take it over the ${gc.secrets} Secret(s) of 1 MiB it may use (the operator's GATEWAY_CONFIG_MAX_SECRETS) and are not published (long models lists take the most room): move keys to another Environment, shorten their models lists, or raise the limit`,
          }
          : { type: ConditionTypes.gatewayConfigReady, status: "True", reason: Reasons.reconciled, message: `Gateway config ${where(gc)} holds ${gc.keys} key(s)` };
  // Issuance is cert-manager's job and is reported, but does not hold the environment back.
  const certRequested: ConditionInput = seen.certificate === "no-issuer" ? cert : { ...cert, status: "True" };
  return { ready: readyCondition([config, backends, certRequested], seen.tenantSuspended ? "Environment reconciled (tenant suspended)" : "Environment reconciled"), others: [cert, backends, config] };
}

export function environmentStatus(env: Environment, seen: EnvironmentObservation, now: Date): EnvironmentStatus {
  const { ready, others } = environmentConditions(seen);
  const gc = seen.gatewayConfig;
  const okConfig = gc && !("invalid" in gc) ? gc : undefined;
  return {
    ...(seen.certificate && seen.certificate !== "no-issuer" ? { certificateSecretName: seen.certificate.name } : {}),
    ...(okConfig ? { gatewayConfigSecretName: okConfig.secretName, gatewayConfigSecrets: okConfig.secrets, keys: okConfig.keys } : {}),
    nodePools: seen.nodePools,
    observedGeneration: env.metadata.generation ?? 0,
    conditions: mergeConditions(env.status?.conditions as Condition[] | undefined, [ready, ...others], env.metadata.generation, now),
  };
}

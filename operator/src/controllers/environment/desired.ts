/**
 * What an Environment should produce (pure): its cert-manager Certificate, NetworkPolicies in the
 * GPU node-pool namespaces admitting only gateway pods to its backends, and its gateway config.
 */
import {
  GATEWAY_CONFIG_API_VERSION, GATEWAY_CONFIG_DATA_KEY, gatewayConfigSecretName, Labels, MANAGED_BY, planLimits,
  environmentCertificateName, type ApiKey, type Environment, type GatewayConfig, type GatewayKeyEntry, type Tenant,
} from "@crosslogic/crds";
import { createHash } from "node:crypto";
import type { ChildObject } from "../tenant/desired.ts";
import { ownerRef } from "../tenant/desired.ts";
import { effectiveTenantLimits } from "../tenant/status.ts";
import { livePreviousKeys, type KeyMaterial } from "../api-key/key-material.ts";

export const POOL_DEFAULT_DENY_POLICY = "crosslogic-default-deny";

export function environmentLabels(tenant: string, env: string): Record<string, string> {
  return { [Labels.managedBy]: MANAGED_BY, [Labels.tenant]: tenant, [Labels.environment]: env };
}

export function desiredCertificate(env: Environment, tenant: string, defaultIssuer: { name: string; kind: string } | undefined): ChildObject | undefined {
  const hostnames = env.spec.hostnames ?? [];
  const issuer = env.spec.tls.issuerRef ?? (defaultIssuer ? { ...defaultIssuer, group: "cert-manager.io" } : undefined);
  if (!hostnames.length || !issuer) return undefined;
  const name = environmentCertificateName(env.metadata.name);
  return {
    apiVersion: "cert-manager.io/v1", kind: "Certificate",
    metadata: { name, namespace: env.metadata.namespace, labels: environmentLabels(tenant, env.metadata.name), ownerReferences: [ownerRef({ kind: "Environment", metadata: env.metadata })] },
    spec: {
      secretName: name,
      dnsNames: [...hostnames],
      ...(hostnames[0]!.length <= 64 ? { commonName: hostnames[0] } : {}),
      duration: env.spec.tls.duration,
      renewBefore: env.spec.tls.renewBefore,
      privateKey: { algorithm: env.spec.tls.privateKey.algorithm, size: env.spec.tls.privateKey.size, rotationPolicy: "Always" },
      usages: ["server auth", "digital signature", "key encipherment"],
      issuerRef: { name: issuer.name, kind: issuer.kind, group: issuer.group },
    },
  };
}

export interface ServiceLike {
  metadata: { name: string; namespace?: string };
  spec?: { selector?: Record<string, string>; ports?: Array<{ port: number; targetPort?: number | string; protocol?: string }> };
}

export interface BackendPolicies {
  policies: ChildObject[];
  /** Namespaces holding service backends: each gets a default-deny policy too. */
  poolNamespaces: string[];
  /** `namespace/name` of Services that routes name but that do not exist. */
  missingServices: string[];
}

/**
 * One policy per backend Service, in its namespace: ingress only from pods labelled
 * crosslogic.ai/gateway=true in the system namespace, only on the Service's target port. A
 * Service without a selector (hand-made EndpointSlices) gets a policy for every pod of the namespace.
 */
export function desiredBackendPolicies(env: Environment, tenant: string, systemNamespace: string, service: (ns: string, name: string) => ServiceLike | undefined): BackendPolicies {
  const policies = new Map<string, ChildObject>();
  const missing: string[] = [];
  const pools = new Set<string>();
  for (const route of env.spec.routes ?? []) {
    const ref = route.backend.service;
    if (!ref) continue;
    pools.add(ref.namespace);
    const svc = service(ref.namespace, ref.name);
    if (!svc) { missing.push(`${ref.namespace}/${ref.name}`); continue; }
    const port = svc.spec?.ports?.find((p) => p.port === ref.port);
    const target = port?.targetPort ?? ref.port;
    const name = `crosslogic-gw-${createHash("sha256").update(`${env.metadata.namespace}/${env.metadata.name}/${ref.name}`).digest("hex").slice(0, 12)}`;
    const existing = policies.get(name);
    const ports = [...((existing?.spec as { ingress: Array<{ ports: Array<{ protocol: string; port: number | string }> }> } | undefined)?.ingress[0]?.ports ?? [])];
    if (!ports.some((p) => p.port === target)) ports.push({ protocol: port?.protocol ?? "TCP", port: target });
    policies.set(name, {
      apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy",
      metadata: {
        name, namespace: ref.namespace,
        labels: { ...environmentLabels(tenant, env.metadata.name), [Labels.nodePool]: route.nodePool ?? ref.namespace },
        annotations: { "crosslogic.ai/environment-ref": `${env.metadata.namespace}/${env.metadata.name}`, "crosslogic.ai/service": ref.name },
      },
      spec: {
        podSelector: svc.spec?.selector ? { matchLabels: { ...svc.spec.selector } } : {},
        policyTypes: ["Ingress"],
        ingress: [{
          from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": systemNamespace } }, podSelector: { matchLabels: { [Labels.gateway]: "true" } } }],
          ports,
        }],
      },
    });
  }
  return { policies: [...policies.values()], poolNamespaces: [...pools].sort(), missingServices: missing };
}

/** Default-deny ingress in a node-pool namespace: with it, only the gateway policies admit traffic. */
export function poolDefaultDeny(namespace: string): ChildObject {
  return {
    apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy",
    metadata: { name: POOL_DEFAULT_DENY_POLICY, namespace, labels: { [Labels.managedBy]: MANAGED_BY, [Labels.nodePool]: namespace } },
    spec: { podSelector: {}, policyTypes: ["Ingress"] },
  };
}

/** Keys of the environment that belong in the gateway config: not revoked, not being deleted, issued. */
export function keyEntries(env: Environment, tenant: Tenant, keys: Array<{ apiKey: ApiKey; material: KeyMaterial }>, now: Date): GatewayKeyEntry[] {
  const plan = planLimits(tenant.spec.plan).apiKey;
  const entries: GatewayKeyEntry[] = [];
  for (const { apiKey, material } of keys) {
    const spec = apiKey.spec;
    if (spec.environment !== env.metadata.name || spec.revoked || apiKey.metadata.deletionTimestamp || !material.current) continue;
    const base = {
      name: apiKey.metadata.name,
      role: spec.role,
      ...(spec.models?.length ? { models: [...spec.models] } : {}),
      limits: {
        requestsPerMinute: spec.limits.requestsPerMinute ?? plan.requestsPerMinute,
        tokensPerMinute: spec.limits.tokensPerMinute ?? plan.tokensPerMinute,
        concurrency: spec.limits.concurrency ?? plan.concurrency,
      },
    };
    entries.push({ hash: material.current.hash, prefix: material.current.prefix, ...base, ...(spec.expiresAt ? { expiresAt: spec.expiresAt } : {}) });
    for (const prev of livePreviousKeys(material, now)) {
      const expiresAt = spec.expiresAt && Date.parse(spec.expiresAt) < Date.parse(prev.expiresAt) ? spec.expiresAt : prev.expiresAt;
      entries.push({ hash: prev.hash, prefix: prev.prefix, ...base, expiresAt });
    }
  }
  return entries.sort((a, b) => (a.name === b.name ? a.hash.localeCompare(b.hash) : a.name.localeCompare(b.name)));
}

/** One shard of the Environment's gateway config: the whole environment and `keys`. */
export function renderGatewayConfig(env: Environment, tenant: Tenant, keys: GatewayKeyEntry[], shard = 0): GatewayConfig {
  return {
    apiVersion: GATEWAY_CONFIG_API_VERSION,
    kind: "GatewayConfig",
    tenant: { name: tenant.metadata.name, plan: tenant.spec.plan, suspended: tenant.spec.suspended, limits: effectiveTenantLimits(tenant) },
    environment: {
      name: env.metadata.name,
      namespace: env.metadata.namespace!,
      tier: env.spec.tier,
      hostnames: [...(env.spec.hostnames ?? [])],
      limits: { requestsPerMinute: env.spec.limits.requestsPerMinute, tokensPerMinute: env.spec.limits.tokensPerMinute },
      cors: { allowedOrigins: [...(env.spec.cors?.allowedOrigins ?? [])] },
      ...(env.spec.contentSafety ? { contentSafety: structuredClone(env.spec.contentSafety) } : {}),
    },
    routes: (env.spec.routes ?? []).map((r) => ({
      model: r.model,
      ...(r.nodePool ? { nodePool: r.nodePool } : {}),
      backend: r.backend.service ? { service: { ...r.backend.service } } : { url: r.backend.url! },
    })),
    shard,
    keys,
  };
}

export function gatewayConfigSecret(env: Environment, tenant: string, systemNamespace: string, config: GatewayConfig): ChildObject {
  return {
    apiVersion: "v1", kind: "Secret", type: "Opaque",
    metadata: {
      name: gatewayConfigSecretName(env.metadata.namespace!, env.metadata.name, config.shard ?? 0), namespace: systemNamespace,
      labels: { ...environmentLabels(tenant, env.metadata.name), [Labels.gatewayConfig]: "true" },
      annotations: { "crosslogic.ai/environment-ref": `${env.metadata.namespace}/${env.metadata.name}` },
    },
    data: { [GATEWAY_CONFIG_DATA_KEY]: Buffer.from(JSON.stringify(config), "utf8").toString("base64") },
  };
}

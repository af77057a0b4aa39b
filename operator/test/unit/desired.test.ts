import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { API_VERSION, generateApiKey, hashApiKey, validateGatewayConfig, withDefaults, type ApiKey, type ApiKeySpec, type Environment, type EnvironmentSpec, type Tenant, type TenantSpec } from "@crosslogic/crds";
import { desiredTenantChildren, desiredTenantRoles, desiredTenantViewer, roleRules } from "../../src/controllers/tenant/desired.ts";
import { tenantStatus } from "../../src/controllers/tenant/status.ts";
import { desiredBackendPolicies, desiredCertificate, fitGatewayConfig, GATEWAY_CONFIG_MAX_BYTES, keyEntries, renderGatewayConfig } from "../../src/controllers/environment/desired.ts";
import { environmentStatus } from "../../src/controllers/environment/status.ts";
import { keySecretContent, readKeyMaterial, type KeyMaterial } from "../../src/controllers/api-key/key-material.ts";

const now = new Date("2026-06-01T00:00:00Z");
const tenant = (spec: Partial<TenantSpec> = {}): Tenant => ({ apiVersion: API_VERSION, kind: "Tenant", metadata: { name: "acme", uid: "t-uid", generation: 2 }, spec: withDefaults<TenantSpec>("Tenant", spec) });
const environment = (spec: Partial<EnvironmentSpec> = {}): Environment => ({ apiVersion: API_VERSION, kind: "Environment", metadata: { name: "prod", namespace: "tenant-acme", uid: "e-uid", generation: 1 }, spec: withDefaults<EnvironmentSpec>("Environment", { tier: "production", ...spec }) });
const apiKey = (name: string, spec: Partial<ApiKeySpec> = {}, extra: Partial<ApiKey["metadata"]> = {}): ApiKey => ({ apiVersion: API_VERSION, kind: "ApiKey", metadata: { name, namespace: "tenant-acme", uid: `${name}-uid`, ...extra }, spec: withDefaults<ApiKeySpec>("ApiKey", { environment: "prod", ...spec }) });
const material = (key: string, previous: KeyMaterial["previous"] = []): KeyMaterial => readKeyMaterial({ metadata: { annotations: keySecretContent(key, { previous }).annotations }, data: keySecretContent(key, { previous }).data });

describe("Tenant desired state", () => {
  it("namespace tenant-<name>, labelled and owned; default-deny both ways; a RoleBinding per member role to its shared ClusterRole", () => {
    const { namespace, namespaced } = desiredTenantChildren(tenant({ members: [{ kind: "User", name: "alice", role: "admin" }, { kind: "ServiceAccount", name: "ci", role: "developer" }] }));
    assert.equal(namespace.metadata.name, "tenant-acme");
    assert.equal(namespace.metadata.labels["crosslogic.ai/tenant"], "acme");
    assert.equal(namespace.metadata.ownerReferences?.[0]?.uid, "t-uid");
    assert.deepEqual(namespaced.map((c) => `${c.kind}/${c.metadata.name}`), [
      "NetworkPolicy/crosslogic-default-deny", "RoleBinding/crosslogic-admin", "RoleBinding/crosslogic-developer", "RoleBinding/crosslogic-read-only",
    ]);
    const devBinding = namespaced.find((c) => c.kind === "RoleBinding" && c.metadata.name === "crosslogic-developer")!;
    assert.deepEqual(devBinding.subjects, [{ kind: "ServiceAccount", name: "ci", namespace: "tenant-acme" }]);
    assert.deepEqual(devBinding.roleRef, { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "crosslogic-tenant-developer" });
    // The ClusterRoles bound are the shared ones, with the member role's rules.
    const shared = desiredTenantRoles();
    assert.deepEqual(shared.map((r) => r.metadata.name), ["crosslogic-tenant-admin", "crosslogic-tenant-developer", "crosslogic-tenant-read-only"]);
    assert.deepEqual(shared[1]!.rules, roleRules("developer"));
    assert.equal(shared[0]!.metadata.ownerReferences, undefined, "owned by no Tenant");
    assert.equal("subjects" in namespaced.find((c) => c.kind === "RoleBinding" && c.metadata.name === "crosslogic-read-only")!, false, "empty subjects left out");
  });
  it("every member may get this one Tenant by name, and nothing else cluster-wide", () => {
    const [role, binding] = desiredTenantViewer(tenant({ members: [{ kind: "User", name: "alice", role: "read-only" }, { kind: "ServiceAccount", name: "ci", role: "developer" }] }));
    assert.deepEqual(role!.rules, [{ apiGroups: ["crosslogic.ai"], resources: ["tenants"], resourceNames: ["acme"], verbs: ["get"] }]);
    assert.deepEqual(binding!.roleRef, { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: role!.metadata.name });
    assert.deepEqual(binding!.subjects, [{ kind: "User", apiGroup: "rbac.authorization.k8s.io", name: "alice" }, { kind: "ServiceAccount", name: "ci", namespace: "tenant-acme" }]);
    assert.equal(role!.metadata.ownerReferences?.[0]?.uid, "t-uid");
    assert.equal("subjects" in desiredTenantViewer(tenant())[1]!, false);
  });
  for (const [role, seesSecrets] of [["admin", true], ["developer", true], ["read-only", false]] as const) {
    it(`${role} ${seesSecrets ? "can" : "cannot"} read Secrets`, () => {
      assert.equal(roleRules(role).some((r) => r.resources.includes("secrets")), seesSecrets);
    });
  }
  it("status: plan defaults with overrides, Suspended phase", () => {
    const s = tenantStatus(tenant({ plan: "pro", suspended: true, limits: { tokensPerMinute: 5 } }), { namespaceReady: true, rbacReady: true, networkPolicyReady: true }, now);
    assert.equal(s.phase, "Suspended");
    assert.deepEqual(s.effectiveLimits, { requestsPerMinute: 200_000, tokensPerMinute: 5 });
    assert.equal(s.conditions?.[0]?.type, "Ready");
    assert.equal(s.conditions?.[0]?.observedGeneration, 2);
  });
});

describe("Environment desired state", () => {
  it("gateway config over a Secret's 1 MiB: published keys first (a removal is always written), then new ones as far as they fit", () => {
    const models = Array.from({ length: 128 }, (_, i) => `${"m".repeat(120)}-${i}`);
    const keys = Array.from({ length: 80 }, (_, i) => {
      const k = apiKey(`k${String(i).padStart(2, "0")}`, { models });
      return { apiKey: k, material: material(generateApiKey("live")) };
    });
    const all = keyEntries(environment(), tenant(), keys, now);
    const size = (e: typeof all) => Buffer.byteLength(JSON.stringify(renderGatewayConfig(environment(), tenant(), e)));
    assert.ok(size(all) > GATEWAY_CONFIG_MAX_BYTES, `${size(all)} bytes: the case needs more than a Secret holds`);
    assert.deepEqual(fitGatewayConfig(all.slice(0, 10), new Set(), size), { entries: all.slice(0, 10), left: 0 }, "fits: unchanged");
    // The last 20 (by name) are the ones already published: they are kept, the new ones fill the rest.
    const published = new Set(all.slice(60).map((e) => e.hash));
    const fit = fitGatewayConfig(all, published, size);
    assert.ok(size(fit.entries) <= GATEWAY_CONFIG_MAX_BYTES);
    assert.ok(fit.left > 0 && fit.entries.length + fit.left === all.length);
    assert.ok(all.slice(60).every((e) => fit.entries.includes(e)), "every published key kept");
    assert.deepEqual(fit.entries.map((e) => e.name), [...fit.entries.map((e) => e.name)].sort(), "order kept");
    assert.equal(size(fitGatewayConfig(all, published, size).entries.concat(all.find((e) => !fit.entries.includes(e))!)) > GATEWAY_CONFIG_MAX_BYTES, true, "as many as fit");
    // The status says so: not Ready, with what to do.
    const st = environmentStatus(environment(), { tenantFound: true, tenantSuspended: false, certificate: undefined, missingServices: [], gatewayConfig: { secretName: "s", keys: fit.entries.length, tooLarge: fit.left }, nodePools: [] }, now);
    const c = st.conditions!.find((x) => x.type === "GatewayConfigReady")!;
    assert.equal(c.status, "False");
    assert.equal(c.reason, "GatewayConfigTooLarge");
    assert.match(c.message!, new RegExp(`${fit.left} more would take it over the 1 MiB`));
    assert.equal(st.conditions!.find((x) => x.type === "Ready")!.status, "False");
  });
  it("Certificate: ECDSA P-256, 90 days, renew 30 days before, operator default issuer", () => {
    const cert = desiredCertificate(environment({ hostnames: ["a.example.com"] }), "acme", { name: "le", kind: "ClusterIssuer" })!;
    assert.deepEqual(cert.spec, {
      secretName: "prod-tls", dnsNames: ["a.example.com"], commonName: "a.example.com", duration: "2160h", renewBefore: "720h",
      privateKey: { algorithm: "ECDSA", size: 256, rotationPolicy: "Always" }, usages: ["server auth", "digital signature", "key encipherment"],
      issuerRef: { name: "le", kind: "ClusterIssuer", group: "cert-manager.io" },
    });
  });
  it("no Certificate without hostnames or without any issuer", () => {
    assert.equal(desiredCertificate(environment(), "acme", { name: "le", kind: "ClusterIssuer" }), undefined);
    assert.equal(desiredCertificate(environment({ hostnames: ["a.example.com"] }), "acme", undefined), undefined);
  });
  const routes: EnvironmentSpec["routes"] = [{ model: "llama", nodePool: "gpu", backend: { service: { name: "vllm", namespace: "gpu", port: 8000 } } }, { model: "x", backend: { url: "http://127.0.0.1:1" } }];
  it("backend policy admits only gateway pods from the system namespace on the target port", () => {
    const out = desiredBackendPolicies(environment({ routes }), "acme", "sys", () => ({ metadata: { name: "vllm" }, spec: { selector: { app: "vllm" }, ports: [{ port: 8000, targetPort: 8001, protocol: "TCP" }] } }));
    assert.deepEqual(out.poolNamespaces, ["gpu"]);
    assert.equal(out.policies.length, 1);
    assert.deepEqual((out.policies[0]!.spec as { ingress: unknown }).ingress, [{ from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "sys" } }, podSelector: { matchLabels: { "crosslogic.ai/gateway": "true" } } }], ports: [{ protocol: "TCP", port: 8001 }] }]);
  });
  it("a missing Service is reported, not guessed", () => {
    const out = desiredBackendPolicies(environment({ routes }), "acme", "sys", () => undefined);
    assert.deepEqual(out.missingServices, ["gpu/vllm"]);
    const st = environmentStatus(environment({ routes }), { tenantFound: true, tenantSuspended: false, certificate: undefined, missingServices: out.missingServices, gatewayConfig: { secretName: "s", keys: 0 }, nodePools: [] }, now);
    assert.equal(st.conditions?.find((c) => c.type === "BackendsIsolated")?.status, "False");
    assert.equal(st.conditions?.find((c) => c.type === "Ready")?.reason, "ServiceNotFound");
  });
});

describe("gateway config", () => {
  const live = generateApiKey("live");
  const old = generateApiKey("live");
  const cases: Array<[string, Array<{ apiKey: ApiKey; material: KeyMaterial }>, string[]]> = [
    ["an active key", [{ apiKey: apiKey("a"), material: material(live) }], [hashApiKey(live)]],
    ["a revoked key is left out", [{ apiKey: apiKey("a", { revoked: true }), material: material(live) }], []],
    ["a key being deleted is left out", [{ apiKey: apiKey("a", {}, { deletionTimestamp: now.toISOString() }), material: material(live) }], []],
    ["a key of another environment is left out", [{ apiKey: apiKey("a", { environment: "dev" }), material: material(live) }], []],
    ["a key without a Secret yet is left out", [{ apiKey: apiKey("a"), material: readKeyMaterial(undefined) }], []],
    ["a rotated key keeps its predecessor during the grace period", [{ apiKey: apiKey("a"), material: material(live, [{ hash: hashApiKey(old), prefix: "clsk_live_00000000", expiresAt: "2026-06-02T00:00:00Z" }]) }], [hashApiKey(live), hashApiKey(old)].sort()],
    ["an expired predecessor is dropped", [{ apiKey: apiKey("a"), material: material(live, [{ hash: hashApiKey(old), prefix: "clsk_live_00000000", expiresAt: "2026-05-01T00:00:00Z" }]) }], [hashApiKey(live)]],
  ];
  for (const [name, keys, hashes] of cases) {
    it(name, () => {
      const entries = keyEntries(environment(), tenant(), keys, now);
      assert.deepEqual(entries.map((e) => e.hash).sort(), hashes);
      const doc = renderGatewayConfig(environment(), tenant(), entries);
      assert.ok(validateGatewayConfig(doc).ok, JSON.stringify(validateGatewayConfig(doc)));
    });
  }
  it("resolves plan defaults: key 600 rpm on free, concurrency 10; tenant 50,000; environment 10,000", () => {
    const entries = keyEntries(environment(), tenant(), [{ apiKey: apiKey("a"), material: material(live) }], now);
    assert.deepEqual(entries[0]!.limits, { requestsPerMinute: 600, tokensPerMinute: 0, concurrency: 10 });
    const doc = renderGatewayConfig(environment(), tenant(), entries);
    assert.deepEqual(doc.tenant.limits, { requestsPerMinute: 50_000, tokensPerMinute: 0 });
    assert.deepEqual(doc.environment.limits, { requestsPerMinute: 10_000, tokensPerMinute: 0 });
  });
  it("never contains the plaintext key", () => {
    const doc = renderGatewayConfig(environment(), tenant(), keyEntries(environment(), tenant(), [{ apiKey: apiKey("a"), material: material(live) }], now));
    assert.ok(!JSON.stringify(doc).includes(live));
  });
});

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { API_VERSION, generateApiKey, hashApiKey, validateGatewayConfig, withDefaults, type ApiKey, type GatewayKeyEntry, type ApiKeySpec, type Environment, type EnvironmentSpec, type Tenant, type TenantSpec } from "@crosslogic/crds";
import { desiredTenantChildren, desiredTenantRoles, desiredTenantViewer, roleRules } from "../../src/controllers/tenant/desired.ts";
import { tenantStatus } from "../../src/controllers/tenant/status.ts";
import { desiredBackendPolicies, desiredCertificate, keyEntries, renderGatewayConfig } from "../../src/controllers/environment/desired.ts";
import { GATEWAY_CONFIG_MAX_BYTES, planShards, publishedByEnvironment, shardOfHashes, writeOrder } from "../../src/controllers/environment/shards.ts";
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
  describe("gateway config over several Secrets (shards)", () => {
    const models = Array.from({ length: 128 }, (_, i) => `${"m".repeat(120)}-${i}`);
    const entriesFor = (names: string[], m = models) => keyEntries(environment(), tenant(), names.map((n) => ({ apiKey: apiKey(n, { models: m }), material: material(generateApiKey("live")) })), now);
    const names = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `k${String(from + i).padStart(3, "0")}`);
    const render = (list: GatewayKeyEntry[], shard: number) => renderGatewayConfig(environment(), tenant(), list, shard);
    const base = Buffer.byteLength(JSON.stringify(render([], 0)));
    const sizes = { base: (i: number) => base + String(i).length - 1, entry: (e: GatewayKeyEntry) => Buffer.byteLength(JSON.stringify(e)) };
    const bytes = (list: GatewayKeyEntry[], shard: number) => Buffer.byteLength(JSON.stringify(render(list, shard)));
    const where = (plan: ReturnType<typeof planShards>) => new Map([...plan.shards].flatMap(([i, l]) => l.map((e) => [e.hash, i] as const)));

    it("spreads keys over Secrets of at most 1 MiB, every key in exactly one, each shard valid and in key order", () => {
      const all = entriesFor(names(0, 80)); // ~17 KB each: ~1.4 MB
      const plan = planShards(all, new Map(), sizes, 32);
      assert.equal(plan.left, 0);
      assert.deepEqual([...plan.shards.keys()], [0, 1]);
      assert.equal([...plan.shards.values()].flat().length, 80);
      assert.equal(where(plan).size, 80, "no key in two shards");
      for (const [i, list] of plan.shards) {
        assert.ok(bytes(list, i) <= GATEWAY_CONFIG_MAX_BYTES, `shard ${i}: ${bytes(list, i)} bytes`);
        assert.ok(validateGatewayConfig(render(list, i)).ok);
        assert.deepEqual(list.map((e) => e.name), [...list.map((e) => e.name)].sort());
      }
      // Filled as far as the limit: the next key would not have fitted in shard 0.
      const first = plan.shards.get(0)!;
      assert.ok(bytes([...first, plan.shards.get(1)![0]!], 0) > GATEWAY_CONFIG_MAX_BYTES);
      // The sizes the planner adds up are the rendered document's, to the byte.
      assert.equal(bytes(first, 0), sizes.base(0) + first.reduce((n, e) => n + sizes.entry(e), 0) + first.length - 1);
      // Few keys: one Secret (shard 0, even with no keys at all).
      assert.deepEqual([...planShards(all.slice(0, 3), new Map(), sizes, 32).shards.keys()], [0]);
      assert.deepEqual([...planShards([], new Map(), sizes, 32).shards], [[0, []]]);
    });

    it("keys stay in the Secret that publishes them; new keys fill the lowest one with room", () => {
      const all = entriesFor(names(0, 80));
      const before = where(planShards(all, new Map(), sizes, 32));
      // Ten keys of shard 0 go, fifteen new ones come: a key never changes Secret.
      const gone = new Set([...before].filter(([, i]) => i === 0).slice(0, 10).map(([h]) => h));
      const fresh = entriesFor(names(100, 115));
      const after = planShards([...all.filter((e) => !gone.has(e.hash)), ...fresh], before, sizes, 32);
      const placed = where(after);
      for (const [h, i] of before) if (!gone.has(h)) assert.equal(placed.get(h), i, "a published key stays put");
      assert.ok(fresh.slice(0, 5).every((e) => placed.get(e.hash) === 0), "shard 0 takes new keys first, into the room the removed ones left");
      assert.equal(after.left, 0);
      for (const [i, list] of after.shards) assert.ok(bytes(list, i) <= GATEWAY_CONFIG_MAX_BYTES);
    });

    it("a shard that outgrew the limit gives up its last keys to another, written first", () => {
      const all = entriesFor(names(0, 80));
      const before = where(planShards(all, new Map(), sizes, 32));
      // Every key of shard 0 now lists twice the models: shard 0 keeps what fits, the rest move.
      const grown = keyEntries(environment(), tenant(), all.map((e) => ({ apiKey: apiKey(e.name, { models: before.get(e.hash) === 0 ? [...models, ...models.map((m) => `${m}-b`)] : models }), material: { current: { hash: e.hash, prefix: e.prefix }, previous: [] } as unknown as KeyMaterial })), now);
      const plan = planShards(grown, before, sizes, 32);
      assert.equal(plan.left, 0);
      const moved = [...where(plan)].filter(([h, i]) => before.get(h) !== i);
      assert.ok(moved.length > 0 && moved.every(([h]) => before.get(h) === 0), "only shard 0 gives keys up");
      for (const [i, list] of plan.shards) assert.ok(bytes(list, i) <= GATEWAY_CONFIG_MAX_BYTES, `shard ${i}`);
      // Every shard that takes one of them is written before shard 0.
      const order = writeOrder(plan, before);
      assert.deepEqual([...order].sort(), [...plan.shards.keys()].sort());
      for (const [, i] of moved) assert.ok(order.indexOf(i) < order.indexOf(0), `shard ${i} before shard 0: ${order.join(",")}`);
    });

    it("write order follows every move, chains included; keys crossing both ways still get an order", () => {
      const e = (n: string) => entriesFor([n])[0]!;
      const [p, q, r, t] = [e("p"), e("q"), e("r"), e("t")];
      // q: 0 → 1, t: 1 → 2. Shard 1 both takes and gives: 2 before 1 before 0.
      const chain = { shards: new Map([[0, [p]], [1, [q, r]], [2, [t]]]), left: 0 };
      assert.deepEqual(writeOrder(chain, new Map([[p.hash, 0], [q.hash, 0], [r.hash, 1], [t.hash, 1]])), [2, 1, 0]);
      const crossing = { shards: new Map([[0, [q]], [1, [p]]]), left: 0 };
      assert.deepEqual([...writeOrder(crossing, new Map([[p.hash, 0], [q.hash, 1]]))].sort(), [0, 1]);
    });

    it("a key in two Secrets (a write between them failed) belongs to the newer one; keys past a lowered limit are placed first", () => {
      const [k1, k2] = entriesFor(["k1", "k2"]);
      const secret = (rv: string, keys: GatewayKeyEntry[]) => ({ metadata: { resourceVersion: rv }, data: { "config.json": Buffer.from(JSON.stringify({ keys })).toString("base64") } });
      assert.deepEqual([...shardOfHashes(new Map([[0, secret("900", [k1!, k2!])], [1, secret("1000", [k2!])]]))], [[k1!.hash, 0], [k2!.hash, 1]]);
      assert.deepEqual([...shardOfHashes(new Map([[0, secret("1001", [k1!, k2!])], [1, secret("1000", [k2!])]]))], [[k2!.hash, 0], [k1!.hash, 0]]);
      // Published in shard 2, the limit now 1: placed before a key never published.
      const all = entriesFor(names(0, 80));
      const plan = planShards(all, new Map([[all[79]!.hash, 2]]), sizes, 1);
      assert.ok(plan.shards.get(0)!.includes(all[79]!));
      assert.equal(plan.shards.get(0)!.length + plan.left, 80);
    });

    it("over what the allowed Secrets hold: published keys first (a removal is always written), the rest left out and counted", () => {
      const all = entriesFor(names(0, 80));
      const published = new Map(all.slice(60).map((e) => [e.hash, 0] as const)); // the last 20 by name
      const plan = planShards(all, published, sizes, 1);
      const kept = plan.shards.get(0)!;
      assert.deepEqual([...plan.shards.keys()], [0]);
      assert.ok(plan.left > 0 && kept.length + plan.left === 80);
      assert.ok(all.slice(60).every((e) => kept.includes(e)), "every published key kept");
      assert.ok(bytes(kept, 0) <= GATEWAY_CONFIG_MAX_BYTES);
      // A key too large for any Secret on its own is left out, not the keys after it.
      const huge = entriesFor(["huge"], Array.from({ length: 9000 }, (_, i) => `${"h".repeat(120)}-${i}`));
      const mixed = planShards([...huge, ...all.slice(0, 3)], new Map(), sizes, 32);
      assert.equal(mixed.left, 1);
      assert.deepEqual(mixed.shards.get(0)!.map((e) => e.name), all.slice(0, 3).map((e) => e.name));
    });

    it("published: a key in any of the Environment's Secrets; before the first is written (an upgrade), the one under the old name", () => {
      const [k1, k2, k3] = entriesFor(["k1", "k2", "k3"]);
      const secret = (keys: GatewayKeyEntry[]) => ({ metadata: {}, data: { "config.json": Buffer.from(JSON.stringify({ keys })).toString("base64") } });
      const store = new Map<string, ReturnType<typeof secret>>([
        ["cfg/gwcfg-tenant-a-b-c", secret([k1!])],
      ]);
      const published = () => publishedByEnvironment((k) => store.get(k), "cfg", "tenant-a", "b-c", 4);
      assert.deepEqual([k1, k2, k3].map((k) => published().has(k!.hash)), [true, false, false], "the old name, while it is the only one");
      store.set("cfg/gwcfg-tenant-a.b-c", secret([k2!]));
      store.set("cfg/gwcfg-tenant-a.b-c.3", secret([k3!]));
      assert.deepEqual([k1, k2, k3].map((k) => published().has(k!.hash)), [false, true, true], "the shards, once there");
    });

    it("the status names the Secrets, and says what to do when keys are left out", () => {
      const status = (gc: { secretName: string; secrets: number; keys: number; tooLarge?: number }) => environmentStatus(environment(), { tenantFound: true, tenantSuspended: false, certificate: undefined, missingServices: [], gatewayConfig: gc, nodePools: [] }, now);
      const spread = status({ secretName: "gwcfg-t.e", secrets: 3, keys: 9000 });
      assert.equal(spread.gatewayConfigSecrets, 3);
      assert.equal(spread.conditions!.find((x) => x.type === "GatewayConfigReady")!.message, "Gateway config gwcfg-t.e (and 2 more Secret(s), gwcfg-t.e.1 …) holds 9000 key(s)");
      const full = status({ secretName: "gwcfg-t.e", secrets: 1, keys: 64, tooLarge: 6 });
      const c = full.conditions!.find((x) => x.type === "GatewayConfigReady")!;
      assert.equal(c.status, "False");
      assert.equal(c.reason, "GatewayConfigTooLarge");
      assert.match(c.message!, /holds 64 key\(s\); 6 more would take it over the 1 Secret\(s\) of 1 MiB it may use \(the operator's GATEWAY_CONFIG_MAX_SECRETS\)/);
      assert.equal(full.conditions!.find((x) => x.type === "Ready")!.status, "False");
    });
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
    const st = environmentStatus(environment({ routes }), { tenantFound: true, tenantSuspended: false, certificate: undefined, missingServices: out.missingServices, gatewayConfig: { secretName: "s", secrets: 1, keys: 0 }, nodePools: [] }, now);
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

/**
 * The operator against the real local API server, observed through kubectl: every output created,
 * owned and labelled; repaired after manual edits and deletions; cleaned up on delete; keys stable
 * across a restart; rotation, revocation (with the Redis broadcast), node-pool audit and capacity;
 * and zero write requests when nothing changed (counted by a proxy in front of the API server).
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { Redis } from "ioredis";
import { apiKeyPrefix, gatewayConfigSecretName, hashApiKey, Labels, MANAGED_BY, REVOCATION_CHANNEL, validateGatewayConfig, type GatewayConfig } from "@crosslogic/crds";
import { testEnv } from "@crosslogic/testenv/test-env";
import { installCrds, kube, startCountingProxy, startOperatorProcess, waitFor, type CountingProxy, type OperatorProcess } from "../support/cluster.ts";

const env = testEnv();
const k = kube(env.KUBECONFIG, env.KUBECTL);
const id = randomBytes(3).toString("hex");
const tenant = `it-${id}`;
const ns = `tenant-${tenant}`;
const system = `cl-system-${id}`;
const pool = `gpu-${id}`;
const nodeName = `gpu-node-${id}`;

type Obj = { roleRef?: { kind: string; name: string }; metadata: { name: string; uid: string; labels?: Record<string, string>; annotations?: Record<string, string>; ownerReferences?: Array<{ kind: string; name: string; uid: string; controller?: boolean }>; deletionTimestamp?: string; finalizers?: string[] }; spec?: Record<string, unknown>; data?: Record<string, string>; status?: Record<string, unknown> };

const get = (args: string[]) => k.json<Obj>(["get", ...args]);
const exists = async (args: string[]) => (await k.run(["get", ...args, "-o", "name"])).code === 0;
const condition = (o: Obj, type: string) => (o.status?.conditions as Array<{ type: string; status: string; reason: string }> | undefined)?.find((c) => c.type === type);
const keyOf = async (name: string) => Buffer.from((await get(["secret", `apikey-${name}`, "-n", ns])).data!.key!, "base64").toString("utf8");
const gatewayConfig = async (envName: string, shard = 0): Promise<GatewayConfig> => {
  const s = await get(["secret", gatewayConfigSecretName(ns, envName, shard), "-n", system]);
  const doc = JSON.parse(Buffer.from(s.data!["config.json"]!, "base64").toString("utf8")) as unknown;
  const v = validateGatewayConfig(doc);
  assert.ok(v.ok, `gateway config invalid: ${JSON.stringify(v)}`);
  return v.value;
};
const ready = (args: string[]) => waitFor(`${args.join(" ")} Ready`, async () => condition(await get(args), "Ready")?.status === "True");

describe("operator on the local API server", { timeout: 480_000 }, () => {
  let op: OperatorProcess;
  let proxy: CountingProxy;
  let redis: Redis;
  const revocations: Array<Record<string, string>> = [];
  /** Waits until the operator has written nothing (Lease renewals aside) for `spellMs`. */
  const quiet = (spellMs: number, timeoutMs: number) => waitFor("quiet API traffic", async () => {
    const writes = () => proxy.writes().filter((w) => !w.path.includes("/leases/")).length;
    const before = writes();
    await new Promise((r) => setTimeout(r, spellMs));
    return writes() === before;
  }, timeoutMs, 0);
  const operatorEnv = () => ({ KUBECONFIG: proxy.kubeconfig, SYSTEM_NAMESPACE: system, POD_NAME: `op-${id}`, RESYNC_SECONDS: "3", REDIS_URL: env.REDIS_URL, KEY_ROTATION_GRACE_SECONDS: "3600", DEFAULT_ISSUER_NAME: "letsencrypt", LEASE_DURATION_SECONDS: "4", GATEWAY_CONFIG_MAX_SECRETS: "2" });

  before(async () => {
    await installCrds(k);
    await k.ok(["create", "namespace", system]);
    await k.ok(["create", "namespace", pool]);
    await k.ok(["apply", "-f", "-"], `apiVersion: v1\nkind: Service\nmetadata: {name: vllm, namespace: ${pool}}\nspec: {selector: {app: vllm}, ports: [{port: 8000, targetPort: 8001}]}\n`);
    redis = new Redis(env.REDIS_URL);
    await redis.subscribe(REVOCATION_CHANNEL);
    redis.on("message", (_c: string, m: string) => revocations.push(JSON.parse(m) as Record<string, string>));
    proxy = await startCountingProxy(env.KUBECONFIG);
    op = await startOperatorProcess(operatorEnv());
    await k.ok(["apply", "-f", "-"], `apiVersion: crosslogic.ai/v1alpha1\nkind: Tenant\nmetadata: {name: ${tenant}}\nspec: {displayName: IT, members: [{kind: User, name: alice-${id}, role: admin}, {kind: User, name: dev-${id}, role: developer}, {kind: User, name: rob-${id}, role: read-only}]}`);
    await waitFor("tenant namespace", () => exists(["namespace", ns]));
    await k.ok(["apply", "-f", "-"], [
      `apiVersion: crosslogic.ai/v1alpha1\nkind: Environment\nmetadata: {name: prod, namespace: ${ns}}\nspec: {tier: production, hostnames: [prod-${id}.api.example.com], routes: [{model: llama, nodePool: ${pool}, backend: {service: {name: vllm, namespace: ${pool}, port: 8000}}}, {model: bge, backend: {url: "http://127.0.0.1:9000"}}]}`,
      `apiVersion: crosslogic.ai/v1alpha1\nkind: ApiKey\nmetadata: {name: bot, namespace: ${ns}}\nspec: {environment: prod, models: [llama], limits: {requestsPerMinute: 60}}`,
    ].join("\n---\n"));
  });

  after(async () => {
    await op?.stop();
    await proxy?.close();
    redis?.disconnect();
    await k.run(["delete", "apikeys,environments", "--all", "-n", ns, "--wait=false"]);
    await k.run(["delete", "tenant", tenant, "--wait=false"]);
    for (const n of [system, pool]) await k.run(["delete", "namespace", n, "--wait=false"]);
    await k.run(["delete", "node", nodeName, "--ignore-not-found"]);
  });

  it("Tenant: namespace, default-deny policy and RBAC, owned and labelled; read-only sees no key Secrets", async () => {
    await ready(["tenant", tenant]);
    const t = await get(["tenant", tenant]);
    assert.equal(t.status?.phase, "Active");
    assert.deepEqual(t.status?.effectiveLimits, { requestsPerMinute: 50000, tokensPerMinute: 0 });
    assert.ok(t.metadata.finalizers?.includes("crosslogic.ai/cleanup"));
    const nsObj = await get(["namespace", ns]);
    assert.equal(nsObj.metadata.labels?.["crosslogic.ai/tenant"], tenant);
    assert.equal(nsObj.metadata.labels?.["app.kubernetes.io/managed-by"], "crosslogic-operator");
    const deny = await get(["networkpolicy", "crosslogic-default-deny", "-n", ns]);
    assert.deepEqual(deny.spec, { podSelector: {}, policyTypes: ["Ingress", "Egress"] });
    for (const o of [nsObj, deny, await get(["rolebinding", "crosslogic-read-only", "-n", ns]), await get(["rolebinding", "crosslogic-admin", "-n", ns])]) {
      assert.equal(o.metadata.ownerReferences?.[0]?.uid, t.metadata.uid, `${o.metadata.name} owned by the Tenant`);
    }
    const can = async (user: string, verb: string, res: string) => (await k.run(["auth", "can-i", verb, res, "-n", ns, `--as=${user}`])).stdout.trim();
    assert.equal(await can(`alice-${id}`, "get", "secrets"), "yes");
    assert.equal(await can(`dev-${id}`, "create", "apikeys.crosslogic.ai"), "yes");
    assert.equal(await can(`dev-${id}`, "delete", "environments.crosslogic.ai"), "no");
    assert.equal(await can(`rob-${id}`, "get", "secrets"), "no");
    assert.equal(await can(`rob-${id}`, "list", "apikeys.crosslogic.ai"), "yes");
    assert.equal(await can(`rob-${id}`, "create", "apikeys.crosslogic.ai"), "no");
    // Members see their own (cluster-scoped) Tenant, and no other.
    const canCluster = async (user: string, verb: string, res: string) => (await k.run(["auth", "can-i", verb, res, `--as=${user}`])).stdout.trim();
    assert.equal(await canCluster(`rob-${id}`, "get", `tenants.crosslogic.ai/${tenant}`), "yes");
    assert.equal(await canCluster(`dev-${id}`, "get", `tenants.crosslogic.ai/${tenant}`), "yes");
    assert.equal(await canCluster(`rob-${id}`, "get", "tenants.crosslogic.ai/someone-else"), "no");
    assert.equal(await canCluster(`alice-${id}`, "list", "tenants.crosslogic.ai"), "no");
    assert.equal(await canCluster(`alice-${id}`, "update", `tenants.crosslogic.ai/${tenant}`), "no");
    const viewer = await get(["clusterrolebinding", `crosslogic-tenant-${tenant}-viewer`]);
    assert.equal(viewer.metadata.ownerReferences?.[0]?.uid, t.metadata.uid);
    // One Event tells what the first pass created (kubectl describe tenant), not one Event per object.
    const created = (await k.json<{ items: Array<{ reason: string; message: string }> }>(["get", "events", "-n", "default", "--field-selector", `involvedObject.name=${tenant},reason=Created`, "-o", "json"])).items;
    assert.equal(created.length, 1, JSON.stringify(created));
    for (const what of [`Namespace ${ns}`, `NetworkPolicy ${ns}/crosslogic-default-deny`, `RoleBinding ${ns}/crosslogic-read-only`, `RoleBinding ${ns}/crosslogic-admin`, `ClusterRoleBinding crosslogic-tenant-${tenant}-viewer`]) {
      assert.ok(created[0]!.message.includes(what), `${what} in: ${created[0]!.message}`);
    }
  });

  it("Environment: ECDSA P-256 Certificate ≤ 90 days, gateway-only policies in the pool namespace, valid gateway config", async () => {
    await ready(["environment", "prod", "-n", ns]);
    const e = await get(["environment", "prod", "-n", ns]);
    const cert = await get(["certificate", "prod-tls", "-n", ns]);
    assert.deepEqual((cert.spec as { privateKey: unknown }).privateKey, { algorithm: "ECDSA", size: 256, rotationPolicy: "Always" });
    assert.equal(cert.spec?.duration, "2160h");
    assert.equal(cert.spec?.renewBefore, "720h");
    assert.deepEqual(cert.spec?.dnsNames, [`prod-${id}.api.example.com`]);
    assert.deepEqual(cert.spec?.issuerRef, { name: "letsencrypt", kind: "ClusterIssuer", group: "cert-manager.io" });
    assert.equal(cert.metadata.ownerReferences?.[0]?.uid, e.metadata.uid);
    assert.equal(e.status?.certificateSecretName, "prod-tls");
    const policies = (await k.json<{ items: Obj[] }>(["get", "networkpolicy", "-n", pool, "-l", `crosslogic.ai/environment=prod,crosslogic.ai/tenant=${tenant}`])).items;
    assert.equal(policies.length, 1);
    assert.deepEqual(policies[0]!.spec, {
      podSelector: { matchLabels: { app: "vllm" } }, policyTypes: ["Ingress"],
      ingress: [{ from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": system } }, podSelector: { matchLabels: { "crosslogic.ai/gateway": "true" } } }], ports: [{ protocol: "TCP", port: 8001 }] }],
    });
    assert.ok(await exists(["networkpolicy", "crosslogic-default-deny", "-n", pool]), "default-deny in the pool namespace");
    const cfg = await gatewayConfig("prod");
    assert.equal(cfg.tenant.name, tenant);
    assert.deepEqual(cfg.environment.limits, { requestsPerMinute: 10000, tokensPerMinute: 0 });
    assert.deepEqual(cfg.routes.map((r) => r.model), ["llama", "bge"]);
    const gw = await get(["secret", `gwcfg-${ns}.prod`, "-n", system]);
    assert.equal(gw.metadata.labels?.["crosslogic.ai/gateway-config"], "true");
  });

  it("ApiKey: key generated once into its own Secret; only hash and prefix leave it", async () => {
    await ready(["apikey", "bot", "-n", ns]);
    const key = await keyOf("bot");
    assert.match(key, /^clsk_live_[0-9a-f]{64}$/);
    const ak = await get(["apikey", "bot", "-n", ns]);
    assert.equal(ak.status?.prefix, apiKeyPrefix(key));
    assert.equal(ak.status?.phase, "Active");
    const secret = await get(["secret", "apikey-bot", "-n", ns]);
    assert.equal(secret.metadata.ownerReferences?.[0]?.uid, ak.metadata.uid);
    const entry = (await gatewayConfig("prod")).keys.find((x) => x.name === "bot");
    assert.deepEqual(entry, { hash: hashApiKey(key), prefix: apiKeyPrefix(key), name: "bot", role: "developer", models: ["llama"], limits: { requestsPerMinute: 60, tokensPerMinute: 0, concurrency: 10 } });
    // The plaintext appears nowhere but its Secret: not in other objects, events or operator logs.
    const elsewhere = [
      await k.ok(["get", "apikeys,environments,events", "-n", ns, "-o", "json"]),
      await k.ok(["get", "secrets", "-n", system, "-o", "json"]),
      await k.ok(["get", "tenant", tenant, "-o", "json"]),
      op.lines.join("\n"),
    ].join("\n");
    assert.ok(!elsewhere.includes(key), "plaintext key found outside its Secret");
    assert.equal(op.audit("api_key_created").filter((a) => (a.details as { name: string }).name === "bot").length, 1);
    const events = await k.ok(["get", "events", "-n", ns, "--field-selector", "involvedObject.name=bot"]);
    assert.match(events, /KeyGenerated/);
  });

  it("nothing changed → zero write requests through several resyncs", async () => {
    // Let in-flight work settle, then count writes over three resync periods (RESYNC_SECONDS=3).
    await quiet(2500, 60_000);
    const start = proxy.requests.length;
    const reconcilesBefore = await op.metric("crosslogic_operator_reconcile_total");
    await new Promise((r) => setTimeout(r, 10_000));
    const writes = proxy.requests.slice(start).filter((r) => !["GET", "HEAD"].includes(r.method) && !r.path.includes("/leases/"));
    assert.deepEqual(writes, [], "the operator wrote although nothing changed");
    assert.ok((await op.metric("crosslogic_operator_reconcile_total")) > reconcilesBefore + 6, "resyncs reconciled");
  });

  it("repairs manual edits and deletions of its outputs", async () => {
    await k.ok(["delete", "networkpolicy", "crosslogic-default-deny", "-n", ns]);
    await k.ok(["patch", "clusterrole", "crosslogic-tenant-read-only", "--type=json", "-p", JSON.stringify([{ op: "add", path: "/rules/-", value: { apiGroups: [""], resources: ["secrets"], verbs: ["get"] } }])]);
    await k.ok(["patch", "certificate", "prod-tls", "-n", ns, "--type=merge", "-p", JSON.stringify({ spec: { duration: "8760h" } })]);
    await k.ok(["delete", "secret", `gwcfg-${ns}.prod`, "-n", system]);
    const policy = (await k.json<{ items: Obj[] }>(["get", "networkpolicy", "-n", pool, "-l", `crosslogic.ai/environment=prod,crosslogic.ai/tenant=${tenant}`])).items[0]!;
    await k.ok(["label", "networkpolicy", policy.metadata.name, "-n", pool, "crosslogic.ai/environment-"]);
    await waitFor("default-deny restored", () => exists(["networkpolicy", "crosslogic-default-deny", "-n", ns]));
    await waitFor("read-only role restored", async () => !JSON.stringify((await get(["clusterrole", "crosslogic-tenant-read-only"])) as unknown).includes("secrets"));
    await waitFor("certificate duration restored", async () => (await get(["certificate", "prod-tls", "-n", ns])).spec?.duration === "2160h");
    await waitFor("gateway config restored", () => exists(["secret", `gwcfg-${ns}.prod`, "-n", system]));
    assert.ok((await gatewayConfig("prod")).keys.some((x) => x.name === "bot"));
    // The unlabelled policy is no longer recognisably ours, so a fresh labelled one replaces it (same name: re-labelled).
    await waitFor("pool policy re-labelled", async () => (await get(["networkpolicy", policy.metadata.name, "-n", pool])).metadata.labels?.["crosslogic.ai/environment"] === "prod");
    // The repairs are told on their owners: the edited Role as restored, the deleted policy as created again.
    const events = async (name: string, namespace: string) => (await k.json<{ items: Array<{ reason: string; message: string }> }>(["get", "events", "-n", namespace, "--field-selector", `involvedObject.name=${name}`, "-o", "json"])).items;
    // The shared ClusterRole's repair is told on the Tenant whose pass restored it (any Tenant).
    await waitFor("the ClusterRole's repair on a Tenant", async () => (await k.json<{ items: Array<{ reason: string; message: string }> }>(["get", "events", "-n", "default", "--field-selector", "reason=Repaired", "-o", "json"])).items
      .some((e) => e.message.includes("ClusterRole crosslogic-tenant-read-only")));
    await waitFor("the policy's re-creation on the Tenant", async () => (await events(tenant, "default")).some((e) => e.reason === "Created" && e.message === `Created NetworkPolicy ${ns}/crosslogic-default-deny`));
    await waitFor("the Certificate's repair on the Environment", async () => (await events("prod", ns)).some((e) => e.reason === "Repaired" && e.message.includes(`Certificate ${ns}/prod-tls`)));
  });

  it("moves a gateway config off the old name (gwcfg-{ns}-{env}, which two tenants could share): the new one kept, the old one deleted", async () => {
    // Tenant `a`'s Environment `b-c` and tenant `a-b`'s Environment `c` both had gwcfg-tenant-a-b-c.
    assert.notEqual(gatewayConfigSecretName("tenant-a", "b-c"), gatewayConfigSecretName("tenant-a-b", "c"));
    const labels = (envName: string) => ({ [Labels.managedBy]: MANAGED_BY, [Labels.tenant]: tenant, [Labels.environment]: envName, [Labels.gatewayConfig]: "true" });
    const secret = (name: string, envName: string) => JSON.stringify({ apiVersion: "v1", kind: "Secret", metadata: { name, namespace: system, labels: labels(envName) }, data: { "config.json": Buffer.from("{}").toString("base64") } });
    const before = await get(["secret", gatewayConfigSecretName(ns, "prod"), "-n", system]);
    await k.ok(["apply", "-f", "-"], secret(`gwcfg-${ns}-prod`, "prod"));
    // Another Environment's Secret (here: of one that does not exist) is not this one's to delete.
    await k.ok(["apply", "-f", "-"], secret(`gwcfg-${ns}-prod-x`, "prod-x"));
    await waitFor("the old-named Secret deleted", async () => !(await exists(["secret", `gwcfg-${ns}-prod`, "-n", system])));
    const after = await get(["secret", gatewayConfigSecretName(ns, "prod"), "-n", system]);
    assert.equal(after.metadata.uid, before.metadata.uid, "the Secret under the new name stays in place");
    assert.ok((await gatewayConfig("prod")).keys.some((x) => x.name === "bot"));
    assert.ok(await exists(["secret", `gwcfg-${ns}-prod-x`, "-n", system]), "another Environment's Secret left alone");
    await k.ok(["delete", "secret", `gwcfg-${ns}-prod-x`, "-n", system]);
  });

  it("replaces a key whose Secret was deleted or tampered with, and says so", async () => {
    const before = await keyOf("bot");
    await k.ok(["patch", "secret", "apikey-bot", "-n", ns, "--type=merge", "-p", JSON.stringify({ data: { key: Buffer.from("clsk_live_" + "0".repeat(64)).toString("base64") } })]);
    const after1 = await waitFor("tampered key replaced", async () => { const k2 = await keyOf("bot"); return k2 !== before && !k2.endsWith("0".repeat(64)) ? k2 : undefined; });
    await k.ok(["delete", "secret", "apikey-bot", "-n", ns]);
    const after2 = await waitFor("deleted key re-issued", async () => { const k3 = await keyOf("bot").catch(() => undefined); return k3 && k3 !== after1 ? k3 : undefined; });
    await waitFor("gateway config has the new hash", async () => (await gatewayConfig("prod")).keys.some((x) => x.hash === hashApiKey(after2)));
    assert.match(await k.ok(["get", "events", "-n", ns, "--field-selector", "involvedObject.name=bot,type=Warning"]), /KeyRegenerated/);
  });

  it("keeps the key across an operator restart (and resyncs)", async () => {
    await ready(["apikey", "bot", "-n", ns]);
    const before = await k.ok(["get", "secret", "apikey-bot", "-n", ns, "-o", "jsonpath={.data.key}{.metadata.resourceVersion}"]);
    assert.equal(await op.stop(), 0, "graceful shutdown exits 0");
    const mark = proxy.requests.length;
    op = await startOperatorProcess(operatorEnv());
    await waitFor("restarted operator reconciled", async () => (await op.metric("crosslogic_operator_reconcile_total")) >= 3);
    await new Promise((r) => setTimeout(r, 4000));
    const secretWrites = proxy.requests.slice(mark).filter((r) => r.method !== "GET" && r.path.includes("/secrets"));
    assert.deepEqual(secretWrites, [], "the restarted operator wrote Secrets");
    assert.equal(await k.ok(["get", "secret", "apikey-bot", "-n", ns, "-o", "jsonpath={.data.key}{.metadata.resourceVersion}"]), before);
  });

  it("upgrading from per-namespace Roles: rebinds to the shared ClusterRoles and removes the Roles; a planted binding is replaced", async () => {
    // The layout of earlier versions, found by a new operator: a Role per member role in the tenant
    // namespace, bound there. A binding's roleRef cannot change in place.
    assert.equal(await op.stop(), 0);
    const labels = `{app.kubernetes.io/managed-by: crosslogic-operator, crosslogic.ai/tenant: ${tenant}}`;
    await k.ok(["delete", "rolebinding", "crosslogic-admin", "crosslogic-developer", "-n", ns]);
    await k.ok(["create", "-f", "-"], [
      // And one planted in the operator's absence, not labelled as the operator's, to another role.
      `apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: crosslogic-developer, namespace: ${ns}}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}\nsubjects: [{kind: User, apiGroup: rbac.authorization.k8s.io, name: dev-${id}}]`,
      `apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: crosslogic-admin, namespace: ${ns}, labels: ${labels}}\nrules: [{apiGroups: [""], resources: [secrets], verbs: [get]}]`,
      `apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: crosslogic-admin, namespace: ${ns}, labels: ${labels}}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: crosslogic-admin}\nsubjects: [{kind: User, apiGroup: rbac.authorization.k8s.io, name: alice-${id}}]`,
    ].join("\n---\n"));
    op = await startOperatorProcess(operatorEnv());
    await waitFor("admin binding rebound to the shared ClusterRole", async () => (await get(["rolebinding", "crosslogic-admin", "-n", ns])).roleRef?.kind === "ClusterRole");
    assert.equal((await get(["rolebinding", "crosslogic-admin", "-n", ns])).roleRef?.name, "crosslogic-tenant-admin");
    await waitFor("the planted binding replaced", async () => (await get(["rolebinding", "crosslogic-developer", "-n", ns])).roleRef?.name === "crosslogic-tenant-developer");
    await waitFor("the earlier version's Role removed", async () => !(await exists(["role", "crosslogic-admin", "-n", ns])));
    assert.equal((await k.run(["auth", "can-i", "create", "environments.crosslogic.ai", "-n", ns, `--as=alice-${id}`])).stdout.trim(), "yes", "the admin member has the admin role's rights");
  });

  it("rotates: a new key, the old one valid in the gateway config for the grace period", async () => {
    const old = await keyOf("bot");
    await k.ok(["patch", "apikey", "bot", "-n", ns, "--type=merge", "-p", JSON.stringify({ spec: { rotationRequest: "r1" } })]);
    const fresh = await waitFor("rotated key", async () => { const n = await keyOf("bot"); return n !== old ? n : undefined; });
    const cfg = await waitFor("both hashes published", async () => { const c = await gatewayConfig("prod"); return c.keys.some((x) => x.hash === hashApiKey(fresh)) ? c : undefined; });
    const prev = cfg.keys.find((x) => x.hash === hashApiKey(old));
    assert.ok(prev?.expiresAt, "old key kept with an expiry");
    const graceLeft = Date.parse(prev.expiresAt) - Date.now();
    assert.ok(graceLeft > 3000_000 && graceLeft <= 3600_000, `grace ≈ 1 h, got ${graceLeft} ms`);
    const ak = await waitFor("status shows the rotation", async () => { const a = await get(["apikey", "bot", "-n", ns]); return a.status?.previousKeyPrefix ? a : undefined; });
    assert.equal(ak.status?.previousKeyPrefix, apiKeyPrefix(old));
    assert.equal(ak.status?.prefix, apiKeyPrefix(fresh));
    assert.equal(op.audit("api_key_rotated").length >= 1, true);
  });

  it("revocation and deletion remove keys from the gateway config at once and broadcast on Redis", async () => {
    await k.ok(["apply", "-f", "-"], `apiVersion: crosslogic.ai/v1alpha1\nkind: ApiKey\nmetadata: {name: temp, namespace: ${ns}}\nspec: {environment: prod, role: read-only}\n`);
    await ready(["apikey", "temp", "-n", ns]);
    const tempKey = await keyOf("temp");
    const botKeys = (await gatewayConfig("prod")).keys.filter((x) => x.name === "bot").map((x) => x.hash);
    await k.ok(["patch", "apikey", "bot", "-n", ns, "--type=merge", "-p", '{"spec":{"revoked":true}}']);
    await waitFor("bot removed from config", async () => !(await gatewayConfig("prod")).keys.some((x) => x.name === "bot"));
    await waitFor("bot revoked", async () => (await get(["apikey", "bot", "-n", ns])).status?.phase === "Revoked");
    await waitFor("revocations broadcast", async () => botKeys.every((h) => revocations.some((r) => r.type === "key_revoked" && r.hash === h)));
    await k.ok(["delete", "apikey", "temp", "-n", ns, "--wait=false"]);
    await waitFor("temp removed from config", async () => !(await gatewayConfig("prod")).keys.some((x) => x.name === "temp"));
    await waitFor("temp Secret deleted", async () => !(await exists(["secret", "apikey-temp", "-n", ns])));
    await waitFor("temp ApiKey gone", async () => !(await exists(["apikey", "temp", "-n", ns])));
    assert.ok(revocations.some((r) => r.hash === hashApiKey(tempKey) && r.prefix === apiKeyPrefix(tempKey)));
    assert.equal(op.audit("api_key_revoked").length, 1, JSON.stringify(op.audit("api_key_revoked")));
    assert.equal(op.audit("api_key_deleted").length, 1);
  });

  it("suspending the tenant marks every environment's config and broadcasts", async () => {
    await k.ok(["patch", "tenant", tenant, "--type=merge", "-p", '{"spec":{"suspended":true}}']);
    await waitFor("config suspended", async () => (await gatewayConfig("prod")).tenant.suspended);
    await waitFor("phase Suspended", async () => (await get(["tenant", tenant])).status?.phase === "Suspended");
    assert.ok(revocations.some((r) => r.type === "tenant_suspended" && r.tenant === tenant));
    await k.ok(["patch", "tenant", tenant, "--type=merge", "-p", '{"spec":{"suspended":false}}']);
    await waitFor("config resumed", async () => !(await gatewayConfig("prod")).tenant.suspended);
  });

  it("GPU node pool: node launch and termination audited, capacity in the Environment status", async () => {
    await k.ok(["apply", "-f", "-"], `apiVersion: v1\nkind: Node\nmetadata: {name: ${nodeName}, labels: {crosslogic.ai/node-pool: ${pool}}}\nspec: {providerID: "test://${nodeName}"}\n`);
    await k.ok(["patch", "node", nodeName, "--subresource=status", "--type=merge", "-p", JSON.stringify({ status: { allocatable: { "nvidia.com/gpu": "8", cpu: "4", memory: "8Gi", pods: "10" }, capacity: { "nvidia.com/gpu": "8", cpu: "4", memory: "8Gi", pods: "10" }, conditions: [{ type: "Ready", status: "True", reason: "KubeletReady", message: "ok", lastHeartbeatTime: new Date().toISOString(), lastTransitionTime: new Date().toISOString() }] } })]);
    const capacity = async (want: unknown) => { assert.deepEqual((await get(["environment", "prod", "-n", ns])).status?.nodePools, want); return true; };
    await waitFor("capacity reported", () => capacity([{ name: pool, nodes: 1, readyNodes: 1, gpus: 8 }]));
    await waitFor("launch audited", async () => op.audit("node_launched").some((a) => (a.details as { node: string }).node === nodeName));
    const launched = op.audit("node_launched").find((a) => (a.details as { node: string }).node === nodeName)!;
    assert.deepEqual(Object.keys(launched).sort(), ["action", "actor_id", "details", "ip_address", "log", "request_id", "tenant_id", "timestamp"]);
    await k.ok(["delete", "node", nodeName]);
    await waitFor("termination audited", async () => op.audit("node_terminated").some((a) => (a.details as { node: string }).node === nodeName));
    await waitFor("capacity back to zero", () => capacity([{ name: pool, nodes: 0, readyNodes: 0, gpus: 0 }]));
  });

  it("a burst of keys: each Secret created once, never tried again and read back", async () => {
    const n = 30;
    // Nothing else in flight (other tests' keys), so the Secret creates counted below are the burst's.
    await quiet(1000, 30_000);
    const mark = proxy.requests.length;
    const started = Date.now();
    await k.ok(["apply", "-f", "-"], [
      `apiVersion: crosslogic.ai/v1alpha1\nkind: Environment\nmetadata: {name: burst, namespace: ${ns}}\nspec: {tier: development, routes: [{model: m, backend: {url: "http://127.0.0.1:9"}}]}`,
      ...Array.from({ length: n }, (_, i) => `apiVersion: crosslogic.ai/v1alpha1\nkind: ApiKey\nmetadata: {name: burst-${i}, namespace: ${ns}}\nspec: {environment: burst}`),
    ].join("\n---\n"));
    await waitFor("every burst key Ready", async () => (await k.json<{ items: Obj[] }>(["get", "apikeys", "-n", ns, "-o", "json"])).items
      .filter((o) => o.metadata.name.startsWith("burst-") && condition(o, "Ready")?.status === "True").length === n, 60_000);
    const issuingMs = Date.now() - started;
    const secretCalls = proxy.requests.slice(mark).filter((r) => /\/secrets(\/apikey-burst-|\?|$)/.test(r.path) && r.path.includes(`/namespaces/${ns}/`));
    // A pass that runs before the new Secret's watch event would POST again (409) and GET it back.
    assert.equal(secretCalls.filter((r) => r.method === "POST").length, n, "one create per key");
    assert.deepEqual(secretCalls.filter((r) => r.method === "GET" && r.path.includes("apikey-burst-")), [], "no Secret read back after a conflict");
    assert.equal((await gatewayConfig("burst")).keys.length, n);
    // Published together, not one config write per key: the Environment's first config, then the
    // keys issued within each 500 ms pacing window in one write (a slow machine issues them over
    // more windows; here, usually within two).
    const configWrites = proxy.requests.slice(mark).filter((r) => r.method === "PATCH" && r.path.includes(`/secrets/gwcfg-${ns}.burst`)).length;
    assert.ok(configWrites <= Math.min(n / 3, 2 + Math.ceil(issuingMs / 500)), `${configWrites} gateway-config writes for a burst of ${n} keys issued in ${issuingMs} ms`);
    await k.ok(["delete", "environment", "burst", "-n", ns]);
  });

  it("more keys than one config Secret holds: spread over several, Ready; beyond GATEWAY_CONFIG_MAX_SECRETS (2 here), as many as fit and the Environment says why", async () => {
    // Each key allowed 128 long model names (~17 KB in the config): 70 keys are ~1.2 MB, over a Secret's 1 MiB.
    const models = JSON.stringify(Array.from({ length: 128 }, (_, i) => `${"m".repeat(120)}-${i}`));
    const keys = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `apiVersion: crosslogic.ai/v1alpha1\nkind: ApiKey\nmetadata: {name: wide-${from + i}, namespace: ${ns}, labels: {wide: "yes"}}\nspec: {environment: wide, models: ${models}}`);
    await k.ok(["apply", "-f", "-"], [
      `apiVersion: crosslogic.ai/v1alpha1\nkind: Environment\nmetadata: {name: wide, namespace: ${ns}}\nspec: {tier: development, routes: [{model: m, backend: {url: "http://127.0.0.1:9"}}]}`,
      ...keys(0, 70),
    ].join("\n---\n"));
    const shards = async () => [await gatewayConfig("wide"), (await exists(["secret", gatewayConfigSecretName(ns, "wide", 1), "-n", system])) ? await gatewayConfig("wide", 1) : undefined].filter((d) => d !== undefined);
    await waitFor("all 70 keys published, over two Secrets", async () => (await shards()).flatMap((d) => d.keys).length === 70, 60_000);
    const spread = await shards();
    assert.deepEqual(spread.map((d) => d.shard), [0, 1]);
    assert.ok(spread.every((d) => d.keys.length > 0));
    for (const i of [0, 1]) {
      const bytes = Buffer.from((await get(["secret", gatewayConfigSecretName(ns, "wide", i), "-n", system])).data!["config.json"]!, "base64").length;
      assert.ok(bytes <= 1024 * 1024, `shard ${i}: ${bytes} bytes`);
    }
    await waitFor("the Environment Ready, naming both Secrets", async () => {
      const e = await get(["environment", "wide", "-n", ns]);
      return condition(e, "Ready")?.status === "True" && e.status?.gatewayConfigSecrets === 2 && e.status?.keys === 70;
    });
    await waitFor("every key Published", async () => (await k.json<{ items: Obj[] }>(["get", "apikeys", "-n", ns, "-l", "wide=yes", "-o", "json"])).items
      .filter((o) => condition(o, "Published")?.status === "True").length === 70);

    // 60 more: over the two Secrets this operator may use.
    await k.ok(["apply", "-f", "-"], keys(70, 130).join("\n---\n"));
    const tooLarge = await waitFor("GatewayConfigTooLarge on the Environment, counting all 130 keys", async () => {
      const c = condition(await get(["environment", "wide", "-n", ns]), "GatewayConfigReady") as { reason: string; message?: string } | undefined;
      const counts = /holds (\d+) key\(s\); (\d+) more/.exec(c?.message ?? "");
      return c?.reason === "GatewayConfigTooLarge" && counts && Number(counts[1]) + Number(counts[2]) === 130 ? { c, held: Number(counts[1]) } : undefined;
    }, 60_000);
    const published = (await shards()).flatMap((d) => d.keys);
    assert.equal(published.length, tooLarge.held);
    assert.ok(published.length > 70 && published.length < 130, `${published.length} published`);
    assert.match(tooLarge.c.message!, /over the 2 Secret\(s\) of 1 MiB it may use \(the operator's GATEWAY_CONFIG_MAX_SECRETS\)/);
    assert.equal(condition(await get(["environment", "wide", "-n", ns]), "Ready")?.status, "False");
    // Removing a published key is always written, though the config stays full.
    const victim = published.find((x) => x.name === "wide-69")!;
    await k.ok(["patch", "apikey", victim.name, "-n", ns, "--type=merge", "-p", '{"spec":{"revoked":true}}']);
    await waitFor("the revoked key out of the full config", async () => !(await shards()).some((d) => d.keys.some((x) => x.hash === victim.hash)));
    // Down to a few keys: the second Secret, emptied, is deleted.
    await k.ok(["delete", "apikeys", "-n", ns, "-l", "wide=yes", "--wait=false"]);
    await waitFor("the emptied second Secret deleted", async () => !(await exists(["secret", gatewayConfigSecretName(ns, "wide", 1), "-n", system])), 60_000);
    await k.ok(["delete", "environment", "wide", "-n", ns]);
  });

  it("deleting an Environment and the Tenant cleans up cross-namespace and cluster-scoped outputs", async () => {
    await k.ok(["delete", "environment", "prod", "-n", ns, "--wait=false"]);
    await waitFor("gateway config deleted", async () => !(await exists(["secret", `gwcfg-${ns}.prod`, "-n", system])));
    await waitFor("pool policies deleted", async () => (await k.ok(["get", "networkpolicy", "-n", pool, "-l", `crosslogic.ai/tenant=${tenant}`, "-o", "name"])).trim() === "");
    await waitFor("environment gone", async () => !(await exists(["environment", "prod", "-n", ns])));
    await k.ok(["delete", "tenant", tenant, "--wait=false"]);
    // No namespace controller runs here: deletion is requested, the namespace stays Terminating.
    await waitFor("tenant namespace deleting", async () => (await get(["namespace", ns])).metadata.deletionTimestamp !== undefined);
    await waitFor("tenant gone", async () => !(await exists(["tenant", tenant])));
    assert.equal(op.audit("tenant_deleted").length, 1);
    assert.ok(!(await exists(["clusterrole", `crosslogic-tenant-${tenant}-viewer`])), "viewer ClusterRole deleted");
    assert.ok(!(await exists(["clusterrolebinding", `crosslogic-tenant-${tenant}-viewer`])), "viewer ClusterRoleBinding deleted");
  });
});

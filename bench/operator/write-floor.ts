/**
 * The floor under the control-plane figure (TARGETS.md: 1,000 Tenants / 3,000 Environments /
 * 10,000 ApiKeys to Ready in ≤ 120 s). scale.ts measures the operator; this bench measures what
 * the API server alone needs for the same writes: no operator, no gateway, no Redis, and a driver
 * with no logic issuing, per tenant, the writes the operator and scale.ts's driver issue (see
 * bench/results/operator-scale.md): the 14 creates, then the Tenant's finalizer, Namespace,
 * NetworkPolicy, 3 RoleBindings, viewer ClusterRole and binding, status and Event; per Environment
 * its finalizer and 3 config Secrets and statuses (0 keys, then two batches); per ApiKey its
 * finalizer, key Secret, status and Event. The objects come from the operator's own desired-state
 * and status functions; the writes use the same verbs (server-side apply, POST); watches like the
 * operator's informers are open. The identity is the local administrator (system:masters: no RBAC
 * checks), so this is a lower bound.
 *
 * Writes bench/results/operator-write-floor.{json,md}. `make bench-operator` runs it after scale.ts,
 * with the same number of tenants (read from operator-scale.json), so the two compare.
 *
 *   node bench/operator/write-floor.ts [--tenants N (default: operator-scale.json's, else 1000)] [--inflight 32]
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import {
  API_VERSION, apiKeySecretName, FINALIZER, gatewayConfigSecretName, generateApiKey, keyEnvForTier, Labels, MANAGED_BY, tenantNamespace,
  type ApiKey, type Environment, type Tenant,
} from "@crosslogic/crds";
import { startControlPlane } from "@crosslogic/testenv";
import { KubeClient, resourcePath, type ResourceType } from "@crosslogic/kube/client";
import { Types } from "../../operator/src/kube/types.ts";
import { withAppliedHash } from "../../operator/src/kube/apply.ts";
import { eventBody } from "../../operator/src/kube/events.ts";
import { installCrds, kube } from "../../operator/test/support/cluster.ts";
import { desiredTenantChildren, desiredTenantRoles, desiredTenantViewer, ownerRef, type ChildObject } from "../../operator/src/controllers/tenant/desired.ts";
import { tenantStatus } from "../../operator/src/controllers/tenant/status.ts";
import { gatewayConfigSecret, keyEntries, renderGatewayConfig } from "../../operator/src/controllers/environment/desired.ts";
import { environmentStatus } from "../../operator/src/controllers/environment/status.ts";
import { apiKeyStatus } from "../../operator/src/controllers/api-key/decide.ts";
import { keySecretContent, readKeyMaterial, type SecretLike } from "../../operator/src/controllers/api-key/key-material.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const scalePath = path.join(root, "bench/results/operator-scale.json");
const scale = fs.existsSync(scalePath)
  ? (JSON.parse(fs.readFileSync(scalePath, "utf8")) as { date: string; scale: { tenants: number; allReadySeconds: number | null; operatorWrites: number; driverCreates: number } })
  : undefined;
const { values } = parseArgs({ options: { tenants: { type: "string", default: String(scale?.scale.tenants ?? 1000) }, inflight: { type: "string", default: "32" } } });
const T = Number(values.tenants);
const INFLIGHT = Number(values.inflight);
if (!(T > 0) || !(INFLIGHT > 0)) throw new Error("--tenants and --inflight must be positive numbers");
const ENVS = 3, KEYS = 10;
const SYSTEM = "crosslogic-system", CONFIG_NS = `${SYSTEM}-gateway-config`, FM = "crosslogic-operator";
const log = (m: string) => console.error(`[floor] ${new Date().toISOString().slice(11, 19)} ${m}`);
const cpuSeconds = (pid: number) => {
  const f = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
};

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-floor-"));
const cp = await startControlPlane({ dir });
try {
  await installCrds(kube(cp.kubeconfig, path.join(cp.binDir, "kubectl")));
  const api = await KubeClient.create({ kubeconfig: cp.kubeconfig, userAgent: "crosslogic-bench-floor" });
  for (const ns of [SYSTEM, CONFIG_NS]) await api.request({ method: "POST", path: "/api/v1/namespaces", body: { apiVersion: "v1", kind: "Namespace", metadata: { name: ns } } });

  // The operator's informers (and scale.ts's readiness watches): the API server sends each change to them.
  const watched: ResourceType[] = [Types.tenant, Types.environment, Types.apiKey, Types.tenant, Types.environment, Types.apiKey, Types.namespace, Types.namespace,
    Types.secret, Types.secret, Types.networkPolicy, Types.roleBinding, Types.clusterRole, Types.clusterRoleBinding];
  const watches = watched.map((t) => {
    const query = t === Types.secret || t === Types.namespace || t.group === "rbac.authorization.k8s.io" || t === Types.networkPolicy ? { labelSelector: `${Labels.managedBy}=${MANAGED_BY}` } : {};
    const w = api.watch(resourcePath(t), { watch: "true", allowWatchBookmarks: "true", ...query }, () => {}, 900_000);
    w.done.catch(() => {});
    return w;
  });

  let active = 0, writes = 0;
  const waiting: Array<() => void> = [];
  const limited = async <R>(fn: () => Promise<R>): Promise<R> => {
    if (active >= INFLIGHT) await new Promise<void>((r) => waiting.push(r));
    active++;
    try { writes++; return await fn(); } finally { active--; waiting.shift()?.(); }
  };
  const post = <R = KubeObj>(type: ResourceType, body: Record<string, unknown> & { metadata: { name: string; namespace?: string; [field: string]: unknown } }) =>
    limited(() => api.request<R>({ method: "POST", path: resourcePath(type, body.metadata.namespace), query: { fieldManager: FM }, body }));
  const apply = (type: ResourceType, obj: ChildObject) => limited(() => api.apply(type, withAppliedHash(obj) as never, FM));
  const finalizer = (type: ResourceType, o: KubeObj) => limited(() => api.apply(type, {
    apiVersion: `${type.group}/${type.version}`, kind: type.kind, metadata: { name: o.metadata.name, ...(o.metadata.namespace ? { namespace: o.metadata.namespace } : {}), finalizers: [FINALIZER] },
  } as never, FM));
  const status = (type: ResourceType, o: KubeObj, s: unknown) => limited(() => api.apply(type, {
    apiVersion: `${type.group}/${type.version}`, kind: type.kind, metadata: { name: o.metadata.name, ...(o.metadata.namespace ? { namespace: o.metadata.namespace } : {}) }, status: s,
  } as never, FM, "status"));
  const event = (o: KubeObj & { kind: string }, reason: string, message: string) =>
    post(Types.event, eventBody({ ...o, apiVersion: API_VERSION }, "Normal", reason, message, FM));

  for (const role of desiredTenantRoles()) await apply(Types.clusterRole, role);
  const tiers = ["production", "staging", "development"] as const;
  const now = () => new Date();

  const tenantWrites = async (t: number) => {
    const tenant = await post<Tenant & KubeObj>(Types.tenant, { apiVersion: API_VERSION, kind: "Tenant", metadata: { name: `t${t}` }, spec: { plan: "enterprise" } });
    const ns = tenantNamespace(tenant.metadata.name);
    const children = desiredTenantChildren(tenant);
    await Promise.all([finalizer(Types.tenant, tenant), apply(Types.namespace, children.namespace)]);
    const typeOf: Record<string, ResourceType> = { NetworkPolicy: Types.networkPolicy, RoleBinding: Types.roleBinding, ClusterRole: Types.clusterRole, ClusterRoleBinding: Types.clusterRoleBinding };
    const tenantSide = (async () => {
      await Promise.all([...children.namespaced, ...desiredTenantViewer(tenant)].map((c) => apply(typeOf[c.kind]!, c)));
      await status(Types.tenant, tenant, tenantStatus(tenant, { namespaceReady: true, rbacReady: true, networkPolicyReady: true }, now()));
      await event(tenant, "Created", `Created Namespace ${ns}, NetworkPolicy, RoleBindings, ClusterRole and ClusterRoleBinding`);
    })();
    const envs = await Promise.all(tiers.map(async (tier, e) => {
      const env = await post<Environment & KubeObj>(Types.environment, {
        apiVersion: API_VERSION, kind: "Environment", metadata: { name: `e${e}`, namespace: ns }, spec: { tier, routes: [{ model: "m", backend: { url: "http://127.0.0.1:9" } }] },
      });
      await finalizer(Types.environment, env);
      return env;
    }));
    const publish = async (env: Environment & KubeObj, keys: Array<{ apiKey: ApiKey; material: ReturnType<typeof readKeyMaterial> }>) => {
      const secret = gatewayConfigSecret(env, tenant.metadata.name, CONFIG_NS, renderGatewayConfig(env, tenant, keyEntries(env, tenant, keys, now())));
      await apply(Types.secret, secret);
      await status(Types.environment, env, environmentStatus(env, {
        tenantFound: true, tenantSuspended: false, certificate: undefined, missingServices: [], nodePools: [],
        gatewayConfig: { secretName: gatewayConfigSecretName(ns, env.metadata.name), secrets: 1, keys: keys.length },
      }, now()));
    };
    const firstConfigs = Promise.all(envs.map((env) => publish(env, [])));
    const keys = await Promise.all(Array.from({ length: KEYS }, async (_, i) => {
      const apiKey = await post<ApiKey & KubeObj>(Types.apiKey, { apiVersion: API_VERSION, kind: "ApiKey", metadata: { name: `k${i}`, namespace: ns }, spec: { environment: `e${i % ENVS}` } });
      await finalizer(Types.apiKey, apiKey);
      const content = keySecretContent(generateApiKey(keyEnvForTier(envs[i % ENVS]!.spec.tier)), { previous: [] });
      const meta = withAppliedHash({ apiVersion: "v1", kind: "Secret", metadata: {
        name: apiKeySecretName(apiKey.metadata.name), namespace: ns, ownerReferences: [ownerRef({ kind: "ApiKey", metadata: apiKey.metadata })],
        labels: { [Labels.managedBy]: MANAGED_BY, [Labels.tenant]: tenant.metadata.name, [Labels.environment]: apiKey.spec.environment, [Labels.apiKey]: apiKey.metadata.name },
      } } as ChildObject).metadata;
      const secret = await post<SecretLike>(Types.secret, {
        apiVersion: "v1", kind: "Secret", type: "Opaque", data: content.data,
        metadata: { ...meta, annotations: { ...meta.annotations, ...content.annotations } },
      });
      return { apiKey, material: readKeyMaterial(secret) };
    }));
    await firstConfigs;
    // The keys reach their Environment's config in two paced batches, then each key's status and Event.
    for (const half of [keys.slice(0, KEYS / 2), keys]) {
      await Promise.all(envs.map((env) => publish(env, half.filter((k) => k.apiKey.spec.environment === env.metadata.name))));
    }
    await Promise.all(keys.map(async ({ apiKey, material }) => {
      await status(Types.apiKey, apiKey, apiKeyStatus(apiKey, { environmentFound: true, secretName: apiKeySecretName(apiKey.metadata.name), material, published: true }, now()));
      await event(apiKey as ApiKey & KubeObj & { kind: string }, "Issued", `Issued key ${material.current!.prefix}…`);
    }));
    await tenantSide;
  };

  const pid = (name: string) => cp.processes.find((p) => p.name === name)!.pid;
  const cpu0 = { apiServer: cpuSeconds(pid("kube-apiserver")), etcd: cpuSeconds(pid("etcd")), driver: process.cpuUsage() };
  const t0 = performance.now();
  log(`${T} tenants: the writes of ${T} Tenants, ${T * ENVS} Environments and ${T * KEYS} ApiKeys, ${INFLIGHT} requests in flight`);
  let done = 0;
  await Promise.all(Array.from({ length: T }, (_, t) => tenantWrites(t).then(() => { if (++done % 100 === 0) log(`${done} tenants written`); })));
  const seconds = (performance.now() - t0) / 1000;
  const du = process.cpuUsage(cpu0.driver);
  const cpu = {
    apiServer: +(cpuSeconds(pid("kube-apiserver")) - cpu0.apiServer).toFixed(1),
    etcd: +(cpuSeconds(pid("etcd")) - cpu0.etcd).toFixed(1),
    driver: +((du.user + du.system) / 1e6).toFixed(1),
  };
  for (const w of watches) w.abort();

  const result = {
    date: new Date().toISOString(),
    host: { cpus: os.cpus().length, node: process.version, load: os.loadavg().map((l) => +l.toFixed(2)) },
    method: "No operator: a driver with no logic issues, per tenant, the writes the operator and scale.ts's driver make (objects from the operator's desired-state and status functions, same verbs), with watches open like the operator's informers, as the local administrator (no RBAC checks), at most `inflight` requests at a time. A lower bound for scale.ts's time to Ready on this machine.",
    tenants: T, inflight: INFLIGHT, writes, writesPerTenant: +(writes / T).toFixed(1), seconds: +seconds.toFixed(1),
    cpuSeconds: cpu, apiServerCores: +(cpu.apiServer / seconds).toFixed(2), apiServerMsPerWrite: +((cpu.apiServer / writes) * 1000).toFixed(2),
    etcdMsPerWrite: +((cpu.etcd / writes) * 1000).toFixed(2),
    /** The time these writes would take if kube-apiserver and etcd had both cores and nothing else ran. */
    twoCoreFloorSeconds: +((cpu.apiServer + cpu.etcd) / 2).toFixed(1),
    target: { seconds: 120 },
    ...(scale && scale.scale.tenants === T ? { operatorRun: { date: scale.date, allReadySeconds: scale.scale.allReadySeconds, writesPerTenant: +((scale.scale.operatorWrites + scale.scale.driverCreates) / T).toFixed(1) } } : {}),
  };
  log(JSON.stringify(result));
  fs.mkdirSync(path.join(root, "bench/results"), { recursive: true });
  fs.writeFileSync(path.join(root, "bench/results/operator-write-floor.json"), `${JSON.stringify(result, null, 2)}\n`);
  fs.writeFileSync(path.join(root, "bench/results/operator-write-floor.md"), [
    `# Control-plane write floor (${result.date})`, "",
    `The writes of ${T} Tenants / ${T * ENVS} Environments / ${T * KEYS} ApiKeys (${result.writesPerTenant} per tenant, as in scale.ts), issued by a driver with no logic, no operator running, as system:masters (no RBAC checks), ${INFLIGHT} requests in flight, on this 2-core machine.`, "",
    "| figure | value |", "|---|---|",
    `| all writes done | ${result.seconds} s (target for Ready with the operator: ≤ 120 s) |`,
    `| CPU seconds | kube-apiserver ${cpu.apiServer}, etcd ${cpu.etcd}, driver ${cpu.driver} |`,
    `| per write | kube-apiserver ${result.apiServerMsPerWrite} ms, etcd ${result.etcdMsPerWrite} ms of CPU |`,
    `| kube-apiserver + etcd CPU / 2 cores | ${result.twoCoreFloorSeconds} s: the time if they had the whole machine |`,
    ...(result.operatorRun ? [`| the operator's run (scale.ts, ${result.operatorRun.date}) | ${result.operatorRun.allReadySeconds} s to Ready${result.operatorRun.allReadySeconds ? ` (${(result.operatorRun.allReadySeconds / result.seconds).toFixed(2)}× this floor)` : ""}, ${result.operatorRun.writesPerTenant} writes per tenant |`] : []),
    "",
  ].join("\n"));
} finally {
  await cp.stop();
}

type KubeObj = { metadata: { name: string; namespace?: string; uid?: string; resourceVersion?: string; generation?: number; annotations?: Record<string, string> } };

/**
 * The control-plane figures of TARGETS.md on the local API server, with the operator and the gateway
 * running as users run them (`node operator/src/main.ts`, `node gateway/src/main.ts`):
 *   - T Tenants / 3·T Environments / 10·T ApiKeys (default T = 1,000) created concurrently through
 *     the API (bounded pool), and the time until every one of them is Ready (target ≤ 120 s);
 *   - ApiKey created → usable at the gateway, revoked → refused, tenant suspended → refused (p50/p99);
 *   - writes to the API server in steady state (target 0);
 *   - the operator's memory.
 * Writes bench/results/operator-scale.{json,md} (operator-scale-admin.* with --identity admin).
 *
 *   node bench/operator/scale.ts [--tenants 1000] [--concurrency 24] [--timeout 900] [--samples 40] [--quiet 65] [--identity chart|admin] [--workers N]
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import winston from "winston";
import { API_VERSION, type ApiKey, type Environment, type Tenant } from "@crosslogic/crds";
import { freePort, startControlPlane, startRedis } from "@crosslogic/testenv";
import { startProcess, waitUntilReady, type ManagedProcess } from "@crosslogic/testenv/process";
import { ApiError, KubeClient, resourcePath } from "@crosslogic/kube/client";
import { Informer, type KubeObject } from "@crosslogic/kube/informer";
import { Types } from "../../operator/src/kube/types.ts";
import { installCrds, kube, startOperatorProcess, type OperatorProcess } from "../../operator/test/support/cluster.ts";
import { chartIdentity } from "../../charts/test/service-account.ts";
import { GATEWAY_NODE_ARGS } from "../../gateway/src/node-args.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const arg = (name: string, d: number) => {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : d;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number`);
  return v;
};
const T = arg("tenants", 1000);
const ENVS_PER_TENANT = 3;
const KEYS_PER_TENANT = 10;
const CONCURRENCY = arg("concurrency", 24);
const TIMEOUT_S = arg("timeout", 900);
const SAMPLES = arg("samples", 40);
const SUSPEND_SAMPLES = Math.min(10, T);
const QUIET_S = arg("quiet", 65);
const IDENTITY = process.argv.includes("--identity") ? process.argv[process.argv.indexOf("--identity") + 1] : "chart";
if (IDENTITY !== "chart" && IDENTITY !== "admin") throw new Error("--identity must be chart or admin");
/** Where the results go: the comparison run without RBAC keeps its own files. */
const OUT = IDENTITY === "admin" ? "operator-scale-admin" : "operator-scale";
/** The operator's workers per controller (its WORKERS setting; the chart's default when not given). */
const WORKERS = process.argv.includes("--workers") ? arg("workers", 0) : undefined;
const RESYNC_S = 30;
const SYSTEM = "crosslogic-system";
/** The gateway-config Secrets' own namespace, as the chart sets it (GATEWAY_CONFIG_NAMESPACE). */
const CONFIG_NS = `${SYSTEM}-gateway-config`;
const log = (msg: string) => console.error(`[scale] ${new Date().toISOString().slice(11, 19)} ${msg}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const pct = (xs: number[], p: number) => {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return +s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!.toFixed(1);
};
const summary = (xs: number[]) => ({ samples: xs.length, p50Ms: pct(xs, 50), p99Ms: pct(xs, 99), maxMs: xs.length ? +Math.max(...xs).toFixed(1) : null });

/** CPU seconds (user + system) a process has used so far, from /proc (Linux; clock ticks of 1/100 s). */
const cpuSeconds = (pid: number | undefined): number => {
  if (pid === undefined) return NaN;
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
};

/** At most `n` calls of `fn` in flight. */
function limiter(n: number) {
  let active = 0;
  const waiting: Array<() => void> = [];
  return async <R>(fn: () => Promise<R>): Promise<R> => {
    if (active >= n) await new Promise<void>((r) => waiting.push(r));
    active++;
    try { return await fn(); } finally { active--; waiting.shift()?.(); }
  };
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-scale-"));
const logDir = path.join(dir, "logs");
fs.mkdirSync(logDir);
log(`starting the local control plane and Redis in ${dir}`);
const cp = await startControlPlane({ dir: path.join(dir, "cp") });
const redis = await startRedis({ logDir, dir: path.join(dir, "redis") });
const k = kube(cp.kubeconfig, path.join(cp.binDir, "kubectl"));
let op: OperatorProcess | undefined;
let gateway: ManagedProcess | undefined;
const informers: Array<Informer<KubeObject>> = [];
let client: KubeClient | undefined;

try {
  await installCrds(k);
  await k.ok(["create", "namespace", SYSTEM]);
  await k.ok(["create", "namespace", CONFIG_NS]);
  // By default the operator and the gateway run as the chart's ServiceAccounts under its RBAC, with
  // tokens, as in a cluster: the API server authorizes each request against the bindings (which grow
  // with one viewer ClusterRoleBinding per Tenant) and checks the operator's RBAC writes for
  // escalation (cheap for the member RoleBindings, which the chart lets it `bind`; a listing of
  // every binding for each Tenant's viewer ClusterRole and its binding). `--identity admin` runs them
  // as the local administrator (system:masters, which skips both) for comparison.
  const asChart = IDENTITY === "chart";
  const operatorKubeconfig = asChart ? (await chartIdentity(k, cp.kubeconfig, { component: "operator", namespace: SYSTEM, release: "crosslogic", dir })).kubeconfig : cp.kubeconfig;
  const gatewayKubeconfig = asChart ? (await chartIdentity(k, cp.kubeconfig, { component: "gateway", namespace: SYSTEM, release: "crosslogic", dir })).kubeconfig : cp.kubeconfig;
  client = await KubeClient.create({ kubeconfig: cp.kubeconfig, userAgent: "crosslogic-bench" });
  const api = client;
  const quiet = winston.createLogger({ level: "error", transports: [new winston.transports.Console({ silent: true })] });

  // Ready times, recorded from watches (no polling lists of 10,000 objects).
  const readyAt = { Tenant: new Map<string, number>(), Environment: new Map<string, number>(), ApiKey: new Map<string, number>() };
  const isReady = (o: { status?: { conditions?: Array<{ type: string; status: string }> } }) => o.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
  for (const [type, map] of [[Types.tenant, readyAt.Tenant], [Types.environment, readyAt.Environment], [Types.apiKey, readyAt.ApiKey]] as const) {
    const inf = new Informer<KubeObject>(api, type, quiet, { watchTimeoutSeconds: 600 });
    inf.on((ev) => {
      const key = `${ev.obj.metadata.namespace ?? ""}/${ev.obj.metadata.name}`;
      if (ev.type !== "delete" && !map.has(key) && isReady(ev.obj as never)) map.set(key, performance.now());
    });
    inf.start();
    informers.push(inf);
  }
  // Tenant namespaces, so Environments and ApiKeys are created once their namespace exists.
  const namespaces = new Informer<KubeObject>(api, Types.namespace, quiet, { watchTimeoutSeconds: 600, labelSelector: "app.kubernetes.io/managed-by=crosslogic-operator" });
  informers.push(namespaces);
  namespaces.start();
  await Promise.all(informers.map((i) => i.waitForSync()));

  op = await startOperatorProcess({ KUBECONFIG: operatorKubeconfig, SYSTEM_NAMESPACE: SYSTEM, GATEWAY_CONFIG_NAMESPACE: CONFIG_NS, REDIS_URL: redis.url, LOG_LEVEL: "warn", LEADER_ELECTION: "false", RESYNC_SECONDS: String(RESYNC_S), ...(WORKERS ? { WORKERS: String(WORKERS) } : {}) });
  const operator = op;
  const metricsText = async () => (await fetch(`http://127.0.0.1:${operator.port}/metrics`)).text();
  const metricSum = (text: string, name: string, filter: (labels: string) => boolean = () => true) =>
    text.split("\n").filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `)).filter((l) => filter(l.slice(name.length)))
      .reduce((s, l) => s + Number(l.split(" ").at(-1)), 0);
  const operatorWrites = (text: string) => metricSum(text, "crosslogic_operator_api_requests_total", (l) => !/verb="(GET|WATCH)"/.test(l));
  const memory = (text: string) => ({
    rssMB: +(metricSum(text, "crosslogic_operator_process_resident_memory_bytes") / 2 ** 20).toFixed(1),
    heapUsedMB: +(metricSum(text, "crosslogic_operator_nodejs_heap_size_used_bytes") / 2 ** 20).toFixed(1),
  });

  // ---- Scale: create everything through the API with a bounded pool -------------------------------
  const limit = limiter(CONCURRENCY);
  let retries = 0;
  /** POST with retries: 404 while the tenant namespace does not exist yet, 429/5xx/network errors. */
  const create = (type: typeof Types.tenant | typeof Types.environment | typeof Types.apiKey, body: { metadata: { name: string; namespace?: string } }) => limit(async () => {
    for (let attempt = 1; ; attempt++) {
      try {
        await api.request({ method: "POST", path: resourcePath(type, body.metadata.namespace), body: { apiVersion: API_VERSION, kind: type.kind, ...body } });
        return;
      } catch (err) {
        if (err instanceof ApiError && err.status === 409) return;
        const transient = !(err instanceof ApiError) || err.status === 404 || err.status === 429 || err.status >= 500;
        if (!transient || attempt >= 600) throw err;
        retries++;
        await sleep(Math.min(1000, 50 * attempt));
      }
    }
  });
  const tiers = ["production", "staging", "development"] as const;
  const createTenant = async (t: number) => {
    const name = `t${t}`;
    const ns = `tenant-${name}`;
    await create(Types.tenant, { metadata: { name }, spec: { plan: "enterprise" } } as Tenant);
    for (let i = 0; i < 6000 && !namespaces.get(ns); i++) await sleep(50);
    await Promise.all(tiers.map((tier, e) => create(Types.environment, {
      metadata: { name: `e${e}`, namespace: ns }, spec: { tier, routes: [{ model: "m", backend: { url: "http://127.0.0.1:9" } }] },
    } as Environment)));
    await Promise.all(Array.from({ length: KEYS_PER_TENANT }, (_, i) => create(Types.apiKey, {
      metadata: { name: `k${i}`, namespace: ns }, spec: { environment: `e${i % ENVS_PER_TENANT}` },
    } as ApiKey)));
  };
  log(`creating ${T} Tenants, ${T * ENVS_PER_TENANT} Environments, ${T * KEYS_PER_TENANT} ApiKeys (${CONCURRENCY} requests in flight at most)`);
  // Where the machine's CPU goes during the scale phase (the processes share two cores).
  const cpuOf = () => ({
    apiServer: cpuSeconds(cp.processes.find((p) => p.name === "kube-apiserver")?.pid),
    etcd: cpuSeconds(cp.processes.find((p) => p.name === "etcd")?.pid),
    operator: cpuSeconds(operator.child.pid),
    driver: process.cpuUsage().user / 1e6 + process.cpuUsage().system / 1e6,
  });
  const cpu0 = cpuOf();
  const t0 = performance.now();
  const tenantPool = limiter(Math.max(4, Math.ceil(CONCURRENCY / 2)));
  let createdAt: number | undefined;
  const creation = Promise.all(Array.from({ length: T }, (_, t) => tenantPool(() => createTenant(t)))).then(() => { createdAt = performance.now(); });
  const want = { Tenant: T, Environment: T * ENVS_PER_TENANT, ApiKey: T * KEYS_PER_TENANT };
  const counts = () => ({ Tenant: readyAt.Tenant.size, Environment: readyAt.Environment.size, ApiKey: readyAt.ApiKey.size });
  const progress: Array<{ s: number; tenants: number; environments: number; apiKeys: number; rssMB: number }> = [];
  let timedOut = false;
  for (let tick = 0; ; tick++) {
    const c = counts();
    if (c.Tenant >= want.Tenant && c.Environment >= want.Environment && c.ApiKey >= want.ApiKey && createdAt !== undefined) break;
    if (performance.now() - t0 > TIMEOUT_S * 1000) { timedOut = true; break; }
    if (tick % 10 === 0) {
      const s = +((performance.now() - t0) / 1000).toFixed(0);
      const mem = memory(await metricsText());
      progress.push({ s, tenants: c.Tenant, environments: c.Environment, apiKeys: c.ApiKey, rssMB: mem.rssMB });
      log(`${s} s: Ready ${c.Tenant}/${want.Tenant} tenants, ${c.Environment}/${want.Environment} environments, ${c.ApiKey}/${want.ApiKey} keys; operator RSS ${mem.rssMB} MB`);
    }
    await sleep(500);
  }
  await creation.catch((err: Error) => log(`creation failed: ${err.message}`));
  /** The operator's writes by controller, kind and operation (where the API server's time goes). */
  const writesBy = (text: string) => Object.fromEntries(text.split("\n").filter((l) => l.startsWith("crosslogic_operator_writes_total{"))
    .map((l) => [l.slice(l.indexOf("{") + 1, l.indexOf("}")).replace(/"/g, ""), Number(l.split(" ").at(-1))] as const).sort((a, b) => b[1] - a[1]));
  const cpu1 = cpuOf();
  const lastReady = Math.max(...[...readyAt.Tenant.values(), ...readyAt.Environment.values(), ...readyAt.ApiKey.values()]);
  const scale = {
    tenants: T, environments: want.Environment, apiKeys: want.ApiKey,
    allReady: !timedOut,
    readyAtEnd: counts(),
    createAllSeconds: createdAt === undefined ? null : +((createdAt - t0) / 1000).toFixed(1),
    allReadySeconds: timedOut ? null : +((lastReady - t0) / 1000).toFixed(1),
    timeoutSeconds: TIMEOUT_S,
    createRetries: retries,
    operatorMemoryAtReady: memory(await metricsText()),
    operatorWritesByKind: writesBy(await metricsText()),
    operatorWrites: operatorWrites(await metricsText()),
    driverCreates: T * (1 + ENVS_PER_TENANT + KEYS_PER_TENANT),
    cpuSecondsDuringScale: Object.fromEntries(Object.entries(cpu1).map(([k, v]) => [k, +(v - cpu0[k as keyof typeof cpu0]).toFixed(1)])),
    progress,
  };
  log(`scale phase: ${JSON.stringify({ ...scale, progress: undefined })}`);

  // ---- Steady state: nothing changes; count the operator's writes over two resync periods -------
  log("waiting for the operator to go quiet");
  let prev = operatorWrites(await metricsText());
  let quietReached = false;
  for (let i = 0; i < 60 && !quietReached; i++) {
    await sleep(5000);
    const now = operatorWrites(await metricsText());
    quietReached = now === prev;
    prev = now;
  }
  log(`counting writes for ${QUIET_S} s (resync every ${RESYNC_S} s)`);
  const before = await metricsText();
  const reconcilesBefore = metricSum(before, "crosslogic_operator_reconcile_total");
  await sleep(QUIET_S * 1000);
  const afterText = await metricsText();
  const steady = {
    seconds: QUIET_S, resyncSeconds: RESYNC_S, quietReachedWithin5Minutes: quietReached,
    writes: operatorWrites(afterText) - operatorWrites(before),
    reconciles: metricSum(afterText, "crosslogic_operator_reconcile_total") - reconcilesBefore,
    operatorMemory: memory(afterText),
  };
  log(`steady state: ${JSON.stringify(steady)}`);

  // ---- Latencies at the gateway -----------------------------------------------------------------
  log("starting the gateway");
  const [port, adminPort] = [await freePort(), await freePort()];
  const adminToken = "bench-admin-token-0123456789abcdef0123";
  gateway = startProcess({
    name: "gateway", command: process.execPath, args: [...GATEWAY_NODE_ARGS, path.join(root, "gateway/src/main.ts")], logFile: path.join(logDir, "gateway.log"),
    env: {
      PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/", LOG_LEVEL: "warn", HOST: "127.0.0.1", PORT: String(port), ADMIN_HOST: "127.0.0.1",
      ADMIN_PORT: String(adminPort), ADMIN_TOKEN: adminToken, REDIS_URL: redis.url, CONFIG_SOURCE: "kubernetes", SYSTEM_NAMESPACE: SYSTEM, GATEWAY_CONFIG_NAMESPACE: CONFIG_NS, KUBECONFIG: gatewayKubeconfig,
      // The bench polls with keys not yet issued or just revoked: no graduated response against it.
      VIOLATION_DELAY_AFTER: "100000000", VIOLATION_BLOCK_AFTER: "100000000",
    },
  });
  const gw = gateway;
  const gwStart = performance.now();
  await waitUntilReady(gw, async () => (await fetch(`http://127.0.0.1:${adminPort}/readyz`, { signal: AbortSignal.timeout(2000) })).ok, 300_000);
  const gatewayReadySeconds = +((performance.now() - gwStart) / 1000).toFixed(1);
  const gwStatus = async (key: string) => {
    const res = await fetch(`http://127.0.0.1:${port}/v1/models`, { headers: { authorization: `Bearer ${key}` }, signal: AbortSignal.timeout(5000) });
    await res.body?.cancel();
    return res.status;
  };
  const until = async (what: string, fn: () => Promise<boolean>, intervalMs: number, timeoutMs = 30_000) => {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      if (await fn().catch(() => false)) return performance.now();
      if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(intervalMs);
    }
  };
  const secretKey = async (ns: string, name: string) => {
    const s = await api.request<{ data?: { key?: string } }>({ method: "GET", path: resourcePath(Types.secret, ns, `apikey-${name}`) });
    return s.data?.key ? Buffer.from(s.data.key, "base64").toString("utf8") : undefined;
  };
  const usable: number[] = [];
  const revoked: number[] = [];
  const suspended: number[] = [];
  const failures: string[] = [];
  log(`measuring ${SAMPLES} create → usable and revoke → refused samples`);
  for (let i = 0; i < SAMPLES; i++) {
    const ns = `tenant-t${(i * 7) % T}`;
    const name = `lat${i}`;
    try {
      const start = performance.now();
      await api.request({ method: "POST", path: resourcePath(Types.apiKey, ns), body: { apiVersion: API_VERSION, kind: "ApiKey", metadata: { name, namespace: ns }, spec: { environment: "e0" } } });
      let key: string | undefined;
      await until("the key Secret", async () => (key = await secretKey(ns, name)) !== undefined, 20);
      usable.push((await until("the key accepted", async () => (await gwStatus(key!)) === 200, 10)) - start);
      const r0 = performance.now();
      await api.request({ method: "PATCH", path: resourcePath(Types.apiKey, ns, name), contentType: "application/merge-patch+json", body: { spec: { revoked: true } } });
      revoked.push((await until("the key refused", async () => [401, 403].includes(await gwStatus(key!)), 5)) - r0);
    } catch (err) {
      failures.push(`${ns}/${name}: ${(err as Error).message}`);
    }
  }
  log(`measuring ${SUSPEND_SAMPLES} tenant suspended → refused samples`);
  for (let i = 0; i < SUSPEND_SAMPLES; i++) {
    const tenant = `t${T - 1 - i}`;
    try {
      const key = await secretKey(`tenant-${tenant}`, "k0");
      if (!key || (await gwStatus(key)) !== 200) throw new Error("key k0 not usable before suspension");
      const s0 = performance.now();
      await api.request({ method: "PATCH", path: resourcePath(Types.tenant, undefined, tenant), contentType: "application/merge-patch+json", body: { spec: { suspended: true } } });
      suspended.push((await until("the tenant refused", async () => [401, 403].includes(await gwStatus(key)), 5)) - s0);
    } catch (err) {
      failures.push(`${tenant}: ${(err as Error).message}`);
    }
  }
  const finalText = await metricsText();
  const result = {
    benchmark: "operator-scale",
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, node: process.version, loadavgAtEnd: os.loadavg().map((l) => +l.toFixed(2)) },
    setup: {
      identity: IDENTITY, concurrency: CONCURRENCY, keysPerTenant: KEYS_PER_TENANT, environmentsPerTenant: ENVS_PER_TENANT, operatorWorkersPerController: WORKERS ?? "the operator's default",
      note: `Local kube-apiserver + etcd, the operator, Redis, the gateway and this driver share the machine. Identity ${IDENTITY}: 'chart' = the operator and the gateway authenticate as the Helm chart's ServiceAccounts (TokenRequest tokens) under the chart's RBAC, as in a cluster; 'admin' = as system:masters (no RBAC evaluation). Objects are created through the API (POST) by a bounded pool; Ready times come from watches. Per tenant: the Tenant, then (once its namespace is seen on a watch) its 3 Environments and 10 ApiKeys; Ready when all are. The gateway starts after the scale phase and loads every environment's config. Latency samples run one at a time after the scale phase, with the system at rest (all objects loaded, nothing else changing); p99 of 40 samples is close to the maximum. Latencies during the creation churn are not measured.`,
    },
    targets: { allReadySeconds: 120, createToUsableP99Ms: 2000, revokeToRefusedP99Ms: 1000, steadyStateWrites: 0 },
    scale,
    steadyState: steady,
    gateway: {
      readySecondsWithAllConfigs: gatewayReadySeconds,
      createToUsable: summary(usable),
      revokeToRefused: summary(revoked),
      suspendToRefused: summary(suspended),
      failures,
    },
    operatorMemoryAtEnd: memory(finalText),
    operatorWritesTotal: operatorWrites(finalText),
  };
  fs.mkdirSync(path.join(root, "bench/results"), { recursive: true });
  fs.writeFileSync(path.join(root, `bench/results/${OUT}.json`), `${JSON.stringify(result, null, 2)}\n`);
  fs.writeFileSync(path.join(root, `bench/results/${OUT}.md`), markdown(result));
  console.log(JSON.stringify({ ...result, scale: { ...result.scale, progress: `${result.scale.progress.length} points` } }, null, 2));
} finally {
  for (const i of informers) await i.stop();
  client?.close();
  await gateway?.stop(10_000).catch(() => {});
  await op?.stop();
  await redis.stop();
  await cp.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}

/** The short summary next to the JSON: each figure of TARGETS.md with its target. */
function markdown(r: {
  date: string; setup: { identity: string };
  scale: { tenants: number; environments: number; apiKeys: number; allReadySeconds: number | null; operatorWrites: number; driverCreates: number; cpuSecondsDuringScale: Record<string, number>; operatorWritesByKind: Record<string, number> };
  steadyState: { writes: number; seconds: number };
  gateway: Record<"createToUsable" | "revokeToRefused" | "suspendToRefused", { p50Ms: number | null; p99Ms: number | null; samples: number }>;
}): string {
  const s = r.scale;
  const ok = (pass: boolean) => (pass ? "✓" : "✗");
  const lat = (x: { p50Ms: number | null; p99Ms: number | null; samples: number }) => `p50 ${x.p50Ms} ms, p99 ${x.p99Ms} ms (${x.samples} samples)`;
  const writes = s.operatorWrites + s.driverCreates;
  const cpu = s.cpuSecondsDuringScale;
  return [
    `# Control-plane benchmark (${r.date})`,
    "",
    `Local kube-apiserver + etcd, the operator (${r.setup.identity === "chart" ? "as the chart's ServiceAccount, under the chart's RBAC" : "as system:masters: no RBAC checks, for comparison"}), Redis, the gateway and the driver on one 2-core machine.`,
    "",
    "| figure | measured | target |",
    "|---|---|---|",
    `| ${s.tenants} Tenants / ${s.environments} Environments / ${s.apiKeys} ApiKeys to Ready | ${s.allReadySeconds ?? "timed out"} s | ≤ 120 s ${ok(s.allReadySeconds !== null && s.allReadySeconds <= 120)} |`,
    `| ApiKey created → usable at the gateway | ${lat(r.gateway.createToUsable)} | p99 ≤ 2 s ${ok((r.gateway.createToUsable.p99Ms ?? Infinity) <= 2000)} |`,
    `| ApiKey revoked → refused | ${lat(r.gateway.revokeToRefused)} | p99 ≤ 1 s ${ok((r.gateway.revokeToRefused.p99Ms ?? Infinity) <= 1000)} |`,
    `| Tenant suspended → refused | ${lat(r.gateway.suspendToRefused)} | p99 ≤ 1 s ${ok((r.gateway.suspendToRefused.p99Ms ?? Infinity) <= 1000)} |`,
    `| writes in steady state (${r.steadyState.seconds} s) | ${r.steadyState.writes} | 0 ${ok(r.steadyState.writes === 0)} |`,
    "",
    `Writes to the API server during the scale phase: ${writes} (${(writes / s.tenants).toFixed(1)} per tenant: ${s.driverCreates / s.tenants} creates by the driver, ${(s.operatorWrites / s.tenants).toFixed(1)} by the operator).`,
    `CPU seconds during it: kube-apiserver ${cpu.apiServer}, etcd ${cpu.etcd}, operator ${cpu.operator}, driver ${cpu.driver}` +
      (s.allReadySeconds ? ` (the API server used ${(cpu.apiServer! / s.allReadySeconds).toFixed(2)} of the 2 cores; ${((cpu.apiServer! * 1000) / writes).toFixed(1)} ms of its CPU per write).` : "."),
    "",
    "| operator writes by controller, kind and operation | count |",
    "|---|---|",
    ...Object.entries(s.operatorWritesByKind).map(([k, v]) => `| ${k} | ${v} |`),
    "",
  ].join("\n");
}

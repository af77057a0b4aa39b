/**
 * Wires the operator: API client, health/metrics server, leader election, informers, the mapping
 * from watched objects to the keys of the primary objects that own them, the three controllers,
 * node-pool auditing, periodic resync and graceful shutdown.
 */
import type http from "node:http";
import type { Logger } from "winston";
import {
  ConditionTypes, Labels, MANAGED_BY, OPERATOR_LEASE_NAME, tenantNamespace, type ApiKey, type Environment, type Tenant,
} from "@crosslogic/crds";
import type { Config } from "./config.ts";
import { startHttpServer } from "./http.ts";
import { createAuditLog, createLogger, type AuditSink } from "./log.ts";
import { createMetrics, type Metrics } from "./metrics.ts";
import { createRevocationPublisher } from "./revocation.ts";
import { createAuditPersister, type AuditPersister } from "./persistence/audit-persister.ts";
import { createNotifier, noNotifier, type Notifier } from "./persistence/notifications.ts";
import { KubeClient } from "@crosslogic/kube/client";
import { createEventRecorder } from "./kube/events.ts";
import { Informer, objectKey, type InformerEvent, type KubeObject } from "@crosslogic/kube/informer";
import { LeaderElector } from "./kube/leader.ts";
import { Types } from "./kube/types.ts";
import { WorkQueue } from "./kube/workqueue.ts";
import { KeyAnnotations, type SecretLike } from "./controllers/api-key/key-material.ts";
import { publishedByEnvironment } from "./controllers/environment/shards.ts";
import { apiKeyController } from "./controllers/api-key/controller.ts";
import { environmentController } from "./controllers/environment/controller.ts";
import { nodeAuditEvents, type NodeLike } from "./controllers/node-pools.ts";
import { tenantController } from "./controllers/tenant/controller.ts";
import { Controller, PublishPacer, type Context, type Informers, type Obj, type Queues } from "./controllers/runtime.ts";

export interface Operator {
  readonly port: number;
  readonly metrics: Metrics;
  leading(): boolean;
  /** Stops controllers and informers, releases the Lease, closes the server. Idempotent. */
  stop(): Promise<void>;
  /** Resolves when the operator stopped by itself (lost leadership); the process should exit then. */
  readonly stopped: Promise<string>;
}

export interface OperatorDeps {
  logger?: Logger;
  audit?: AuditSink;
  now?: () => Date;
}

export async function startOperator(config: Readonly<Config>, deps: OperatorDeps = {}): Promise<Operator> {
  const log = deps.logger ?? createLogger(config.logLevel);
  const metrics = createMetrics();
  const now = deps.now ?? (() => new Date());
  const data = config.databaseUrl ? await openDatabase(config, config.databaseUrl, log, metrics, now) : undefined;
  const audit = deps.audit ?? createAuditLog(data ? (e) => { data.persister.push(e); metrics.auditPending.set(data.persister.pending()); } : undefined);
  const client = await KubeClient.create({ kubeconfig: config.kubeconfig, userAgent: `crosslogic-operator/${config.identity}`, metrics });
  const revocation = createRevocationPublisher(config.redisUrl, (m) => metrics.revocationsPublished.inc({ type: m.type }));
  const events = createEventRecorder(client, "crosslogic-operator", log, () => metrics.writes.inc({ controller: "events", kind: "Event", op: "create" }));

  let informers: Informers | undefined;
  let controllers: Controller[] = [];
  let resyncTimer: NodeJS.Timeout | undefined;
  let running = false;
  let synced = false;
  let resolveStopped!: (reason: string) => void;
  const stopped = new Promise<string>((r) => { resolveStopped = r; });

  const elector = config.leaderElection
    ? new LeaderElector(client, { namespace: config.systemNamespace, name: OPERATOR_LEASE_NAME, identity: config.identity, leaseDurationMs: config.leaseDurationSeconds * 1000, renewDeadlineMs: config.leaseDurationSeconds * 1000 * 2 / 3, retryPeriodMs: Math.max(500, config.leaseDurationSeconds * 1000 / 7) }, log)
    : undefined;

  const server: http.Server = await startHttpServer(config.httpPort, config.httpHost, metrics, {
    healthy: () => ({ ok: true, detail: running ? "running" : "standing by" }),
    ready: () => (!running ? { ok: !!elector, detail: "standing by for the leader Lease" } : synced ? { ok: true, detail: "caches synced" } : { ok: false, detail: "caches syncing" }),
  });
  const port = (server.address() as { port: number }).port;

  async function startControllers(): Promise<void> {
    running = true;
    metrics.leader.set(1);
    const mk = <T extends KubeObject>(type: (typeof Types)[keyof typeof Types], opts: { labelSelector?: string; optional?: boolean } = {}) =>
      new Informer<T>(client, type, log, { ...opts, watchTimeoutSeconds: config.watchTimeoutSeconds }, metrics);
    const managed = `${Labels.managedBy}=${MANAGED_BY}`;
    const inf: Informers = {
      tenants: mk<Tenant & KubeObject>(Types.tenant),
      environments: mk<Environment & KubeObject>(Types.environment),
      apiKeys: mk<ApiKey & KubeObject>(Types.apiKey),
      namespaces: mk<Obj>(Types.namespace, { labelSelector: managed }),
      networkPolicies: mk<Obj>(Types.networkPolicy, { labelSelector: managed }),
      roles: mk<Obj>(Types.role, { labelSelector: managed }),
      roleBindings: mk<Obj>(Types.roleBinding, { labelSelector: managed }),
      clusterRoles: mk<Obj>(Types.clusterRole, { labelSelector: managed }),
      clusterRoleBindings: mk<Obj>(Types.clusterRoleBinding, { labelSelector: managed }),
      certificates: mk<Obj>(Types.certificate, { labelSelector: managed, optional: true }),
      secrets: mk<Obj>(Types.secret, { labelSelector: managed }),
      services: mk<Obj>(Types.service),
      nodes: mk<Obj>(Types.node, { labelSelector: Labels.nodePool }),
    };
    informers = inf;
    const depth = (name: string) => (d: number) => metrics.queueDepth.set({ controller: name }, d);
    const queues: Queues = { tenant: new WorkQueue({ onDepth: depth("tenant") }), environment: new WorkQueue({ onDepth: depth("environment") }), apiKey: new WorkQueue({ onDepth: depth("apikey") }) };
    const ctx: Context = { client, config, log, metrics, events, audit, revocation, informers: inf, queues, statusMemory: new Map(), publishPacer: new PublishPacer(PUBLISH_WINDOW_MS), now, notifier: data?.notifier ?? noNotifier };
    wireEventHandlers(inf, queues, config, audit, () => synced, ctx.statusMemory, ctx.publishPacer);

    for (const i of Object.values(inf)) i.start();
    await Promise.all(Object.values(inf).map((i) => i.waitForSync()));
    if (!running) return;
    synced = true;
    log.info("Caches synced; starting controllers", { tenants: inf.tenants.list().length, environments: inf.environments.list().length, apiKeys: inf.apiKeys.list().length });
    controllers = [
      new Controller("tenant", queues.tenant, tenantController(ctx), log, metrics),
      new Controller("environment", queues.environment, environmentController(ctx), log, metrics),
      new Controller("apikey", queues.apiKey, apiKeyController(ctx), log, metrics),
    ];
    // Every object gets a pass now and each resync period, behind any change that comes in meanwhile
    // (low priority): with 10,000 keys a resync must not hold a new key's publication for seconds.
    const resyncAll = () => {
      for (const t of inf.tenants.list()) queues.tenant.add(objectKey(t), true);
      for (const e of inf.environments.list()) queues.environment.add(objectKey(e), true);
      for (const k of inf.apiKeys.list()) queues.apiKey.add(objectKey(k), true);
    };
    // What the initial listing queued is that same first pass.
    for (const q of Object.values(queues)) q.demoteAll();
    resyncAll();
    for (const c of controllers) c.start(config.workers);
    resyncTimer = setInterval(resyncAll, config.resyncSeconds * 1000);
    resyncTimer.unref();
  }

  async function stopControllers(): Promise<void> {
    running = false;
    metrics.leader.set(0);
    if (resyncTimer) clearInterval(resyncTimer);
    await Promise.all(controllers.map((c) => c.stop()));
    await Promise.all(Object.values(informers ?? {}).map((i: Informer<KubeObject>) => i.stop()));
  }

  let stopping: Promise<void> | undefined;
  const stop = (reason = "stopped") => (stopping ??= (async () => {
    log.info("Operator stopping", { reason });
    await elector?.stop();
    await stopControllers();
    await revocation.close();
    if (data) {
      // Everything audited until now reaches the database (bounded: the shutdown deadline is 25 s).
      const left = await data.persister.close(10_000);
      if (left > 0) log.error("Audit events not written to the database before shutdown (their log lines were written)", { events: left });
      await data.close();
    }
    await new Promise<void>((r) => server.close(() => r()));
    server.closeAllConnections();
    client.close();
    resolveStopped(reason);
  })());

  if (elector) {
    void elector.run({
      onStarted: () => { startControllers().catch((err: Error) => { log.error("Controllers failed to start", { error: err.message }); void stop("start failure"); }); },
      onStopped: () => { log.error("Lost the leader Lease; stopping"); void stop("lost leadership"); },
    });
  } else {
    await startControllers();
  }

  return { port, metrics, leading: () => running, stop: () => stop(), stopped };
}

interface DataLayer {
  persister: AuditPersister;
  notifier: Notifier;
  close(): Promise<void>;
}

/** The database side (DATABASE_URL): audit persistence and the webhook outbox. Loaded only when configured. */
async function openDatabase(config: Readonly<Config>, url: string, log: Logger, metrics: Metrics, now: () => Date): Promise<DataLayer> {
  const { createDatabase, createAuditStore, enqueueNotification } = await import("@crosslogic/data");
  const db = createDatabase(url, { max: 4 });
  const persister = createAuditPersister(createAuditStore(db), {
    flushIntervalMs: config.auditFlushIntervalMs, maxBuffer: config.auditBufferMax,
    onPersisted: (n) => { metrics.auditPersisted.inc(n); metrics.auditPending.set(persister.pending()); },
    onDropped: (n) => { metrics.auditDropped.inc(n); log.error("Audit buffer full: oldest events dropped from the database queue (their log lines were written)", { events: n }); },
    onError: (err, attempt, retryInMs) => { metrics.auditWriteErrors.inc(); log.warn("Writing audit events to the database failed, retrying", { error: err.message, attempt, retryInMs }); },
  });
  const notifier = createNotifier((endpoints, n) => enqueueNotification(db.prisma, endpoints, n), {
    now, onEnqueued: (type, rows) => metrics.notificationsEnqueued.inc({ type }, rows),
  });
  return { persister, notifier, close: () => db.close() };
}

/** Gateway-config writes for new keys: at most one per Environment per window, the first at once. */
const PUBLISH_WINDOW_MS = 500;

/** Maps every watched object to the primary objects whose desired state depends on it. */
function wireEventHandlers(inf: Informers, q: Queues, config: Readonly<Config>, audit: AuditSink, synced: () => boolean, memory: Context["statusMemory"], pacer: PublishPacer): void {
  const forget = (o: KubeObject) => { if (o.metadata.uid) memory.delete(o.metadata.uid); };
  const envsOfTenant = (tenant: string) => inf.environments.listIn(tenantNamespace(tenant));
  const keysOfEnv = (ns: string, env: string) => inf.apiKeys.listIn(ns).filter((k) => k.spec.environment === env);
  const specChanged = (ev: InformerEvent<KubeObject>) => ev.type !== "update" || ev.obj.metadata.generation !== ev.old.metadata.generation || ev.obj.metadata.deletionTimestamp !== ev.old.metadata.deletionTimestamp;

  inf.tenants.on((ev) => {
    if (ev.type === "delete") forget(ev.obj);
    q.tenant.add(objectKey(ev.obj));
    if (specChanged(ev)) for (const e of envsOfTenant(ev.obj.metadata.name)) q.environment.add(objectKey(e));
  });
  inf.environments.on((ev) => {
    if (ev.type === "delete") forget(ev.obj);
    q.environment.add(objectKey(ev.obj));
    if (ev.type !== "update") for (const k of keysOfEnv(ev.obj.metadata.namespace!, ev.obj.metadata.name)) q.apiKey.add(objectKey(k));
  });
  inf.apiKeys.on((ev) => {
    if (ev.type === "delete") forget(ev.obj);
    q.apiKey.add(objectKey(ev.obj));
    if (specChanged(ev)) q.environment.add(`${ev.obj.metadata.namespace}/${ev.obj.spec.environment}`);
  });
  const toTenantOrEnv = (ev: InformerEvent<Obj>) => {
    const l = ev.obj.metadata.labels ?? {};
    const tenant = l[Labels.tenant];
    const env = l[Labels.environment];
    if (!tenant) return;
    if (env) q.environment.add(`${tenantNamespace(tenant)}/${env}`);
    else q.tenant.add(tenant);
  };
  inf.namespaces.on(toTenantOrEnv);
  inf.roles.on(toTenantOrEnv);
  inf.roleBindings.on(toTenantOrEnv);
  inf.clusterRoles.on((ev) => {
    toTenantOrEnv(ev);
    // A member role every tenant binds: any Tenant's pass restores it (each one checks it).
    if (ev.obj.metadata.labels?.[Labels.tenantRole]) for (const t of inf.tenants.list()) q.tenant.add(objectKey(t));
  });
  inf.clusterRoleBindings.on(toTenantOrEnv);
  inf.networkPolicies.on((ev) => {
    toTenantOrEnv(ev);
    // A pool's shared default-deny policy: every environment using that pool re-applies it.
    if (!ev.obj.metadata.labels?.[Labels.tenant]) {
      for (const e of inf.environments.list()) if (e.spec.routes?.some((r) => r.backend.service?.namespace === ev.obj.metadata.namespace)) q.environment.add(objectKey(e));
    }
  });
  inf.certificates.on(toTenantOrEnv);
  inf.secrets.on((ev) => {
    const l = ev.obj.metadata.labels ?? {};
    if (l[Labels.apiKey] && ev.obj.metadata.namespace) {
      q.apiKey.add(`${ev.obj.metadata.namespace}/${l[Labels.apiKey]}`);
      // A new or rotated key: published at once, or with the rest of a burst (one config write per pass).
      if (l[Labels.environment]) {
        const envKey = `${ev.obj.metadata.namespace}/${l[Labels.environment]}`;
        q.environment.addAfter(envKey, pacer.delay(envKey));
      }
      return;
    }
    const tenant = l[Labels.tenant];
    const env = l[Labels.environment];
    if (l[Labels.gatewayConfig] === "true" && ev.obj.metadata.namespace === config.gatewayConfigNamespace && tenant && env) {
      const ns = tenantNamespace(tenant);
      q.environment.add(`${ns}/${env}`);
      // Keys whose Published condition no longer matches the config (all of its Secrets).
      const hashes = publishedByEnvironment((key) => inf.secrets.get(key) as SecretLike | undefined, config.gatewayConfigNamespace, ns, env, config.gatewayConfigMaxSecrets);
      for (const k of keysOfEnv(ns, env)) {
        const hash = (inf.secrets.get(`${ns}/apikey-${k.metadata.name}`)?.metadata.annotations ?? {})[KeyAnnotations.hash];
        const shown = k.status?.conditions?.find((c) => c.type === ConditionTypes.published)?.status === "True";
        if (!k.spec.revoked && (hash !== undefined && hashes.has(hash)) !== shown) q.apiKey.add(objectKey(k));
      }
    }
  });
  inf.services.on((ev) => {
    for (const e of inf.environments.list()) {
      if (e.spec.routes?.some((r) => r.backend.service?.namespace === ev.obj.metadata.namespace && r.backend.service?.name === ev.obj.metadata.name)) q.environment.add(objectKey(e));
    }
  });
  inf.nodes.on((ev) => {
    const pools = new Set([ev.obj.metadata.labels?.[Labels.nodePool], ev.type === "update" ? ev.old.metadata.labels?.[Labels.nodePool] : undefined].filter(Boolean));
    for (const e of inf.environments.list()) if (e.spec.routes?.some((r) => r.nodePool && pools.has(r.nodePool))) q.environment.add(objectKey(e));
    // Launches and terminations seen live (the initial list is the starting inventory, not news).
    if (!synced()) return;
    for (const a of nodeAuditEvents(ev as { type: "add" | "update" | "delete"; obj: NodeLike; old?: NodeLike })) audit.record(a.action, { details: a.details });
  });
}

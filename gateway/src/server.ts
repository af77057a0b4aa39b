/**
 * Wires a whole gateway from its Config: Redis, the config source, the limiter, backends, metering,
 * audit, the public listener (HTTP or TLS) and the admin listener; and shuts it down gracefully
 * (stop accepting, let in-flight requests finish, flush usage, then close).
 */
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { Redis } from "ioredis";
import { createAdminApp, type AuditQueryable, type UsageQueryable } from "./admin.ts";
import { createApp } from "./app.ts";
import { AuditLog, createLogger, type AuditStoreLike } from "./audit.ts";
import { ClientAddress } from "./client-ip.ts";
import type { Config } from "./config.ts";
import { ConfigStore, LARGE_DOCUMENT_BYTES, type ApplyResult } from "./config-store.ts";
import { Limiter } from "./limits/limiter.ts";
import { createAnomalyDetector } from "@crosslogic/safety";
import { hardenListener } from "./protocol.ts";
import { MemoryUsageSink, UsageMeter, type UsageSink } from "./metering.ts";
import { createMetrics } from "./metrics.ts";
import { subscribeRevocations } from "./revocation.ts";
import { watchDirectory, type ConfigSink } from "./sources/directory.ts";
import { ThreatFeeds } from "./threat-feed.ts";
import { CertificateStore } from "./tls.ts";
import { Backends, type EndpointSource } from "./upstream.ts";

export interface GatewayOptions {
  /** Overrides DATABASE_URL's store (tests). */
  usageSink?: UsageSink;
  logStream?: NodeJS.WritableStream;
  auditStream?: NodeJS.WritableStream;
}

export interface RunningGateway {
  readonly url: string;
  readonly adminUrl: string;
  readonly store: ConfigStore;
  readonly meter: UsageMeter;
  readonly limiter: Limiter;
  readonly backends: Backends;
  readonly audit: AuditLog;
  readonly metrics: ReturnType<typeof createMetrics>;
  close(): Promise<void>;
}

export async function startGateway(config: Config, options: GatewayOptions = {}): Promise<RunningGateway> {
  const logger = createLogger(config.LOG_LEVEL, options.logStream);
  const audit = new AuditLog(options.auditStream);
  const metrics = createMetrics();
  const store = new ConfigStore();
  const cleanups: Array<() => unknown> = [];

  // No auto-pipelining: the limiter already sends one script call per event-loop turn for all
  // admissions (and one for settles), and ioredis's auto-pipeline builds a Pipeline object per
  // batch (~5 KB of garbage per request at one connection, most of it surviving a scavenge) and
  // keeps one pipeline in flight per slot, so a settle waited for the admit before it.
  const redisOptions = { commandTimeout: config.REDIS_TIMEOUT_MS, connectTimeout: Math.max(1000, config.REDIS_TIMEOUT_MS), maxRetriesPerRequest: 0, enableOfflineQueue: false, enableAutoPipelining: false, lazyConnect: true };
  const redis = new Redis(config.REDIS_URL, redisOptions);
  redis.on("error", () => undefined); // counted per failed command; the client reconnects by itself
  await redis.connect().catch(() => logger.warn("Redis unreachable at start; REDIS_FAILURE_POLICY applies until it is back", { policy: config.REDIS_FAILURE_POLICY }));
  const subscriber = new Redis(config.REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: null });
  subscriber.on("error", () => undefined);
  void subscribeRevocations(subscriber, store, logger).catch((e: unknown) => logger.error("Revocation subscription failed", { error: (e as Error).message }));

  const limiter = new Limiter(redis, {
    globalRpm: config.GLOBAL_REQUESTS_PER_MINUTE, clientRpm: config.CLIENT_REQUESTS_PER_MINUTE, clientGenerationRpm: config.CLIENT_GENERATION_REQUESTS_PER_MINUTE,
    leaseTtlMs: config.LEASE_TTL_MS, violationWindowMs: config.VIOLATION_WINDOW_MS, delayAfter: config.VIOLATION_DELAY_AFTER,
    blockAfter: config.VIOLATION_BLOCK_AFTER, maxDelayMs: config.VIOLATION_MAX_DELAY_MS, blockMs: config.BLOCK_DURATION_MS,
    failurePolicy: config.REDIS_FAILURE_POLICY, keyPrefix: config.REDIS_KEY_PREFIX,
  }, {
    redisFailure: (op) => metrics.redisFailures.labels(op, config.REDIS_FAILURE_POLICY).inc(),
    tickets: (outcome, n) => metrics.limitTickets.labels(outcome).inc(n),
  });

  // Kubernetes: config Secrets (CONFIG_SOURCE=kubernetes) and Service backends' EndpointSlices.
  let endpointSource: EndpointSource | undefined;
  const k8s = config.CONFIG_SOURCE === "kubernetes" || config.KUBECONFIG ? await import("./sources/kubernetes.ts") : undefined;
  const kube = k8s ? await k8s.kubeClient(config.KUBECONFIG).catch((err: unknown) => { redis.disconnect(); subscriber.disconnect(); limiter.close(); throw err; }) : undefined;
  if (k8s && kube) endpointSource = k8s.endpointSliceSource(kube, logger);
  const backends = new Backends({
    connectMs: config.UPSTREAM_CONNECT_TIMEOUT_MS, headersMs: config.UPSTREAM_HEADERS_TIMEOUT_MS, idleMs: config.UPSTREAM_IDLE_TIMEOUT_MS, connections: config.UPSTREAM_CONNECTIONS,
  }, endpointSource, (origin) => { metrics.ejections.inc(); logger.warn("Ejected an upstream endpoint", { origin }); });
  // Listeners run once per burst of changes (a reload of many documents syncs backends once).
  let syncPending = false;
  store.onChange(() => {
    if (syncPending) return;
    syncPending = true;
    setImmediate(() => {
      syncPending = false;
      backends.sync([...store.environments].flatMap((e) => e.doc.routes));
      metrics.keysLoaded.set(store.keyCount);
    });
  });

  const report = (source: string, r: ApplyResult) => {
    if (r.ok && r.waitingFor) {
      metrics.configReloads.labels("waiting").inc();
      logger.warn("Gateway config waits: its environment is defined by another source; it takes over when that one is removed", { source, definedBy: r.waitingFor });
    } else if (r.ok) { metrics.configReloads.labels("applied").inc(); if (r.changed) logger.info("Applied gateway config", { source, keys: store.keyCount }); }
    else { metrics.configReloads.labels("rejected").inc(); logger.error("Rejected gateway config; keeping the last good one", { source, errors: r.errors }); }
  };
  const applyDocument = (source: string, text: string | Buffer, version: string | undefined, replacing?: string) => {
    // Bytes stay bytes: a first load of a large file never becomes one big string.
    report(source, store.apply(source, text, version, replacing));
  };
  const removeSource = (source: string) => { if (store.remove(source)) logger.info("Removed gateway config", { source }); };
  // After start, documents are applied one per macrotask (a burst of Secret events or files never
  // holds the event loop in one piece), large ones read and indexed in pieces (store.applyLarge); a
  // newer event for the same source replaces a queued one, in its place. Documents go before
  // removals: a Secret written to take keys (or an environment) over is in force before the one it
  // replaces goes, even when a relist after a lost watch delivers the deletion first.
  // A document's `done` (its bytes may be reused) is called once it is applied or replaced.
  let started = false;
  type Item = { text: string | Buffer; version: string | undefined; done: (() => void) | undefined } | null;
  const documents = new Map<string, Item & object>();
  const removals = new Set<string>();
  let draining = false;
  const failed = (e: unknown): ApplyResult => ({ ok: false, errors: [String((e as Error)?.message ?? e)] });
  /** One document, small ones at once, large ones in pieces; whatever happens, the outcome is reported. */
  const applyOne = async (source: string, text: string | Buffer, version: string | undefined, replacing?: string): Promise<void> => {
    try {
      if (typeof text !== "string" || text.length > LARGE_DOCUMENT_BYTES) report(source, await store.applyLarge(source, typeof text === "string" ? Buffer.from(text) : text, version, replacing));
      else applyDocument(source, text, version, replacing);
    } catch (e) { report(source, failed(e)); }
  };
  const step = async (source: string, item: Item): Promise<void> => {
    if (item) return applyOne(source, item.text, item.version);
    // Documents waiting for this source's environment are applied first, then it is removed: the
    // environment's keys never leave in between.
    for (const heir of store.takeUnblocked(source)) await applyOne(heir.source, heir.input, heir.version, source);
    removeSource(source);
  };
  const drain = () => {
    let source: string;
    let item: Item = null;
    const next = documents.entries().next();
    if (!next.done) {
      [source, item] = next.value;
      documents.delete(source);
    } else {
      const removal = removals.values().next();
      if (removal.done) { draining = false; return; }
      source = removal.value;
      removals.delete(source);
    }
    // Whatever happens to one document, the queue goes on (an exception here would stop every later apply).
    void step(source, item).catch((e: unknown) => report(source, failed(e))).finally(() => {
      item?.done?.();
      // Documents no longer held back (their environment's other source changed) go round again.
      for (const w of store.takeUnblocked()) if (!documents.has(w.source) && !removals.has(w.source)) enqueue(w.source, { text: w.input, version: w.version, done: undefined });
      setImmediate(drain);
    });
  };
  const enqueue = (source: string, item: Item) => {
    documents.get(source)?.done?.();
    if (item) { removals.delete(source); documents.set(source, item); } else { documents.delete(source); removals.add(source); }
    if (!draining) { draining = true; setImmediate(drain); }
  };
  const sink: ConfigSink = {
    document(source, text, version, done) {
      if (started) { enqueue(source, { text, version, done }); return; }
      try { applyDocument(source, text, version); } finally { done?.(); }
    },
    rejected(source, errors) { metrics.configReloads.labels("rejected").inc(); logger.error("Rejected gateway config; keeping the last good one", { source, errors }); },
    removed(source) {
      if (started) enqueue(source, null);
      else removeSource(source);
    },
    error(msg) { logger.warn(msg); },
  };
  // A start that fails releases what it holds before the error propagates: connections, timers and
  // watches would otherwise keep an embedding process (or a test) alive.
  const held: Array<() => unknown> = [() => redis.disconnect(), () => subscriber.disconnect(), () => limiter.close(), () => backends.close(), () => kube?.close()];
  const failStart = async (err: unknown): Promise<never> => {
    for (const release of held.reverse()) await Promise.resolve().then(release).catch(() => undefined);
    throw err;
  };
  try {
    if (config.CONFIG_SOURCE === "directory") cleanups.push(watchDirectory(config.CONFIG_DIR!, sink));
    else cleanups.push(await k8s!.watchConfigSecrets(kube!, config.GATEWAY_CONFIG_NAMESPACE ?? config.SYSTEM_NAMESPACE, sink, logger));
  } catch (err) {
    await failStart(err);
  }
  held.push(() => { for (const c of cleanups) c(); });
  started = true;
  backends.sync([...store.environments].flatMap((e) => e.doc.routes));
  metrics.keysLoaded.set(store.keyCount);

  // Usage and audit persistence.
  let usageSink = options.usageSink;
  let usageQuery: UsageQueryable | undefined;
  let auditQuery: AuditQueryable | undefined;
  let db: { close(): Promise<void> } | undefined;
  if (!usageSink && config.DATABASE_URL) {
    const data = await import("@crosslogic/data");
    const database = data.createDatabase(config.DATABASE_URL, { connectionTimeoutMillis: 3000 });
    db = database;
    const usage = data.createUsageStore(database);
    const auditStore = data.createAuditStore(database);
    usageSink = usage; usageQuery = usage; auditQuery = auditStore as AuditQueryable;
    audit.persistTo(auditStore as AuditStoreLike);
  }
  if (!usageSink) {
    logger.warn("DATABASE_URL is not set: usage records stay in memory only (the most recent 10,000)");
    usageSink = new MemoryUsageSink(10_000);
  }
  const meter = new UsageMeter(usageSink, {
    maxBuffered: config.USAGE_BUFFER_MAX, batchSize: config.USAGE_BATCH_SIZE, intervalMs: config.USAGE_FLUSH_INTERVAL_MS, spoolDir: config.USAGE_SPOOL_DIR,
  }, {
    flushed: (n) => metrics.usageFlushed.inc(n),
    flushFailed: (e) => { metrics.usageFlushFailures.inc(); logger.warn("Usage batch not written; retrying", { error: String((e as Error)?.message ?? e).slice(0, 200), buffered: meter.size }); },
    buffered: (n) => metrics.usageBuffered.set(n),
  });
  meter.start();
  held.push(() => db?.close(), () => audit.close(), () => meter.close(Date.now()));

  // Threat feeds are read before the listener opens (a source that fails is logged and empty until it loads).
  let threats: ThreatFeeds | undefined;
  if (config.threatFeeds.length) {
    threats = new ThreatFeeds({
      sources: config.threatFeeds, refreshMs: config.THREAT_FEED_REFRESH_SECONDS * 1000, log: logger,
      onRefresh: (feed, outcome) => metrics.threatFeedRefreshes.labels(feed, outcome).inc(),
      onApplied: (ranges) => metrics.threatFeedRanges.set(ranges),
    });
    await threats.start();
    held.push(() => threats?.stop());
  }

  let shuttingDown = false;
  const app = createApp({
    settings: { enforceHostnames: config.ENFORCE_HOSTNAMES, defaultMaxTokens: config.DEFAULT_MAX_TOKENS, requestTimeoutMs: config.REQUEST_TIMEOUT_MS },
    store, limiter, backends, meter, audit, logger, metrics, clientAddress: new ClientAddress(config.trustedProxies), shuttingDown: () => shuttingDown,
    anomaly: createAnomalyDetector({ windowMs: config.ANOMALY_WINDOW_MS, warmupWindows: config.ANOMALY_WARMUP_WINDOWS }), threats,
  });

  let certs: CertificateStore | undefined;
  let server: http.Server;
  if (config.TLS_CERT_DIR) {
    certs = new CertificateStore(config.TLS_CERT_DIR, config.TLS_MIN_VERSION, (msg) => logger.info(msg));
    certs.watch();
    server = https.createServer({ ...certs.serverOptions(), requireHostHeader: false }, app);
  } else {
    server = http.createServer({ requireHostHeader: false }, app);
  }
  hardenListener(server);
  server.keepAliveTimeout = 65_000;
  server.requestTimeout = 120_000;
  const admin = http.createServer({ requireHostHeader: false }, createAdminApp({
    tokens: { current: config.ADMIN_TOKEN, next: config.ADMIN_TOKEN_NEXT }, audit, metrics, usage: usageQuery, auditStore: auditQuery,
    ready: () => !shuttingDown && redis.status === "ready",
  }));
  hardenListener(admin);
  held.push(() => certs?.close(), () => server.close(), () => admin.close());
  try {
    await listen(server, config.PORT, config.HOST);
    await listen(admin, config.ADMIN_PORT, config.ADMIN_HOST);
  } catch (err) {
    await failStart(err);
  }
  const url = `${config.TLS_CERT_DIR ? "https" : "http"}://${hostPort(server)}`;
  const adminUrl = `http://${hostPort(admin)}`;
  logger.info("Gateway listening", { url, admin: adminUrl, keys: store.keyCount, environments: [...store.environments].length });

  return {
    url, adminUrl, store, meter, limiter, backends, audit, metrics,
    async close() {
      if (shuttingDown) return;
      shuttingDown = true;
      const deadline = Date.now() + config.SHUTDOWN_TIMEOUT_MS;
      const drained = new Promise<void>((r) => server.close(() => r()));
      server.closeIdleConnections();
      await Promise.race([drained, new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now())).unref())]);
      server.closeAllConnections();
      const spooled = await meter.close(Math.max(deadline, Date.now() + 1000));
      if (spooled > 0) logger.error(config.USAGE_SPOOL_DIR ? "Spooled unwritten usage records" : "Usage records could not be written before shutdown and no USAGE_SPOOL_DIR is set", { count: spooled });
      for (const c of cleanups) c();
      certs?.close();
      threats?.stop();
      limiter.close();
      await new Promise<void>((r) => admin.close(() => r()));
      admin.closeAllConnections();
      await audit.close();
      await backends.close();
      kube?.close();
      subscriber.disconnect();
      await redis.quit().catch(() => redis.disconnect());
      await db?.close();
    },
  };
}

function listen(server: http.Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => { server.once("error", reject); server.listen(port, host, () => { server.off("error", reject); resolve(); }); });
}

function hostPort(server: http.Server): string {
  const a = server.address() as AddressInfo;
  const host = a.address === "0.0.0.0" || a.address === "::" ? "127.0.0.1" : a.address.includes(":") ? `[${a.address}]` : a.address;
  return `${host}:${a.port}`;
}

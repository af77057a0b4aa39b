/**
 * What every controller shares: the informer caches, a work queue drained by N workers, and the
 * write helpers (server-side apply only when something would change, status only when it changed,
 * finalizers). Reconcile functions are level-triggered: they read the caches, never events.
 */
import type { Logger } from "winston";
import { FINALIZER } from "@crosslogic/crds";
import type { Config } from "../config.ts";
import type { AuditSink } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import type { RevocationPublisher } from "../revocation.ts";
import type { Notifier } from "../persistence/notifications.ts";
import { needsApply, stableStringify, withAppliedHash } from "../kube/apply.ts";
import { isConflict, isNotFound, resourcePath, type KubeClient, type ResourceType } from "@crosslogic/kube/client";
import type { EventRecorder } from "../kube/events.ts";
import type { Informer, KubeObject } from "@crosslogic/kube/informer";
import type { WorkQueue } from "../kube/workqueue.ts";
import type { ApiKey, Environment, Tenant } from "@crosslogic/crds";
import type { ChildObject } from "./tenant/desired.ts";

export type Obj = KubeObject & Record<string, unknown>;

export interface Informers {
  tenants: Informer<Tenant & KubeObject>;
  environments: Informer<Environment & KubeObject>;
  apiKeys: Informer<ApiKey & KubeObject>;
  namespaces: Informer<Obj>;
  networkPolicies: Informer<Obj>;
  roles: Informer<Obj>;
  roleBindings: Informer<Obj>;
  clusterRoles: Informer<Obj>;
  clusterRoleBindings: Informer<Obj>;
  certificates: Informer<Obj>;
  secrets: Informer<Obj>;
  services: Informer<Obj>;
  nodes: Informer<Obj>;
}

export interface Queues {
  tenant: WorkQueue;
  environment: WorkQueue;
  apiKey: WorkQueue;
}

export interface Context {
  client: KubeClient;
  config: Readonly<Config>;
  log: Logger;
  metrics: Metrics;
  events: EventRecorder;
  audit: AuditSink;
  revocation: RevocationPublisher;
  /** Tenant webhooks through the persisted outbox (a no-op without DATABASE_URL). */
  notifier: Notifier;
  informers: Informers;
  queues: Queues;
  /** Gateway-config writes per Environment key, to publish bursts of new keys together. */
  publishPacer: PublishPacer;
  /** Statuses this process wrote, by uid: read-your-writes while the cache has not caught up. */
  statusMemory: Map<string, { staleVersion: string | undefined; status: unknown }>;
  now(): Date;
}

export interface ReconcileResult {
  requeueAfterMs?: number;
}

/**
 * Paces gateway-config writes per Environment for newly issued keys: the first key after a quiet
 * spell is published at once; keys issued within `windowMs` of the last write go out together at the
 * end of that window (a burst of N keys costs one or two config writes, not N). The Environment's
 * reconcile enforces it (whichever event brings it there); revocations and spec changes are not paced.
 */
export class PublishPacer {
  readonly windowMs: number;
  #lastWrite = new Map<string, number>();

  constructor(windowMs: number) {
    this.windowMs = windowMs;
  }

  wrote(key: string, at = Date.now()): void {
    this.#lastWrite.delete(key);
    this.#lastWrite.set(key, at);
    // Oldest first (re-inserted on write): forget entries that can no longer delay anything.
    if (this.#lastWrite.size > 1024) for (const [k, t] of this.#lastWrite) { if (at - t < this.windowMs) break; this.#lastWrite.delete(k); }
  }

  /** Environments remembered (bounded: old entries are forgotten). */
  get size(): number {
    return this.#lastWrite.size;
  }

  /** Milliseconds until `key` may be written again (0: now). */
  delay(key: string, now = Date.now()): number {
    const last = this.#lastWrite.get(key);
    return last === undefined ? 0 : Math.max(0, last + this.windowMs - now);
  }
}

/** Thrown for problems a retry cannot fix soon; the controller logs it and backs off to the slowest rate. */
export class PermanentError extends Error {}

export class Controller {
  readonly name: string;
  #queue: WorkQueue;
  #reconcile: (key: string) => Promise<ReconcileResult | void>;
  #log: Logger;
  #metrics: Metrics;
  #workers: Promise<void>[] = [];

  constructor(name: string, queue: WorkQueue, reconcile: (key: string) => Promise<ReconcileResult | void>, log: Logger, metrics: Metrics) {
    this.name = name;
    this.#queue = queue;
    this.#reconcile = reconcile;
    this.#log = log.child({ controller: name });
    this.#metrics = metrics;
  }

  start(workers: number): void {
    for (let i = 0; i < workers; i++) this.#workers.push(this.#work());
  }

  async #work(): Promise<void> {
    for (;;) {
      const key = await this.#queue.get();
      if (key === undefined) return;
      const end = this.#metrics.reconcileSeconds.startTimer({ controller: this.name });
      try {
        const res = await this.#reconcile(key);
        this.#queue.forget(key);
        if (res?.requeueAfterMs !== undefined) this.#queue.addAfter(key, res.requeueAfterMs);
        this.#metrics.reconciles.inc({ controller: this.name, result: "success" });
      } catch (err) {
        const delay = this.#queue.addRateLimited(key);
        this.#metrics.reconciles.inc({ controller: this.name, result: "error" });
        const level = isConflict(err) ? "debug" : "warn";
        this.#log.log(level, `Reconcile of ${key} failed, retrying`, { key, error: (err as Error).message, retryInMs: delay, attempt: this.#queue.failures(key) });
      } finally {
        end();
        this.#queue.done(key);
      }
    }
  }

  /** Stops taking keys and waits for in-flight reconciles to finish. */
  async stop(): Promise<void> {
    this.#queue.shutDown();
    await Promise.all(this.#workers);
  }
}

/**
 * What one reconcile created or restored among its children, told as at most two Events on the owner
 * ("Created Namespace a, Role a/b, …", "Restored …"): one Event per pass, not one per child.
 */
export class ChangeReport {
  readonly #created: string[] = [];
  readonly #restored: string[] = [];

  record(outcome: "created" | "updated", type: ResourceType, desired: ChildObject): void {
    (outcome === "created" ? this.#created : this.#restored).push(`${type.kind} ${desired.metadata.namespace ? `${desired.metadata.namespace}/` : ""}${desired.metadata.name}`);
  }

  /** Records the Events (nothing when nothing changed) and starts over. */
  flush(ctx: Context, owner: KubeObject & { kind?: string; apiVersion?: string }): void {
    if (this.#created.length) ctx.events.event(owner, "Normal", "Created", `Created ${this.#created.join(", ")}`);
    if (this.#restored.length) ctx.events.event(owner, "Normal", "Repaired", `Restored ${this.#restored.join(", ")} to the desired state`);
    this.#created.length = 0;
    this.#restored.length = 0;
  }
}

/** Applies `desired` (server-side apply, forced, own field manager) when it would change `observed`. */
export async function applyIfChanged(ctx: Context, controller: string, fieldManager: string, type: ResourceType, desired: ChildObject, observed: KubeObject | undefined, report?: ChangeReport): Promise<"created" | "updated" | "unchanged"> {
  const obj = withAppliedHash(desired);
  if (!needsApply(observed, obj)) return "unchanged";
  await ctx.client.apply(type, obj, fieldManager);
  ctx.metrics.writes.inc({ controller, kind: type.kind, op: "apply" });
  const outcome = observed ? "updated" : "created";
  report?.record(outcome, type, desired);
  return outcome;
}

/**
 * The object's status as this process last knows it: the cached one, or the one it wrote itself if
 * the cache still holds the version from before that write (so transitions are acted on once).
 */
export function knownStatus<S>(ctx: Context, obj: KubeObject & { status?: S }): S | undefined {
  const mem = obj.metadata.uid ? ctx.statusMemory.get(obj.metadata.uid) : undefined;
  return mem && mem.staleVersion === obj.metadata.resourceVersion ? (mem.status as S) : obj.status;
}

/** Writes the status subresource by server-side apply, only when it differs from the known one. */
export async function writeStatusIfChanged(ctx: Context, controller: string, fieldManager: string, type: ResourceType, obj: KubeObject & { status?: unknown }, status: unknown): Promise<boolean> {
  if (stableStringify(knownStatus(ctx, obj) ?? {}) === stableStringify(status)) return false;
  await ctx.client.apply(type, {
    apiVersion: `${type.group}/${type.version}`, kind: type.kind,
    metadata: { name: obj.metadata.name, ...(obj.metadata.namespace ? { namespace: obj.metadata.namespace } : {}) },
    status,
  } as { metadata: { name: string; namespace?: string } }, fieldManager, "status");
  if (obj.metadata.uid) ctx.statusMemory.set(obj.metadata.uid, { staleVersion: obj.metadata.resourceVersion, status });
  ctx.metrics.writes.inc({ controller, kind: type.kind, op: "status" });
  return true;
}

export async function ensureFinalizer(ctx: Context, controller: string, fieldManager: string, type: ResourceType, obj: KubeObject): Promise<void> {
  if (obj.metadata.finalizers?.includes(FINALIZER)) return;
  await ctx.client.apply(type, {
    apiVersion: `${type.group}/${type.version}`, kind: type.kind,
    metadata: { name: obj.metadata.name, ...(obj.metadata.namespace ? { namespace: obj.metadata.namespace } : {}), finalizers: [FINALIZER] },
  } as { metadata: { name: string } }, fieldManager);
  ctx.metrics.writes.inc({ controller, kind: type.kind, op: "finalizer" });
}

/** Removes our finalizer with a JSON patch guarded by a test, so a concurrent change is never overwritten. */
export async function removeFinalizer(ctx: Context, controller: string, type: ResourceType, obj: KubeObject): Promise<void> {
  const i = obj.metadata.finalizers?.indexOf(FINALIZER) ?? -1;
  if (i < 0) return;
  try {
    await ctx.client.request({
      method: "PATCH", path: resourcePath(type, obj.metadata.namespace, obj.metadata.name), contentType: "application/json-patch+json",
      body: [{ op: "test", path: `/metadata/finalizers/${i}`, value: FINALIZER }, { op: "remove", path: `/metadata/finalizers/${i}` }],
    });
    ctx.metrics.writes.inc({ controller, kind: type.kind, op: "finalizer" });
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}

/** Deletes an object, treating "already gone" as success. */
export async function deleteIfExists(ctx: Context, controller: string, type: ResourceType, namespace: string | undefined, name: string): Promise<boolean> {
  try {
    await ctx.client.delete(type, namespace, name);
    ctx.metrics.writes.inc({ controller, kind: type.kind, op: "delete" });
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

export const labelsMatch = (obj: KubeObject, labels: Record<string, string>): boolean =>
  Object.entries(labels).every(([k, v]) => obj.metadata.labels?.[k] === v);

/**
 * Uids whose finalizer this process already removed: a reconcile from a cache that has not yet seen
 * the deletion must not run the cleanup (and its audit record) a second time. Bounded.
 */
export class FinalizedSet {
  #uids = new Set<string>();
  #cap: number;
  constructor(cap = 10_000) {
    this.#cap = cap;
  }
  has(uid: string | undefined): boolean {
    return uid !== undefined && this.#uids.has(uid);
  }
  add(uid: string | undefined): void {
    if (uid === undefined) return;
    this.#uids.add(uid);
    if (this.#uids.size > this.#cap) this.#uids.delete(this.#uids.values().next().value!);
  }
}

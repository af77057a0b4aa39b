/**
 * A list+watch informer with a local cache. It lists (paginated), then watches from the list's
 * resourceVersion with bookmarks; a 410 Gone (history compacted) triggers a fresh list, whose diff
 * against the cache is delivered as add/update/delete events, so nothing is lost across API-server
 * restarts. A watch that goes silent past its own timeout is treated as stalled and restarted.
 */
import type { Logger } from "winston";
import { backoffDelay } from "./backoff.ts";
import { apiVersionOf, isGone, resourcePath, type KubeClient, type KubeMetrics, type ResourceType } from "./client.ts";

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string; namespace?: string; uid?: string; resourceVersion?: string; generation?: number;
    labels?: Record<string, string>; annotations?: Record<string, string>; deletionTimestamp?: string; creationTimestamp?: string;
    finalizers?: string[]; ownerReferences?: Array<{ apiVersion: string; kind: string; name: string; uid: string; controller?: boolean }>;
  };
}

export type InformerEvent<T> =
  | { type: "add"; obj: T }
  | { type: "update"; obj: T; old: T }
  | { type: "delete"; obj: T };

export const objectKey = (o: { metadata: { name: string; namespace?: string } }): string =>
  o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name;

export interface InformerOptions {
  labelSelector?: string;
  /** Only this namespace (namespaced types): what a Role, rather than a ClusterRole, allows. */
  namespace?: string;
  /** Server-side watch timeout; the stream is considered stalled this + 30 s after its last byte. */
  watchTimeoutSeconds?: number;
  /** Optional: tolerate a missing resource type (e.g. cert-manager not installed) and retry slowly. */
  optional?: boolean;
}

export class Informer<T extends KubeObject> {
  readonly type: ResourceType;
  #client: KubeClient;
  #store = new Map<string, T>();
  /** The same objects by namespace: controllers look up one namespace's objects without scanning all. */
  #byNamespace = new Map<string, Map<string, T>>();
  #handlers: Array<(ev: InformerEvent<T>) => void> = [];
  #opts: InformerOptions;
  #log: Logger;
  #metrics: KubeMetrics | undefined;
  #synced = false;
  #syncWaiters: Array<() => void> = [];
  #stopped = false;
  #abort: (() => void) | undefined;
  #loop: Promise<void> | undefined;
  #available = true;

  constructor(client: KubeClient, type: ResourceType, log: Logger, opts: InformerOptions = {}, metrics?: KubeMetrics) {
    this.type = type;
    this.#client = client;
    this.#opts = opts;
    this.#log = log.child({ informer: type.plural });
    this.#metrics = metrics;
  }

  on(handler: (ev: InformerEvent<T>) => void): void {
    this.#handlers.push(handler);
  }

  get(key: string): T | undefined {
    return this.#store.get(key);
  }

  list(): T[] {
    return [...this.#store.values()];
  }

  /** The cached objects of one namespace. */
  listIn(namespace: string): T[] {
    const m = this.#byNamespace.get(namespace);
    return m ? [...m.values()] : [];
  }

  #put(key: string, obj: T): void {
    this.#store.set(key, obj);
    const ns = obj.metadata.namespace ?? "";
    let m = this.#byNamespace.get(ns);
    if (!m) this.#byNamespace.set(ns, (m = new Map()));
    m.set(key, obj);
  }

  #remove(key: string, obj: T): void {
    this.#store.delete(key);
    const ns = obj.metadata.namespace ?? "";
    const m = this.#byNamespace.get(ns);
    m?.delete(key);
    if (m?.size === 0) this.#byNamespace.delete(ns);
  }

  get synced(): boolean {
    return this.#synced;
  }

  /** False while the API server does not serve this resource type (optional informers only). */
  get available(): boolean {
    return this.#available;
  }

  waitForSync(): Promise<void> {
    if (this.#synced) return Promise.resolve();
    return new Promise((resolve) => this.#syncWaiters.push(resolve));
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#abort?.();
    await this.#loop;
  }

  #emit(ev: InformerEvent<T>): void {
    for (const h of this.#handlers) h(ev);
  }

  async #list(): Promise<string> {
    const items = new Map<string, T>();
    let cont: string | undefined;
    let rv: string;
    do {
      const page = await this.#client.request<{ items: T[]; metadata: { resourceVersion: string; continue?: string } }>({
        method: "GET", path: resourcePath(this.type, this.#opts.namespace), query: { labelSelector: this.#opts.labelSelector, limit: 500, continue: cont },
      });
      // List items carry no apiVersion/kind (watch events do): fill them in so both look alike.
      for (const item of page.items) items.set(objectKey(item), { ...item, apiVersion: item.apiVersion ?? apiVersionOf(this.type), kind: item.kind ?? this.type.kind });
      cont = page.metadata.continue || undefined;
      rv = page.metadata.resourceVersion;
    } while (cont);
    // Deliver the difference against the cache as events: a relist after 410 loses nothing.
    for (const [key, old] of this.#store) if (!items.has(key)) { this.#remove(key, old); this.#emit({ type: "delete", obj: old }); }
    for (const [key, obj] of items) {
      const old = this.#store.get(key);
      this.#put(key, obj);
      if (!old) this.#emit({ type: "add", obj });
      else if (old.metadata.resourceVersion !== obj.metadata.resourceVersion) this.#emit({ type: "update", obj, old });
    }
    this.#metrics?.informerLists?.inc({ resource: this.type.plural });
    return rv;
  }

  #markSynced(): void {
    if (this.#synced) return;
    this.#synced = true;
    for (const w of this.#syncWaiters.splice(0)) w();
  }

  async #run(): Promise<void> {
    let rv: string | undefined;
    let failures = 0;
    const timeout = this.#opts.watchTimeoutSeconds ?? 300;
    while (!this.#stopped) {
      try {
        if (rv === undefined) {
          rv = await this.#list();
          this.#available = true;
          this.#markSynced();
        }
        // Randomised like client-go so that many watches do not all reconnect at once.
        const watchTimeout = Math.round(timeout * (1 + Math.random()) / 2) + 1;
        const handle = this.#client.watch(resourcePath(this.type, this.#opts.namespace), {
          labelSelector: this.#opts.labelSelector, resourceVersion: rv, allowWatchBookmarks: true, timeoutSeconds: watchTimeout,
        }, (ev) => {
          const obj = ev.object as unknown as T;
          if (ev.type === "ERROR") {
            const status = ev.object as { code?: number; message?: string };
            if (status.code === 410) { rv = undefined; this.#abort?.(); return; }
            throw new Error(`watch error: ${status.message ?? JSON.stringify(status)}`);
          }
          if (obj.metadata?.resourceVersion) rv = obj.metadata.resourceVersion;
          if (ev.type === "BOOKMARK") return;
          const key = objectKey(obj);
          const old = this.#store.get(key);
          if (ev.type === "DELETED") {
            if (old) this.#remove(key, old);
            this.#emit({ type: "delete", obj: old ?? obj });
          } else {
            this.#put(key, obj);
            this.#emit(old ? { type: "update", obj, old } : { type: "add", obj });
          }
        }, (watchTimeout + 30) * 1000);
        this.#abort = handle.abort;
        await handle.done;
        failures = 0;
      } catch (err) {
        if (this.#stopped) break;
        if (isGone(err)) { rv = undefined; this.#metrics?.watchRestarts?.inc({ resource: this.type.plural, reason: "gone" }); continue; }
        const e = err as Error & { status?: number };
        const notServed = e.status === 404 && rv === undefined;
        if (notServed && this.#opts.optional) {
          this.#available = false;
          this.#markSynced();
        }
        failures++;
        const reason = e.name === "StalledWatchError" ? "stalled" : "error";
        this.#metrics?.watchRestarts?.inc({ resource: this.type.plural, reason });
        const delay = backoffDelay(failures, { baseMs: 250, maxMs: notServed ? 60_000 : 10_000 });
        if (failures === 1 || failures % 10 === 0) this.#log.warn("Watch failed, retrying", { error: e.message, reason, retryInMs: delay, failures });
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }
}

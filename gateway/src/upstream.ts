/**
 * Backends: `model` → route → a pool of endpoints (a URL, or the ready addresses of a Service's
 * EndpointSlices). Least outstanding requests picks the endpoint (ties broken at random); an
 * endpoint that fails repeatedly is ejected for a growing period (never the last healthy one).
 * Each endpoint is an undici Pool with connect, header and idle (body) timeouts.
 */
import { Pool } from "undici";
import type { GatewayRoute } from "@crosslogic/crds";

export interface UpstreamTimeouts { connectMs: number; headersMs: number; idleMs: number; connections: number }

export interface Endpoint {
  readonly origin: string;
  readonly pool: Pool;
  outstanding: number;
  consecutiveFailures: number;
  ejectedUntil: number;
  ejections: number;
}

const EJECT_AFTER_FAILURES = 5;
const BASE_EJECTION_MS = 10_000;
const MAX_EJECTION_MS = 300_000;

export class Backend {
  readonly id: string;
  /** Path prefix of a URL backend (`http://host/prefix`), prepended to request paths. */
  basePath = "";
  #endpoints: Endpoint[] = [];
  readonly #timeouts: UpstreamTimeouts;
  readonly #onEject: (origin: string) => void;

  constructor(id: string, timeouts: UpstreamTimeouts, onEject: (origin: string) => void) {
    this.id = id;
    this.#timeouts = timeouts;
    this.#onEject = onEject;
  }

  get endpoints(): readonly Endpoint[] { return this.#endpoints; }

  /** Replaces the endpoint set, keeping pools (and their connections) of endpoints that stay. */
  setOrigins(origins: readonly string[]): void {
    const keep = new Map(this.#endpoints.map((e) => [e.origin, e]));
    const next: Endpoint[] = [];
    for (const origin of new Set(origins)) {
      next.push(keep.get(origin) ?? {
        origin, outstanding: 0, consecutiveFailures: 0, ejectedUntil: 0, ejections: 0,
        pool: new Pool(origin, {
          connections: this.#timeouts.connections, connectTimeout: this.#timeouts.connectMs,
          headersTimeout: this.#timeouts.headersMs, bodyTimeout: this.#timeouts.idleMs,
          keepAliveTimeout: 30_000, pipelining: 1,
        }),
      });
      keep.delete(origin);
    }
    this.#endpoints = next;
    // Removed endpoints finish their in-flight requests before closing.
    for (const gone of keep.values()) void gone.pool.close().catch(() => undefined);
  }

  /** Least outstanding among healthy endpoints (excluding `avoid`); ejected ones only if none is healthy. */
  pick(avoid?: Endpoint): Endpoint | undefined {
    const now = Date.now();
    let best: Endpoint | undefined;
    let ties = 0;
    for (const pass of [false, true]) {
      for (const e of this.#endpoints) {
        if (e === avoid) continue;
        if (!pass && e.ejectedUntil > now) continue;
        if (!best || e.outstanding < best.outstanding) { best = e; ties = 1; }
        else if (e.outstanding === best.outstanding && Math.random() * ++ties < 1) best = e;
      }
      if (best) return best;
    }
    return undefined;
  }

  succeeded(e: Endpoint): void {
    e.consecutiveFailures = 0;
    if (e.ejectedUntil && e.ejectedUntil <= Date.now()) { e.ejectedUntil = 0; e.ejections = Math.max(0, e.ejections - 1); }
  }

  failed(e: Endpoint): void {
    e.consecutiveFailures++;
    if (e.consecutiveFailures < EJECT_AFTER_FAILURES) return;
    const now = Date.now();
    const healthy = this.#endpoints.filter((x) => x !== e && x.ejectedUntil <= now).length;
    if (healthy === 0) return; // never eject the last healthy endpoint
    e.ejections++;
    e.ejectedUntil = now + Math.min(MAX_EJECTION_MS, BASE_EJECTION_MS * 2 ** (e.ejections - 1));
    e.consecutiveFailures = 0;
    this.#onEject(e.origin);
  }

  async close(): Promise<void> {
    await Promise.all(this.#endpoints.map((e) => e.pool.close().catch(() => undefined)));
    this.#endpoints = [];
  }
}

export function backendId(route: GatewayRoute): string {
  const b = route.backend;
  return "url" in b ? `url:${b.url.replace(/\/+$/, "")}` : `svc:${b.service.namespace}/${b.service.name}:${b.service.port}`;
}

/** Where a Service backend's addresses come from (EndpointSlices in the backend's namespace). */
export interface EndpointSource {
  watch(service: { namespace: string; name: string; port: number }, onChange: (origins: string[]) => void): () => void;
}

/** All backends in use, created and retired as gateway configs change. */
export class Backends {
  readonly #backends = new Map<string, { backend: Backend; stop: () => void }>();
  readonly #timeouts: UpstreamTimeouts;
  readonly #source: EndpointSource | undefined;
  readonly #onEject: (origin: string) => void;

  constructor(timeouts: UpstreamTimeouts, source: EndpointSource | undefined, onEject: (origin: string) => void) {
    this.#timeouts = timeouts;
    this.#source = source;
    this.#onEject = onEject;
  }

  get(route: GatewayRoute): Backend | undefined { return this.#backends.get(backendId(route))?.backend; }

  /** Brings the set in line with the routes of every environment. */
  sync(routes: Iterable<GatewayRoute>): void {
    const wanted = new Map<string, GatewayRoute>();
    for (const r of routes) wanted.set(backendId(r), r);
    for (const [id, route] of wanted) {
      if (this.#backends.has(id)) continue;
      const backend = new Backend(id, this.#timeouts, this.#onEject);
      let stop = () => undefined as void;
      if ("url" in route.backend) {
        const url = new URL(route.backend.url);
        backend.basePath = url.pathname.replace(/\/+$/, "");
        backend.setOrigins([url.origin]);
      }
      else if (this.#source) stop = this.#source.watch(route.backend.service, (origins) => backend.setOrigins(origins));
      this.#backends.set(id, { backend, stop });
    }
    for (const [id, b] of this.#backends) {
      if (wanted.has(id)) continue;
      this.#backends.delete(id);
      b.stop();
      void b.backend.close();
    }
  }

  async close(): Promise<void> {
    const all = [...this.#backends.values()];
    this.#backends.clear();
    for (const b of all) b.stop();
    await Promise.all(all.map((b) => b.backend.close()));
  }
}

/**
 * A small Kubernetes REST client over node:http(s) with keep-alive: requests, server-side apply and
 * streaming watches. Credentials come from a kubeconfig file or the in-cluster service account
 * (kubeconfig.ts); users that need an exec plugin or auth provider are handed to
 * @kubernetes/client-node's KubeConfig, loaded only then. Every request can be counted by verb and
 * status.
 */
import fs from "node:fs";
import http from "node:http";
import https from "node:https";
import { inClusterCredentials, loadKubeconfig, type Credentials } from "./kubeconfig.ts";

/** The counters the client and informers feed (prom-client Counters fit). */
export interface KubeMetrics {
  apiRequests: { inc(labels: { verb: string; code: string }): void };
  informerLists?: { inc(labels: { resource: string }): void };
  watchRestarts?: { inc(labels: { resource: string; reason: string }): void };
}

/** TLS options and headers for each request, re-read on refresh (tokens rotate on disk). */
type TlsOptions = Pick<https.RequestOptions, "ca" | "cert" | "key" | "rejectUnauthorized" | "servername"> & { headers?: Record<string, string> };

function tlsOptionsOf(c: Credentials): TlsOptions {
  const token = c.tokenFile ? fs.readFileSync(c.tokenFile, "utf8").trim() : c.token;
  return {
    ca: c.ca, cert: c.cert, key: c.key, rejectUnauthorized: c.insecureSkipTlsVerify !== true,
    ...(c.tlsServerName ? { servername: c.tlsServerName } : {}),
    ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}),
  };
}

export interface ResourceType {
  group: string;
  version: string;
  plural: string;
  kind: string;
  namespaced: boolean;
}

export class ApiError extends Error {
  readonly status: number;
  readonly reason: string;
  constructor(status: number, reason: string, message: string) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.reason = reason;
  }
}

export const isNotFound = (err: unknown): boolean => err instanceof ApiError && err.status === 404;
export const isConflict = (err: unknown): boolean => err instanceof ApiError && err.status === 409;
export const isGone = (err: unknown): boolean => err instanceof ApiError && err.status === 410;

export interface RequestOptions {
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  timeoutMs?: number;
}

export interface WatchHandle {
  /** Resolves when the stream ends (server timeout or abort); rejects on HTTP or network errors. */
  done: Promise<void>;
  abort(): void;
}

export function apiVersionOf(t: ResourceType): string {
  return t.group ? `${t.group}/${t.version}` : t.version;
}

export function resourcePath(rt: ResourceType, namespace?: string, name?: string, subresource?: string): string {
  const base = rt.group ? `/apis/${rt.group}/${rt.version}` : `/api/${rt.version}`;
  const ns = rt.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : "";
  const n = name ? `/${encodeURIComponent(name)}` : "";
  return `${base}${ns}/${rt.plural}${n}${subresource ? `/${subresource}` : ""}`;
}

function queryString(q: RequestOptions["query"]): string {
  if (!q) return "";
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined) p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : "";
}

export class KubeClient {
  readonly server: URL;
  readonly userAgent: string;
  #credentials: () => Promise<TlsOptions>;
  #tls: TlsOptions = {};
  #agent: http.Agent;
  #watchAgent: http.Agent;
  #metrics: KubeMetrics | undefined;
  #refreshedAt = 0;

  private constructor(server: URL, credentials: () => Promise<TlsOptions>, userAgent: string, metrics?: KubeMetrics) {
    this.server = server;
    this.userAgent = userAgent;
    this.#credentials = credentials;
    this.#metrics = metrics;
    const Agent = this.server.protocol === "https:" ? https.Agent : http.Agent;
    this.#agent = new Agent({ keepAlive: true, maxSockets: 32 });
    this.#watchAgent = new Agent({ keepAlive: true });
  }

  /** From KUBECONFIG (a path) or, when absent, the in-cluster service account. */
  static async create(opts: { kubeconfig?: string; userAgent: string; metrics?: KubeMetrics }): Promise<KubeClient> {
    const loaded = opts.kubeconfig ? loadKubeconfig(opts.kubeconfig) : inClusterCredentials();
    let client: KubeClient;
    if ("delegate" in loaded) {
      // Exec plugins and auth providers: client-node runs them (and refreshes what they return).
      const { KubeConfig } = await import("@kubernetes/client-node");
      const kc = new KubeConfig();
      kc.loadFromFile(opts.kubeconfig!);
      const cluster = kc.getCurrentCluster();
      if (!cluster) throw new Error("the kubeconfig has no current cluster");
      client = new KubeClient(new URL(cluster.server), async () => {
        const o: https.RequestOptions = {};
        await kc.applyToHTTPSOptions(o);
        return { ca: o.ca, cert: o.cert, key: o.key, rejectUnauthorized: o.rejectUnauthorized, headers: o.headers as Record<string, string> | undefined };
      }, opts.userAgent, opts.metrics);
    } else {
      client = new KubeClient(loaded.server, () => Promise.resolve(tlsOptionsOf(loaded)), opts.userAgent, opts.metrics);
    }
    await client.#refreshCredentials();
    return client;
  }

  /** Reloads credentials each minute: in-cluster tokens are rotated on disk. */
  async #refreshCredentials(): Promise<void> {
    if (Date.now() - this.#refreshedAt < 60_000) return;
    this.#tls = await this.#credentials();
    this.#refreshedAt = Date.now();
    const { ca, cert, key, rejectUnauthorized, servername } = this.#tls;
    for (const agent of [this.#agent, this.#watchAgent]) Object.assign((agent as unknown as { options: https.AgentOptions }).options, { ca, cert, key, rejectUnauthorized, servername });
  }

  #open(method: string, pathAndQuery: string, headers: Record<string, string>, agent: http.Agent): http.ClientRequest {
    const mod = this.server.protocol === "https:" ? https : http;
    return mod.request({
      protocol: this.server.protocol, hostname: this.server.hostname, port: this.server.port,
      path: `${this.server.pathname.replace(/\/$/, "")}${pathAndQuery}`, method, agent,
      ca: this.#tls.ca, cert: this.#tls.cert, key: this.#tls.key, rejectUnauthorized: this.#tls.rejectUnauthorized, servername: this.#tls.servername,
      headers: { ...this.#tls.headers, "user-agent": this.userAgent, accept: "application/json", ...headers },
    });
  }

  async request<T = unknown>(opts: RequestOptions): Promise<T> {
    await this.#refreshCredentials();
    const body = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
    const headers: Record<string, string> = body ? { "content-type": opts.contentType ?? "application/json", "content-length": String(body.length) } : {};
    const verb = opts.method;
    return new Promise<T>((resolve, reject) => {
      const req = this.#open(opts.method, `${opts.path}${queryString(opts.query)}`, headers, this.#agent);
      req.setTimeout(opts.timeoutMs ?? 30_000, () => req.destroy(new Error(`${verb} ${opts.path}: timed out`)));
      req.on("error", (err) => { this.#metrics?.apiRequests.inc({ verb, code: "error" }); reject(err); });
      req.on("response", (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          const status = res.statusCode ?? 0;
          this.#metrics?.apiRequests.inc({ verb, code: String(status) });
          const text = Buffer.concat(chunks).toString("utf8");
          let parsed: unknown;
          try { parsed = text ? JSON.parse(text) : undefined; } catch { parsed = text; }
          if (status >= 200 && status < 300) { resolve(parsed as T); return; }
          const st = parsed as { reason?: string; message?: string } | undefined;
          reject(new ApiError(status, st?.reason ?? "Unknown", `${verb} ${opts.path}: ${status} ${st?.message ?? text.slice(0, 300)}`));
        });
      });
      req.end(body);
    });
  }

  /** Server-side apply: the field manager owns exactly the fields in `obj` (forced). */
  apply<T = unknown>(rt: ResourceType, obj: { metadata: { name: string; namespace?: string } }, fieldManager: string, subresource?: string): Promise<T> {
    return this.request<T>({
      method: "PATCH", path: resourcePath(rt, obj.metadata.namespace, obj.metadata.name, subresource),
      query: { fieldManager, force: true }, body: obj, contentType: "application/apply-patch+yaml",
    });
  }

  delete(rt: ResourceType, namespace: string | undefined, name: string, opts: { uid?: string } = {}): Promise<unknown> {
    return this.request({
      method: "DELETE", path: resourcePath(rt, namespace, name),
      body: { kind: "DeleteOptions", apiVersion: "v1", propagationPolicy: "Background", ...(opts.uid ? { preconditions: { uid: opts.uid } } : {}) },
    });
  }

  /**
   * Streams a watch; calls `onEvent` for each JSON line. The stream is aborted when no byte arrives
   * for `idleTimeoutMs` (a stalled watch: a dead connection the TCP stack has not noticed).
   */
  watch(path: string, query: RequestOptions["query"], onEvent: (ev: { type: string; object: Record<string, unknown> }) => void, idleTimeoutMs: number): WatchHandle {
    let req: http.ClientRequest | undefined;
    let aborted = false;
    const done = (async () => {
      await this.#refreshCredentials();
      if (aborted) return;
      await new Promise<void>((resolve, reject) => {
        let stalled: Error | undefined;
        req = this.#open("GET", `${path}${queryString({ ...query, watch: 1 })}`, {}, this.#watchAgent);
        req.setTimeout(idleTimeoutMs, () => { stalled = new StalledWatchError(idleTimeoutMs); req?.destroy(stalled); });
        req.on("error", (err) => (aborted ? resolve() : reject(err)));
        req.on("response", (res) => {
          const status = res.statusCode ?? 0;
          this.#metrics?.apiRequests.inc({ verb: "WATCH", code: String(status) });
          if (status !== 200) {
            let text = "";
            res.on("data", (c: Buffer) => { text += c.toString("utf8"); });
            res.on("end", () => {
              let st: { reason?: string; message?: string } = {};
              try { st = JSON.parse(text) as typeof st; } catch { /* not a Status */ }
              reject(new ApiError(status, st.reason ?? "Unknown", `WATCH ${path}: ${status} ${st.message ?? text.slice(0, 300)}`));
            });
            return;
          }
          let buf = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => {
            buf += chunk;
            let i: number;
            while ((i = buf.indexOf("\n")) >= 0) {
              const line = buf.slice(0, i);
              buf = buf.slice(i + 1);
              if (!line.trim()) continue;
              try {
                onEvent(JSON.parse(line) as { type: string; object: Record<string, unknown> });
              } catch (err) {
                req?.destroy(err as Error);
                return;
              }
            }
          });
          res.on("error", (err) => (aborted ? resolve() : reject(stalled ?? err)));
          res.on("close", () => (stalled && !aborted ? reject(stalled) : resolve()));
        });
        req.end();
      });
    })();
    return { done, abort: () => { aborted = true; req?.destroy(); } };
  }

  close(): void {
    this.#agent.destroy();
    this.#watchAgent.destroy();
  }
}

export class StalledWatchError extends Error {
  constructor(ms: number) {
    super(`watch stalled: no data for ${ms} ms`);
    this.name = "StalledWatchError";
  }
}

/**
 * The in-memory view of every environment's gateway config: documents by source (a Secret name or
 * a file), an index from key hash to its entry, hostnames to environments, and the fast-path
 * overrides from the Redis revocation broadcast. A document replaces its predecessor only when it
 * validates (the last good one is kept otherwise); swaps touch only that document's keys, and a
 * request keeps the objects it resolved, so in-flight requests never see a half-applied change.
 */
import { createHash } from "node:crypto";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { KeyEntry, keyEnvForTier, validateGatewayConfig, type GatewayConfig, type GatewayKeyEntry, type GatewayRoute } from "@crosslogic/crds";
import { parseOnWorker } from "./config-worker.ts";

const checkKey = TypeCompiler.Compile(KeyEntry);
const yieldTurn = () => new Promise<void>((r) => setImmediate(r));
/** Documents larger than this are parsed on a worker and indexed in chunks (applyLarge). */
export const LARGE_DOCUMENT_BYTES = 1024 * 1024;

export interface EnvironmentView {
  readonly source: string;
  readonly doc: GatewayConfig;
  /** `{namespace}/{name}`. */
  readonly id: string;
  readonly routes: ReadonlyMap<string, GatewayRoute>;
  readonly origins: ReadonlySet<string>;
  readonly hostnames: ReadonlySet<string>;
  readonly keyEnv: "live" | "test";
}

/** A suspension heard on the broadcast: it holds until a strictly newer document lifts it. */
interface Suspension { at: number; seen: bigint; liftedAt: number | undefined }

export interface StoreOptions {
  now?: () => number;
  /**
   * How long a broadcast suspension holds at least, even when a newer document says "not
   * suspended" (covers a pre-suspension update still in flight on a lagging watch).
   */
  suspensionHoldMs?: number;
}

export interface KeyView {
  readonly entry: GatewayKeyEntry;
  readonly env: EnvironmentView;
  readonly expiresAtMs: number;
  readonly models: ReadonlySet<string> | undefined;
}

export type ApplyResult = { ok: true; changed: boolean } | { ok: false; errors: string[] };

/** Revocations heard before any document mentions the hash are remembered this long. */
const REVOCATION_MEMORY_MS = 15 * 60_000;

export class ConfigStore {
  #envs = new Map<string, EnvironmentView>();
  #keys = new Map<string, KeyView>();
  #hosts = new Map<string, EnvironmentView>();
  #revoked = new Map<string, number>();
  #suspended = new Map<string, Suspension>();
  #listeners: Array<() => void> = [];
  #generation = 0;
  /** Version of each source's document (Secret resourceVersion, or arrival order). */
  #versions = new Map<string, bigint>();
  #digests = new Map<string, string>();
  #maxVersion = 0n;
  readonly #now: () => number;
  readonly #holdMs: number;

  constructor(options: StoreOptions = {}) {
    this.#now = options.now ?? Date.now;
    this.#holdMs = options.suspensionHoldMs ?? 10_000;
  }

  get generation(): number { return this.#generation; }
  get environments(): Iterable<EnvironmentView> { return this.#envs.values(); }
  get keyCount(): number { return this.#keys.size; }

  onChange(fn: () => void): void { this.#listeners.push(fn); }

  /**
   * Validates and applies one document (JSON text or parsed). Invalid → the last good one stays.
   * `version` (a Secret's resourceVersion) orders documents: one not newer than what this source
   * already applied is stale and ignored. Without it, arrival order is the version.
   */
  apply(source: string, input: string | unknown, version?: string): ApplyResult {
    let v: bigint;
    if (version !== undefined && /^\d{1,30}$/.test(version)) {
      v = BigInt(version);
      const had = this.#versions.get(source);
      if (had !== undefined && v <= had) return { ok: true, changed: false };
    } else v = this.#maxVersion + 1n;
    let doc: unknown = input;
    let digest: string | undefined;
    if (typeof input === "string") {
      digest = createHash("sha256").update(input).digest("hex");
      if (this.#envs.has(source) && this.#digests.get(source) === digest) return { ok: true, changed: false };
      try { doc = JSON.parse(input); } catch { return { ok: false, errors: ["/: not valid JSON"] }; }
    }
    const result = validateGatewayConfig(doc);
    if (!result.ok) return result;
    const cfg = result.value;
    const id = `${cfg.environment.namespace}/${cfg.environment.name}`;
    for (const other of this.#envs.values()) {
      if (other.source !== source && other.id === id) return { ok: false, errors: [`/environment: ${id} is already defined by ${other.source}`] };
    }
    const previous = this.#envs.get(source);
    if (v > this.#maxVersion) this.#maxVersion = v;
    this.#versions.set(source, v);
    if (digest) this.#digests.set(source, digest);
    else if (previous && JSON.stringify(previous.doc) === JSON.stringify(cfg)) return { ok: true, changed: false };
    const view = this.#view(source, cfg, id);
    this.#unindex(previous);
    this.#envs.set(source, view);
    const limits = new Map<string, GatewayKeyEntry["limits"]>();
    const models = new Map<string, ReadonlySet<string>>();
    for (const k of cfg.keys) this.#keys.set(k.hash, this.#keyView(k, view, limits, models));
    this.#afterApply(view, v);
    return { ok: true, changed: true };
  }

  /**
   * Applies a large document without stalling the event loop: hashed and parsed on a worker,
   * validated and indexed in chunks of keys (one per macrotask) into a new index that replaces
   * the current one in one step. Callers serialise applies (the server's queue does).
   */
  async applyLarge(source: string, buf: Buffer, version?: string): Promise<ApplyResult> {
    let v: bigint;
    if (version !== undefined && /^\d{1,30}$/.test(version)) {
      v = BigInt(version);
      const had = this.#versions.get(source);
      if (had !== undefined && v <= had) return { ok: true, changed: false };
    } else v = this.#maxVersion + 1n;
    let digest = "";
    let skeleton: GatewayConfig | undefined;
    const keys: GatewayKeyEntry[] = [];
    const next = new Map<string, KeyView>();
    const limits = new Map<string, GatewayKeyEntry["limits"]>();
    const models = new Map<string, ReadonlySet<string>>();
    let view: EnvironmentView | undefined;
    for await (const m of parseOnWorker(buf)) {
      if (m.type === "digest") {
        digest = m.digest;
        if (this.#envs.has(source) && this.#digests.get(source) === digest) return { ok: true, changed: false };
      } else if (m.type === "error") return { ok: false, errors: m.errors };
      else if (m.type === "skeleton") {
        const r = validateGatewayConfig(m.doc);
        if (!r.ok) return r;
        skeleton = r.value;
        const id = `${skeleton.environment.namespace}/${skeleton.environment.name}`;
        for (const other of this.#envs.values()) {
          if (other.source !== source && other.id === id) return { ok: false, errors: [`/environment: ${id} is already defined by ${other.source}`] };
        }
        view = this.#view(source, skeleton, id);
        // The other documents' keys carry over to the new index (in chunks).
        let n = 0;
        for (const [hash, kv] of this.#keys) {
          if (kv.env.source !== source) next.set(hash, kv);
          if (++n % 10_000 === 0) await yieldTurn();
        }
      } else if (m.type === "keys") {
        for (let i = 0; i < m.keys.length; i++) {
          const k = m.keys[i];
          if (!checkKey.Check(k)) {
            const e = [...checkKey.Errors(k)][0];
            return { ok: false, errors: [`/keys/${keys.length}${e?.path ?? ""}: ${e?.message ?? "invalid"}`] };
          }
          keys.push(k);
          next.set(k.hash, this.#keyView(k, view!, limits, models));
        }
        await yieldTurn();
      }
    }
    if (!skeleton || !view) return { ok: false, errors: ["/: document incomplete"] };
    skeleton.keys = keys;
    // Swap in one step.
    const previous = this.#envs.get(source);
    if (v > this.#maxVersion) this.#maxVersion = v;
    this.#versions.set(source, v);
    this.#digests.set(source, digest);
    if (previous) for (const h of previous.hostnames) if (this.#hosts.get(h) === previous) this.#hosts.delete(h);
    this.#keys = next;
    this.#envs.set(source, view);
    this.#afterApply(view, v);
    return { ok: true, changed: true };
  }

  #view(source: string, cfg: GatewayConfig, id: string): EnvironmentView {
    return {
      source, doc: cfg, id,
      routes: new Map(cfg.routes.map((r) => [r.model, r])),
      origins: new Set(cfg.environment.cors.allowedOrigins),
      hostnames: new Set(cfg.environment.hostnames.map((h) => h.toLowerCase())),
      keyEnv: keyEnvForTier(cfg.environment.tier),
    };
  }

  /** The index entry of a key; identical limits and model lists are shared (100,000 keys mostly repeat a few of each). */
  #keyView(k: GatewayKeyEntry, env: EnvironmentView, limits: Map<string, GatewayKeyEntry["limits"]>, models: Map<string, ReadonlySet<string>>): KeyView {
    const l = k.limits;
    const lid = `${l.requestsPerMinute}/${l.tokensPerMinute}/${l.concurrency}`;
    const shared = limits.get(lid);
    if (shared) k.limits = shared; else limits.set(lid, l);
    let m: ReadonlySet<string> | undefined;
    if (k.models) {
      const mid = k.models.join("\u0000");
      m = models.get(mid);
      if (!m) models.set(mid, (m = new Set(k.models)));
    }
    return { entry: k, env, expiresAtMs: k.expiresAt ? Date.parse(k.expiresAt) : Number.POSITIVE_INFINITY, models: m };
  }

  #afterApply(view: EnvironmentView, v: bigint): void {
    const cfg = view.doc;
    for (const h of view.hostnames) this.#hosts.set(h, view);
    // A broadcast suspension is lifted only by a document strictly newer than everything seen when
    // it arrived (a stale or replayed document never undoes it), and not before the hold time.
    const sus = this.#suspended.get(cfg.tenant.name);
    if (sus) sus.liftedAt = cfg.tenant.suspended ? undefined : v > sus.seen ? sus.liftedAt ?? this.#now() : sus.liftedAt;
    for (const hash of this.#revoked.keys()) if (!this.#keys.has(hash) && this.#revoked.get(hash)! < Date.now() - REVOCATION_MEMORY_MS) this.#revoked.delete(hash);
    this.#changed();
  }

  remove(source: string): boolean {
    const previous = this.#envs.get(source);
    if (!previous) return false;
    this.#unindex(previous);
    this.#envs.delete(source);
    this.#versions.delete(source);
    this.#digests.delete(source);
    this.#changed();
    return true;
  }

  /** Fast path from the revocation broadcast. */
  revokeKey(hash: string): void { this.#revoked.set(hash, Date.now()); this.#changed(); }
  suspendTenant(tenant: string): void {
    this.#suspended.set(tenant, { at: this.#now(), seen: this.#maxVersion, liftedAt: undefined });
    this.#changed();
  }

  key(hash: string): KeyView | undefined { return this.#keys.get(hash); }
  isRevoked(hash: string): boolean { return this.#revoked.has(hash); }
  isSuspended(env: EnvironmentView): boolean {
    if (env.doc.tenant.suspended) return true;
    const sus = this.#suspended.get(env.doc.tenant.name);
    if (!sus) return false;
    if (sus.liftedAt === undefined || this.#now() - sus.at < this.#holdMs) return true;
    this.#suspended.delete(env.doc.tenant.name);
    return false;
  }
  environmentForHost(host: string): EnvironmentView | undefined { return this.#hosts.get(host); }

  #unindex(view: EnvironmentView | undefined): void {
    if (!view) return;
    for (const k of view.doc.keys) if (this.#keys.get(k.hash)?.env === view) this.#keys.delete(k.hash);
    for (const h of view.hostnames) if (this.#hosts.get(h) === view) this.#hosts.delete(h);
  }

  #changed(): void {
    this.#generation++;
    for (const fn of this.#listeners) fn();
  }
}

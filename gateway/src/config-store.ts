/**
 * The in-memory view of every environment's gateway config: documents by source (a Secret name or
 * a file), an index from key hash to its entry, hostnames to environments, and the fast-path
 * overrides from the Redis revocation broadcast. An environment is defined by one document, or by
 * several shards (documents with a `shard` number) together; another document for it waits until
 * the source defining it goes. A document replaces its predecessor only when it validates (the
 * last good one is kept otherwise); swaps touch only that document's keys, and a
 * request keeps the objects it resolved, so in-flight requests never see a half-applied change.
 * Keys are held packed (key-index.ts): a document's keys are not kept as parsed objects.
 */
import { createHash } from "node:crypto";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { KeyEntry, keyEnvForTier, validateGatewayConfig, type GatewayConfig, type GatewayRoute } from "@crosslogic/crds";
import { KeyIndex, KeyTable, KeyTableBuilder, type KeyLimits, type KeyRole } from "./key-index.ts";
import { parseElements, splitKeys } from "./large-document.ts";
import { atOnce, stepwise, yieldTurn } from "./stepwise.ts";

const checkKey = TypeCompiler.Compile(KeyEntry);
/**
 * Documents larger than this are read in pieces (large-document.ts) and, after start, applied
 * across many macrotasks (applyLarge): a synchronous apply costs ~4–5 ms per 256 KB (~1,000 keys)
 * on this machine, twice that when it is busy, and a 1 MB Kubernetes Secret holds ~4,000 keys. At
 * 256 KB, a reload of 100 documents of 1,000 keys stalled the event loop 4–5 ms per document
 * (8–11 ms at worst, bench/gateway/keys.ts); at 64 KB (~250 keys, ~1 ms) those stalls are gone.
 */
export const LARGE_DOCUMENT_BYTES = 64 * 1024;
/** Bytes hashed, and keys parsed, validated and packed, per macrotask in applyLarge (~1–2 ms each here). */
const HASH_STEP = 512 * 1024;
const KEY_BATCH = 500;
/** Index slots copied (by their stored prefix), and keys indexed, per macrotask when a large document is swapped in (~1 ms each). */
const INDEX_COPY_CHUNK = 32768;
const INDEX_SET_CHUNK = 1024;
/** Up to this many index changes (old keys out, new keys in), applyLarge swaps in place, in one step (~2 ms). */
const INDEX_SWAP_IN_PLACE = 8192;

/** A document as kept after indexing: everything but its keys (those live in the key index). */
export type EnvironmentDoc = Omit<GatewayConfig, "keys">;

export interface EnvironmentView {
  readonly source: string;
  readonly doc: EnvironmentDoc;
  readonly keyCount: number;
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
  /** applyLarge swaps in place up to this many index changes (default INDEX_SWAP_IN_PLACE); tests lower it. */
  swapInPlaceMax?: number;
}

/**
 * One key as a request sees it, made on lookup from the packed table (which it keeps alive, so a
 * request keeps what it resolved across swaps).
 */
export class KeyView {
  readonly env: EnvironmentView;
  readonly role: KeyRole;
  /** Shared by the document's keys with the same limits: never mutate. */
  readonly limits: KeyLimits;
  readonly expiresAtMs: number;
  /** Allowed models; undefined means every model of the environment. */
  readonly models: ReadonlySet<string> | undefined;
  readonly #table: KeyTable<EnvironmentView>;
  readonly #row: number;

  constructor(table: KeyTable<EnvironmentView>, row: number) {
    this.env = table.env;
    this.role = table.role(row);
    this.limits = table.limits[table.limitIds[row]!]!;
    this.expiresAtMs = table.expires[row]!;
    const m = table.modelIds[row]!;
    this.models = m === 0 ? undefined : table.modelSets[m - 1];
    this.#table = table;
    this.#row = row;
  }

  /** The ApiKey object's name (decoded on demand: only metering needs it). */
  get name(): string { return this.#table.name(this.#row); }
  /** SHA-256 of the key, lowercase hex. */
  get hash(): string { return this.#table.hash(this.#row); }
}
const envId = (cfg: EnvironmentDoc) => `${cfg.environment.namespace}/${cfg.environment.name}`;
const keyView = (table: KeyTable<EnvironmentView>, row: number) => new KeyView(table, row);
const found = () => true;

/**
 * `waitingFor`: the document's environment is defined by another source (and they are not both
 * shards); this one is kept and takes over when that source is removed (see takeUnblocked).
 */
export type ApplyResult = { ok: true; changed: boolean; waitingFor?: string } | { ok: false; errors: string[] };

/** A document kept until the source that defines its environment is removed. */
export interface WaitingDocument { source: string; input: string | Buffer; version: string | undefined }

/** Revocations heard before any document mentions the hash are remembered this long. */
const REVOCATION_MEMORY_MS = 15 * 60_000;

export class ConfigStore {
  #envs = new Map<string, EnvironmentView>();
  #index = new KeyIndex<EnvironmentView>();
  /** Changes to the live index (an applyLarge indexing off to the side checks nobody else changed it). */
  #indexEpoch = 0;
  /** Source → id of its key table in the index. */
  #tableIds = new Map<string, number>();
  #hosts = new Map<string, EnvironmentView>();
  /** The documents in force for each environment id: one, or its shards. */
  #byId = new Map<string, Set<EnvironmentView>>();
  #revoked = new Map<string, number>();
  #suspended = new Map<string, Suspension>();
  #listeners: Array<() => void> = [];
  #generation = 0;
  /** Version of each source's document (Secret resourceVersion, or arrival order). */
  #versions = new Map<string, bigint>();
  #digests = new Map<string, string>();
  /** Documents whose environment another source defines, by source, with that environment's id. */
  #waiting = new Map<string, WaitingDocument & { id: string; shard: boolean }>();
  #maxVersion = 0n;
  readonly #now: () => number;
  readonly #holdMs: number;
  readonly #swapInPlaceMax: number;

  constructor(options: StoreOptions = {}) {
    this.#now = options.now ?? Date.now;
    this.#holdMs = options.suspensionHoldMs ?? 10_000;
    this.#swapInPlaceMax = options.swapInPlaceMax ?? INDEX_SWAP_IN_PLACE;
  }

  get generation(): number { return this.#generation; }
  get environments(): Iterable<EnvironmentView> { return this.#envs.values(); }
  get keyCount(): number { return this.#index.size; }

  onChange(fn: () => void): void { this.#listeners.push(fn); }

  /**
   * Validates and applies one document (JSON text, its UTF-8 bytes, or parsed). Invalid → the last good one stays.
   * `version` (a Secret's resourceVersion) orders documents: one not newer than what this source
   * already applied is stale and ignored. Without it, arrival order is the version. Text larger
   * than LARGE_DOCUMENT_BYTES is read in pieces, never parsed whole (the first load; later,
   * callers use applyLarge, which does the same across many macrotasks); as bytes, it never
   * becomes one ~25 MB string on the heap either.
   */
  apply(source: string, input: string | unknown, version?: string, replacing?: string): ApplyResult {
    const v = this.#version(source, version);
    if (v === undefined) return { ok: true, changed: false };
    let doc: unknown = input;
    let digest: string | undefined;
    if (typeof input === "string" || Buffer.isBuffer(input)) {
      digest = createHash("sha256").update(input).digest("hex");
      if (this.#envs.has(source) && this.#digests.get(source) === digest) return { ok: true, changed: false };
      if (input.length > LARGE_DOCUMENT_BYTES) {
        const r = atOnce(this.#readLarge(source, typeof input === "string" ? Buffer.from(input) : input, replacing));
        if ("waitingFor" in r) return this.#wait(source, r.waitingFor, r.shard, input, version);
        if (!r.ok) return r;
        this.#swapKeys(source, r.table);
        this.#commit(r.table.env, v, digest);
        return { ok: true, changed: true };
      }
      try { doc = JSON.parse(typeof input === "string" ? input : input.toString("utf8")); } catch { return { ok: false, errors: ["/: not valid JSON"] }; }
    }
    const result = validateGatewayConfig(doc);
    if (!result.ok) return result;
    const { keys, ...cfg } = result.value;
    const holder = this.#holder(source, envId(cfg), cfg.shard !== undefined, replacing);
    if (holder) return typeof input === "string" || Buffer.isBuffer(input) ? this.#wait(source, holder, cfg.shard !== undefined, input, version) : { ok: false, errors: [`/environment: ${envId(cfg)} is already defined by ${holder.source}`] };
    if (digest === undefined) {
      // A parsed document (tests, callers without text): the digest of its canonical JSON.
      if (v > this.#maxVersion) this.#maxVersion = v;
      this.#versions.set(source, v);
      digest = `object:${createHash("sha256").update(JSON.stringify(result.value)).digest("hex")}`;
      if (this.#envs.has(source) && this.#digests.get(source) === digest) return { ok: true, changed: false };
    }
    const view = this.#view(source, cfg, keys.length);
    const builder = new KeyTableBuilder(keys.length);
    for (const k of keys) builder.add(k);
    // Synchronous: the previous document's keys leave and the new ones arrive in one step.
    this.#swapKeys(source, new KeyTable(view, builder));
    this.#commit(view, v, digest);
    return { ok: true, changed: true };
  }

  /**
   * Applies a large document without stalling the event loop: hashed, scanned, and its keys
   * parsed, validated and packed in batches, one step per macrotask; then indexed in chunks into
   * a new index that replaces the current one in one step. Callers serialise applies (the
   * server's queue does).
   */
  async applyLarge(source: string, buf: Buffer, version?: string, replacing?: string): Promise<ApplyResult> {
    const v = this.#version(source, version);
    if (v === undefined) return { ok: true, changed: false };
    const hash = createHash("sha256");
    for (let at = 0; at < buf.length; at += HASH_STEP) {
      hash.update(buf.subarray(at, at + HASH_STEP));
      await yieldTurn();
    }
    const digest = hash.digest("hex");
    if (this.#envs.has(source) && this.#digests.get(source) === digest) return { ok: true, changed: false };
    const r = await stepwise(this.#readLarge(source, buf, replacing));
    if ("waitingFor" in r) return this.#wait(source, r.waitingFor, r.shard, buf, version);
    if (!r.ok) return r;
    const oldId = this.#tableIds.get(source);
    if (r.table.size + (oldId === undefined ? 0 : this.#index.table(oldId)!.size) <= this.#swapInPlaceMax) {
      this.#swapKeys(source, r.table);
      this.#commit(r.table.env, v, digest);
      return { ok: true, changed: true };
    }
    // A new index built off to the side, in chunks; requests keep using the current one until the swap.
    const epoch = this.#indexEpoch;
    const next = await stepwise(this.#index.without(oldId, r.table.size, INDEX_COPY_CHUNK));
    const id = next.register(r.table);
    for (let row = 0; row < r.table.size; row++) {
      next.set(id, row);
      if (row % INDEX_SET_CHUNK === INDEX_SET_CHUNK - 1) await yieldTurn();
    }
    if (this.#indexEpoch === epoch) {
      this.#index = next;
      this.#tableIds.set(source, id);
    } else {
      // Someone changed the live index meanwhile (callers should serialise applies): redo it there.
      this.#swapKeys(source, r.table);
    }
    this.#commit(r.table.env, v, digest);
    return { ok: true, changed: true };
  }

  /** The version a document for `source` gets, or undefined when it is stale. */
  #version(source: string, version: string | undefined): bigint | undefined {
    if (version === undefined || !/^\d{1,30}$/.test(version)) return this.#maxVersion + 1n;
    const v = BigInt(version);
    const had = this.#versions.get(source);
    return had !== undefined && v <= had ? undefined : v;
  }

  /**
   * Another source that defines environment `id`, unless both are shards (`leaving` is about to be
   * removed and does not count).
   */
  #holder(source: string, id: string, shard: boolean, leaving: string | undefined): EnvironmentView | undefined {
    for (const other of this.#envs.values()) {
      if (other.source !== source && other.source !== leaving && other.id === id && !(shard && other.doc.shard !== undefined)) return other;
    }
    return undefined;
  }

  /**
   * Keeps a document whose environment `holder` defines (one environment, one source at a time:
   * two would mix their keys and settings). It takes over when the holder is removed: a renamed
   * config Secret is written before the old one is deleted, and is applied without a gap.
   */
  #wait(source: string, holder: EnvironmentView, shard: boolean, input: string | Buffer, version: string | undefined): ApplyResult {
    // Bytes may be lent by the caller (reused once applied): keep a copy.
    this.#waiting.set(source, { source, id: holder.id, shard, input: typeof input === "string" ? input : Buffer.from(input), version });
    return { ok: true, changed: false, waitingFor: holder.source };
  }

  /**
   * The waiting documents nothing holds back any more, or nothing but `leaving` (a source about to
   * be removed: apply them with `replacing: leaving`, then remove it, and the environment's keys
   * never leave in between). Taken: they are no longer waiting.
   */
  takeUnblocked(leaving?: string): WaitingDocument[] {
    const out: WaitingDocument[] = [];
    if (this.#waiting.size === 0) return out;
    for (const w of this.#waiting.values()) {
      if (this.#holder(w.source, w.id, w.shard, leaving)) continue;
      this.#waiting.delete(w.source);
      out.push({ source: w.source, input: w.input, version: w.version });
    }
    return out;
  }

  /**
   * Reads a large document into a key table without parsing it whole: scanned for its keys, the
   * rest parsed and validated, then the keys in batches. Yields between steps.
   */
  *#readLarge(source: string, buf: Buffer, replacing: string | undefined): Generator<void, { ok: true; table: KeyTable<EnvironmentView> } | { ok: false; errors: string[] } | { ok: false; waitingFor: EnvironmentView; shard: boolean }> {
    const split = yield* splitKeys(buf);
    const invalidJson = { ok: false as const, errors: ["/: not valid JSON"] };
    if (!split) return invalidJson;
    let doc: unknown;
    try { doc = JSON.parse(split.rest); } catch { return invalidJson; }
    const r = validateGatewayConfig(doc);
    if (!r.ok) return r;
    const { keys: _none, ...cfg } = r.value;
    const holder = this.#holder(source, envId(cfg), cfg.shard !== undefined, replacing);
    if (holder) return { ok: false, waitingFor: holder, shard: cfg.shard !== undefined };
    const view = this.#view(source, cfg, split.count);
    const builder = new KeyTableBuilder(split.count);
    for (let from = 0; from < split.count; from += KEY_BATCH) {
      yield;
      const keys = parseElements(buf, split, from, Math.min(split.count, from + KEY_BATCH));
      if (!keys) return invalidJson;
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i];
        if (!checkKey.Check(k)) {
          const e = [...checkKey.Errors(k)][0];
          return { ok: false, errors: [`/keys/${from + i}${e?.path ?? ""}: ${e?.message ?? "invalid"}`] };
        }
        builder.add(k);
      }
    }
    return { ok: true, table: new KeyTable(view, builder) };
  }

  /** Makes `view` its source's current document (its keys are already indexed). */
  #commit(view: EnvironmentView, v: bigint, digest: string): void {
    const previous = this.#envs.get(view.source);
    this.#waiting.delete(view.source);
    if (v > this.#maxVersion) this.#maxVersion = v;
    this.#versions.set(view.source, v);
    this.#digests.set(view.source, digest);
    this.#unhost(previous);
    this.#unindex(previous);
    this.#envs.set(view.source, view);
    let views = this.#byId.get(view.id);
    if (!views) this.#byId.set(view.id, views = new Set());
    views.add(view);
    this.#afterApply(view, v);
  }

  /**
   * Replaces `source`'s key table in the live index, synchronously (removes the old rows, indexes
   * the new ones; none when `table` is undefined), and records which table is the source's.
   */
  #swapKeys(source: string, table: KeyTable<EnvironmentView> | undefined): void {
    const index = this.#index;
    this.#indexEpoch++;
    const oldId = this.#tableIds.get(source);
    const old = oldId === undefined ? undefined : index.table(oldId);
    if (old) {
      for (let row = 0; row < old.size; row++) index.delete(oldId!, row);
      index.unregister(oldId!);
    }
    if (!table) { this.#tableIds.delete(source); return; }
    const id = index.register(table);
    index.reserve(table.size);
    for (let row = 0; row < table.size; row++) index.set(id, row);
    this.#tableIds.set(source, id);
  }

  #view(source: string, cfg: EnvironmentDoc, keyCount: number): EnvironmentView {
    return {
      source, doc: cfg, id: envId(cfg), keyCount,
      routes: new Map(cfg.routes.map((r) => [r.model, r])),
      origins: new Set(cfg.environment.cors.allowedOrigins),
      hostnames: new Set(cfg.environment.hostnames.map((h) => h.toLowerCase())),
      keyEnv: keyEnvForTier(cfg.environment.tier),
    };
  }

  #afterApply(view: EnvironmentView, v: bigint): void {
    const cfg = view.doc;
    for (const h of view.hostnames) this.#hosts.set(h, view);
    // A broadcast suspension is lifted only by a document strictly newer than everything seen when
    // it arrived (a stale or replayed document never undoes it), and not before the hold time.
    const sus = this.#suspended.get(cfg.tenant.name);
    if (sus) sus.liftedAt = cfg.tenant.suspended ? undefined : v > sus.seen ? sus.liftedAt ?? this.#now() : sus.liftedAt;
    for (const hash of this.#revoked.keys()) if (!this.has(hash) && this.#revoked.get(hash)! < Date.now() - REVOCATION_MEMORY_MS) this.#revoked.delete(hash);
    this.#changed();
  }

  remove(source: string): boolean {
    this.#waiting.delete(source);
    const previous = this.#envs.get(source);
    if (!previous) return false;
    this.#swapKeys(source, undefined);
    this.#unhost(previous);
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

  /** The key with this SHA-256 (lowercase hex). */
  key(hash: string): KeyView | undefined { return this.#index.get(hash, keyView); }
  has(hash: string): boolean { return this.#index.get(hash, found) === true; }
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
    const views = this.#byId.get(view.id);
    if (views?.delete(view) && views.size === 0) this.#byId.delete(view.id);
  }

  /** Drops `view`'s hostnames, or points them at another document that has them (a shard of the same environment). */
  #unhost(view: EnvironmentView | undefined): void {
    if (!view) return;
    for (const h of view.hostnames) {
      if (this.#hosts.get(h) !== view) continue;
      const other = [...this.#byId.get(view.id) ?? []].find((v) => v !== view && v.hostnames.has(h));
      if (other) this.#hosts.set(h, other); else this.#hosts.delete(h);
    }
  }

  #changed(): void {
    this.#generation++;
    for (const fn of this.#listeners) fn();
  }
}

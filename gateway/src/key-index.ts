/**
 * The compact in-memory form of API keys (100,000 keys must fit, with the rest of the gateway, in
 * 200 MB RSS, and a reload must not stall the event loop > 10 ms). Nothing per key lives on the
 * JavaScript heap: a document's keys are packed into one KeyTable of typed arrays (raw SHA-256,
 * expiry, role, indexes into the table's few distinct limits and model sets, UTF-8 names), and
 * the hash → key index is an open-addressing table of three typed arrays. So the GC neither
 * copies nor marks anything per key, and ~100 bytes per key stay resident instead of ~400 on the
 * heap (plus the garbage-collector headroom that scales with it).
 */
import type { GatewayKeyEntry } from "@crosslogic/crds";

export type KeyRole = GatewayKeyEntry["role"];
export type KeyLimits = GatewayKeyEntry["limits"];

const ROLES: readonly KeyRole[] = ["admin", "developer", "read-only"];
const ROLE_CODE: Record<KeyRole, number> = { admin: 0, developer: 1, "read-only": 2 };
const DIGEST = 32;
/** Lowercase hex digit → value; -1 otherwise. */
const NIBBLE = new Int8Array(128).fill(-1);
for (let c = 0; c < 16; c++) NIBBLE["0123456789abcdef".charCodeAt(c)] = c;
const nibble = (hex: string, i: number) => { const c = hex.charCodeAt(i); return c < 128 ? NIBBLE[c]! : -1; };
/** The digest being looked up (lookups are synchronous: one buffer serves them all). */
const SCRATCH = Buffer.alloc(DIGEST);

/** The keys of one document, immutable once built. A KeyView keeps its table alive. */
export class KeyTable<E> {
  readonly env: E;
  readonly size: number;
  readonly digests: Buffer;
  readonly expires: Float64Array;
  readonly roles: Uint8Array;
  /** Index into `limits`. */
  readonly limitIds: Uint32Array;
  /** 0: every model; i: `modelSets[i - 1]`. */
  readonly modelIds: Uint32Array;
  readonly limits: readonly KeyLimits[];
  readonly modelSets: ReadonlyArray<ReadonlySet<string>>;
  readonly #names: Buffer;
  readonly #nameEnds: Uint32Array;

  constructor(env: E, b: KeyTableBuilder) {
    this.env = env;
    this.size = b.size;
    // A builder's arrays are sized for the expected count (copied when it was wrong) and its
    // name bytes estimated (copied when more than a quarter is unused).
    const exact = b.size === b.expires.length;
    this.digests = exact ? b.digests : Buffer.from(b.digests.subarray(0, b.size * DIGEST));
    this.expires = exact ? b.expires : b.expires.slice(0, b.size);
    this.roles = exact ? b.roles : b.roles.slice(0, b.size);
    this.limitIds = exact ? b.limitIds : b.limitIds.slice(0, b.size);
    this.modelIds = exact ? b.modelIds : b.modelIds.slice(0, b.size);
    this.#nameEnds = exact ? b.nameEnds : b.nameEnds.slice(0, b.size);
    this.limits = b.limits;
    this.modelSets = b.modelSets;
    this.#names = b.nameBytes * 4 >= b.names.length * 3 ? b.names.subarray(0, b.nameBytes) : Buffer.from(b.names.subarray(0, b.nameBytes));
  }

  role(row: number): KeyRole { return ROLES[this.roles[row]!]!; }
  name(row: number): string { return this.#names.toString("utf8", row === 0 ? 0 : this.#nameEnds[row - 1], this.#nameEnds[row]); }
  hash(row: number): string { return this.digests.toString("hex", row * DIGEST, row * DIGEST + DIGEST); }
}

/**
 * Packs validated key entries one by one (a large document arrives in chunks). Identical limits
 * and model lists are stored once per table.
 */
export class KeyTableBuilder {
  size = 0;
  digests: Buffer;
  expires: Float64Array;
  roles: Uint8Array;
  limitIds: Uint32Array;
  modelIds: Uint32Array;
  names: Buffer;
  nameEnds: Uint32Array;
  nameBytes = 0;
  readonly limits: KeyLimits[] = [];
  readonly modelSets: Array<ReadonlySet<string>> = [];
  readonly #limitIndex = new Map<string, number>();
  readonly #modelIndex = new Map<string, number>();

  constructor(expected: number) {
    const n = Math.max(1, expected);
    this.digests = Buffer.allocUnsafeSlow(n * DIGEST);
    this.expires = new Float64Array(n);
    this.roles = new Uint8Array(n);
    this.limitIds = new Uint32Array(n);
    this.modelIds = new Uint32Array(n);
    this.names = Buffer.allocUnsafeSlow(n * 24);
    this.nameEnds = new Uint32Array(n);
  }

  add(k: GatewayKeyEntry): void {
    if (this.size === this.expires.length) this.#grow(this.size * 2);
    const row = this.size++;
    this.digests.write(k.hash, row * DIGEST, DIGEST, "hex");
    this.expires[row] = k.expiresAt ? Date.parse(k.expiresAt) : Number.POSITIVE_INFINITY;
    this.roles[row] = ROLE_CODE[k.role];
    const l = k.limits;
    const lid = `${l.requestsPerMinute}/${l.tokensPerMinute}/${l.concurrency}`;
    let li = this.#limitIndex.get(lid);
    if (li === undefined) {
      li = this.limits.push({ requestsPerMinute: l.requestsPerMinute, tokensPerMinute: l.tokensPerMinute, concurrency: l.concurrency }) - 1;
      this.#limitIndex.set(lid, li);
    }
    this.limitIds[row] = li;
    let mi = 0;
    if (k.models) {
      const mid = k.models.join("\u0000");
      mi = this.#modelIndex.get(mid) ?? 0;
      if (mi === 0) this.#modelIndex.set(mid, (mi = this.modelSets.push(new Set(k.models))));
    }
    this.modelIds[row] = mi;
    const len = Buffer.byteLength(k.name);
    if (this.nameBytes + len > this.names.length) {
      const bigger = Buffer.allocUnsafeSlow(Math.max(this.names.length * 2, this.nameBytes + len));
      this.names.copy(bigger, 0, 0, this.nameBytes);
      this.names = bigger;
    }
    this.nameBytes += this.names.write(k.name, this.nameBytes, len, "utf8");
    this.nameEnds[row] = this.nameBytes;
  }

  #grow(n: number): void {
    const digests = Buffer.allocUnsafeSlow(n * DIGEST);
    this.digests.copy(digests, 0, 0, this.size * DIGEST);
    this.digests = digests;
    const widen = <T extends Float64Array | Uint8Array | Uint32Array>(a: T, make: (n: number) => T): T => { const b = make(n); b.set(a); return b; };
    this.expires = widen(this.expires, (m) => new Float64Array(m));
    this.roles = widen(this.roles, (m) => new Uint8Array(m));
    this.limitIds = widen(this.limitIds, (m) => new Uint32Array(m));
    this.modelIds = widen(this.modelIds, (m) => new Uint32Array(m));
    this.nameEnds = widen(this.nameEnds, (m) => new Uint32Array(m));
  }
}

/**
 * SHA-256 → (table, row), linear probing, at most half full. A slot holds the digest's first 32
 * bits, big-endian (probes and rehashes rarely touch the tables), the table's id (0: empty) and
 * the row. Lookups take the hex form the hot path already has (SHA-256 to hex is faster in Node
 * than to a Buffer) and compare it with the packed bytes digit by digit, strictly lowercase like
 * the Map it replaced: ~240 ns a hit, ~50 ns a miss here (decoding into a buffer first: ~500 and
 * ~240; a Map of hex strings: ~45 with the string's hash already computed, but ~200 bytes more per
 * key on the heap).
 * When two documents hold the same hash, the one indexed last wins (as a Map.set would).
 */
export class KeyIndex<E> {
  #hashes: Uint32Array;
  #tables: Uint32Array;
  #rows: Uint32Array;
  #mask: number;
  #size = 0;
  /** Table ids → tables; ids of removed tables are reused. */
  #registry: Array<KeyTable<E> | undefined> = [undefined];
  #free: number[] = [];

  constructor(capacity = 0) {
    let c = 1024;
    while (c < capacity) c *= 2;
    this.#hashes = new Uint32Array(c);
    this.#tables = new Uint32Array(c);
    this.#rows = new Uint32Array(c);
    this.#mask = c - 1;
  }

  get size(): number { return this.#size; }
  get capacity(): number { return this.#mask + 1; }

  /**
   * A new index with every entry of this one except table `drop`'s, with room for `more` keys,
   * built off to the side: the generator yields every `chunk` slots and returns the index. Kept
   * entries are copied by their stored prefix (no digest is read, none compared).
   */
  *without(drop: number | undefined, more: number, chunk: number): Generator<void, KeyIndex<E>> {
    // Sized for what stays (the dropped table's rows are not copied) plus `more`: a 100,000-key
    // document replacing itself needs 262,144 slots (3 MB), not twice that.
    const dropped = drop === undefined ? 0 : this.#registry[drop]?.size ?? 0;
    const c = new KeyIndex<E>((Math.max(0, this.#size - dropped) + more) * 2);
    c.#registry = this.#registry.slice();
    c.#free = this.#free.slice();
    if (drop !== undefined) c.unregister(drop);
    const [hashes, tables, rows] = [this.#hashes, this.#tables, this.#rows];
    for (let i = 0; i < tables.length; i++) {
      if (i % chunk === chunk - 1) yield;
      const t = tables[i]!;
      if (t === 0 || t === drop) continue;
      // Some of the dropped table's hashes may be held by other tables (not dropped): grow if so.
      if ((c.#size + 1) * 2 > c.#mask + 1) c.reserve(1);
      let j = hashes[i]! & c.#mask;
      while (c.#tables[j] !== 0) j = (j + 1) & c.#mask;
      c.#hashes[j] = hashes[i]!;
      c.#tables[j] = t;
      c.#rows[j] = rows[i]!;
      c.#size++;
    }
    return c;
  }

  register(table: KeyTable<E>): number {
    const id = this.#free.pop() ?? this.#registry.push(undefined) - 1;
    this.#registry[id] = table;
    return id;
  }
  /** Call after every row of the table was removed. */
  unregister(id: number): void {
    this.#registry[id] = undefined;
    this.#free.push(id);
  }
  table(id: number): KeyTable<E> | undefined { return this.#registry[id]; }

  /** Grows (rehashing from the stored 32-bit prefixes only) so that `more` inserts keep it at most half full. */
  reserve(more: number): void {
    const need = (this.#size + more) * 2;
    if (need <= this.#mask + 1) return;
    let c = (this.#mask + 1) * 2;
    while (c < need) c *= 2;
    const [hashes, tables, rows] = [this.#hashes, this.#tables, this.#rows];
    this.#hashes = new Uint32Array(c);
    this.#tables = new Uint32Array(c);
    this.#rows = new Uint32Array(c);
    this.#mask = c - 1;
    for (let i = 0; i < tables.length; i++) {
      if (tables[i] === 0) continue;
      let j = hashes[i]! & this.#mask;
      while (this.#tables[j] !== 0) j = (j + 1) & this.#mask;
      this.#hashes[j] = hashes[i]!;
      this.#tables[j] = tables[i]!;
      this.#rows[j] = rows[i]!;
    }
  }

  /** The slot holding `digest` (32 bytes at `offset`), or -1. */
  #find(digest: Buffer, offset: number): number {
    const h = digest.readUInt32BE(offset);
    for (let i = h & this.#mask; ; i = (i + 1) & this.#mask) {
      const t = this.#tables[i]!;
      if (t === 0) return -1;
      if (this.#hashes[i] !== h) continue;
      const d = this.#registry[t]!.digests;
      const r = this.#rows[i]! * DIGEST;
      let k = 4;
      while (k < DIGEST && d.readUInt32BE(r + k) === digest.readUInt32BE(offset + k)) k += 4;
      if (k === DIGEST) return i;
    }
  }

  /** The slot holding the SHA-256 written as 64 lowercase hex digits, or -1 (also for anything else). */
  #findHex(hex: string): number {
    if (hex.length !== 2 * DIGEST) return -1;
    const d = SCRATCH;
    for (let k = 0; k < DIGEST; k++) {
      const hi = nibble(hex, 2 * k), lo = nibble(hex, 2 * k + 1);
      if (hi < 0 || lo < 0) return -1;
      d[k] = (hi << 4) | lo;
    }
    return this.#find(d, 0);
  }

  /** Looks a SHA-256 (lowercase hex) up; `fn` gets the table and row (no allocation unless `fn` allocates). */
  get<R>(hex: string, fn: (table: KeyTable<E>, row: number) => R): R | undefined {
    const i = this.#findHex(hex);
    return i < 0 ? undefined : fn(this.#registry[this.#tables[i]!]!, this.#rows[i]!);
  }

  /** Indexes row `row` of table `id` (replacing whatever held the same hash). Call reserve first. */
  set(id: number, row: number): void {
    const digests = this.#registry[id]!.digests;
    const i = this.#find(digests, row * DIGEST);
    if (i >= 0) { this.#tables[i] = id; this.#rows[i] = row; return; }
    if ((this.#size + 1) * 2 > this.#mask + 1) this.reserve(1);
    const h = digests.readUInt32BE(row * DIGEST);
    let j = h & this.#mask;
    while (this.#tables[j] !== 0) j = (j + 1) & this.#mask;
    this.#hashes[j] = h;
    this.#tables[j] = id;
    this.#rows[j] = row;
    this.#size++;
  }

  /** Removes row `row` of table `id`, unless a later document took the hash over. */
  delete(id: number, row: number): void {
    let i = this.#find(this.#registry[id]!.digests, row * DIGEST);
    if (i < 0 || this.#tables[i] !== id || this.#rows[i] !== row) return;
    // Backward-shift deletion: pull later members of the probe run into the hole.
    const mask = this.#mask;
    for (let j = (i + 1) & mask; this.#tables[j] !== 0; j = (j + 1) & mask) {
      const home = this.#hashes[j]! & mask;
      // Movable when its home is not in the cyclic range (i, j].
      if (i <= j ? home <= i || home > j : home <= i && home > j) {
        this.#hashes[i] = this.#hashes[j]!;
        this.#tables[i] = this.#tables[j]!;
        this.#rows[i] = this.#rows[j]!;
        i = j;
      }
    }
    this.#tables[i] = 0;
    this.#size--;
  }

  /** Bytes held by the slot arrays. */
  get byteLength(): number { return this.#hashes.byteLength + this.#tables.byteLength + this.#rows.byteLength; }
}

/**
 * The four rate-limit layers (global, tenant, environment, key), the key's token and concurrency
 * limits, the per-address limits (stricter for generation endpoints), and graduated response,
 * decided by ONE Redis script call (EVALSHA; ioredis reloads the script on NOSCRIPT) on Redis time;
 * settled by at most one more, off the response path. Calls carry every request of one event-loop
 * turn (up to 64: one admission call and one settle call per turn, however many requests), and
 * are written straight to the connection (no ioredis auto-pipelining: the batching is here). When Redis fails
 * or exceeds REDIS_TIMEOUT_MS, REDIS_FAILURE_POLICY decides: fail-closed refuses (503), fail-open
 * admits without limits; both are counted in metrics.
 *
 * Pre-admission: a (key, client address) whose requests arrive close together (≥ 4/s) and whose
 * every limit is large (each at least 50× what a replica may hold) gets requests admitted ahead of
 * time, in the same batched script calls, as "tickets": each ticket is a complete admission by
 * Redis — every layer's request and token buckets spent, a concurrency slot taken — made at most
 * TICKET_MAX_AGE_MS before a request uses it. A request that finds a ticket is admitted without
 * waiting for Redis (the round trip leaves the request path); the pool is topped up in the
 * background. A replica holds at most 1/50 of any limit (and 1/8 of a concurrency limit, 64
 * tickets at most) per pool, so totals stay exact — nothing is ever admitted that Redis did not
 * admit — and what a replica holds unused is handed back after TICKET_MAX_AGE_MS (the request by
 * refund.lua; the tokens and the slot as a settle with nothing used). Small limits, refusals, forced violations and keyless requests
 * always go to Redis one by one. A prefetch Redis refuses counts as no violation and
 * stops prefetching for that pool for a second; when the Redis connection drops, tickets are
 * discarded (fail-closed then refuses at once).
 */
import fs from "node:fs";
import type { Redis } from "ioredis";

export type Layer =
  | "global" | "tenant" | "environment" | "key" | "client" | "client-generation"
  | "blocked" | "concurrency" | "tokens" | "tenant-tokens" | "environment-tokens";

export interface LimitSettings {
  globalRpm: number;
  clientRpm: number;
  clientGenerationRpm: number;
  leaseTtlMs: number;
  violationWindowMs: number;
  delayAfter: number;
  blockAfter: number;
  maxDelayMs: number;
  blockMs: number;
  failurePolicy: "fail-closed" | "fail-open";
  keyPrefix: string;
}

export interface KeyLimits {
  hash: string; tenant: string; environment: string;
  tenantRpm: number; environmentRpm: number; rpm: number;
  /** Tokens per minute (0: none) of the tenant, the environment and the key. */
  tenantTpm: number; environmentTpm: number; tpm: number;
  concurrency: number;
  reserve: number; leaseId: string;
}

export interface AdmitInput {
  /** Address bucket id (IPv4, or IPv6 /56 prefix). */
  client: string;
  generation: boolean;
  key?: KeyLimits;
  /** Count this request as a violation (failed authentication) without admitting anything. */
  forceViolation?: boolean;
}

export interface Decision {
  admitted: boolean;
  /** The layer that refused (absent when admitted). */
  layer?: Layer;
  retryAfterMs: number;
  /** The tightest request layer: its requests/min, what is left, ms until full. 0 when unknown. */
  limit: number;
  remaining: number;
  resetMs: number;
  /** Graduated response: delay before answering the refusal. */
  delayMs: number;
  newlyBlocked: boolean;
  /** Redis failed; the decision follows the failure policy. */
  degraded?: boolean;
  lease?: Lease;
}

export interface Lease {
  readonly id: string; readonly set: string; readonly tenantKey: string; readonly environmentKey: string; readonly keyKey: string;
  readonly tenantTpm: number; readonly environmentTpm: number; readonly tpm: number; readonly reserved: number;
}

export interface LimiterEvents {
  redisFailure(op: "admit" | "settle" | "refresh"): void;
  /** Pre-admission: tickets used by a request, handed back unused, or discarded when the connection dropped. */
  tickets?(outcome: "used" | "refunded" | "discarded", n: number): void;
}

/** Pre-admission (see the module comment). */
const PREFETCH_MAX = 64;
/** A replica holds at most 1/PREFETCH_SHARE of any request or token limit per pool. */
const PREFETCH_SHARE = 50;
/** Tickets older than this are handed back unused. */
export const TICKET_MAX_AGE_MS = 500;
/** Requests of one pool further apart than this never start prefetching (≥ 4 requests/s do). */
const PREFETCH_GAP_MS = 250;
/** A pool holds about this long's worth of its requests. */
const PREFETCH_HORIZON_MS = 100;
const GAP_CEILING_MS = 1000;
/** After Redis refused a prefetch (a limit is near), the pool admits one by one for this long. */
const PREFETCH_QUIET_MS = 1000;
const POOL_FORGET_MS = 5000;
/**
 * Pools tracked at once (each ~200 bytes plus its Redis key names once it prefetches): traffic
 * from more (key, address) pairs than this — many addresses, say — is admitted one by one.
 */
const MAX_POOLS = 10_000;

interface Ticket {
  /** The Redis keys it was taken from (its pool's, when it was granted). */
  readonly keys: readonly string[];
  readonly at: number; readonly epoch: number; readonly reserve: number;
  readonly limit: number; readonly remaining: number; readonly resetAt: number; readonly lease: Lease | undefined; readonly leaseId: string;
}

/** Pre-admitted requests of one (key, client address, endpoint kind). */
interface Pool {
  limits: KeyLimits;
  readonly generation: boolean;
  /** KEYS of this pool's admissions: global, tenant, environment, key, concurrency set, address (built when it first prefetches). */
  keys: readonly string[] | undefined;
  readonly tickets: Ticket[];
  pending: number;
  target: number;
  reserve: number;
  epoch: number;
  lastSeen: number;
  /** Moving average of the time between this pool's requests (ms). */
  gap: number;
  quietUntil: number;
}

/** Whether an admission of `k` needs settling: a concurrency slot or token reservations. */
function leased(k: KeyLimits): boolean {
  return k.concurrency > 0 || k.tpm > 0 || k.tenantTpm > 0 || k.environmentTpm > 0;
}

/** The lease of the admission whose KEYS start at `at` of a batch (layout: #keyNames). */
function leaseAt(keys: readonly string[], at: number, k: KeyLimits, id: string): Lease {
  return {
    id, set: keys[at + 4]!, tenantKey: keys[at + 1]!, environmentKey: keys[at + 2]!, keyKey: keys[at + 3]!,
    tenantTpm: k.tenantTpm, environmentTpm: k.environmentTpm, tpm: k.tpm, reserved: k.reserve,
  };
}

function newGroup(lease: Lease): SettleGroup {
  return { keys: [lease.set, lease.tenantKey, lease.environmentKey, lease.keyKey], caps: [lease.tenantTpm, lease.environmentTpm, lease.tpm], delta: [0, 0, 0], ids: [] };
}

/** How many tickets a pool may hold: 0–1 means none (exact, one by one). */
function prefetchCap(s: LimitSettings, k: KeyLimits, generation: boolean, reserve: number): number {
  let cap = PREFETCH_MAX;
  const per = PREFETCH_SHARE;
  if (s.globalRpm > 0) cap = Math.min(cap, Math.floor(s.globalRpm / per));
  if (k.tenantRpm > 0) cap = Math.min(cap, Math.floor(k.tenantRpm / per));
  if (k.environmentRpm > 0) cap = Math.min(cap, Math.floor(k.environmentRpm / per));
  if (k.rpm > 0) cap = Math.min(cap, Math.floor(k.rpm / per));
  if (s.clientRpm > 0) cap = Math.min(cap, Math.floor(s.clientRpm / per));
  if (generation && s.clientGenerationRpm > 0) cap = Math.min(cap, Math.floor(s.clientGenerationRpm / per));
  const r = Math.max(1, reserve) * per;
  if (k.tenantTpm > 0) cap = Math.min(cap, Math.floor(k.tenantTpm / r));
  if (k.environmentTpm > 0) cap = Math.min(cap, Math.floor(k.environmentTpm / r));
  if (k.tpm > 0) cap = Math.min(cap, Math.floor(k.tpm / r));
  // An unused ticket holds a concurrency slot another replica or address could have used: at most 1/8.
  if (k.concurrency > 0) cap = Math.min(cap, Math.floor(k.concurrency / 8));
  return cap;
}

function sameLimits(a: KeyLimits, b: KeyLimits): boolean {
  return a.tenantRpm === b.tenantRpm && a.environmentRpm === b.environmentRpm && a.rpm === b.rpm && a.tenantTpm === b.tenantTpm
    && a.environmentTpm === b.environmentTpm && a.tpm === b.tpm && a.concurrency === b.concurrency && a.tenant === b.tenant && a.environment === b.environment;
}

interface Waiting { input: AdmitInput; resolve: ((d: Decision) => void) | undefined; pool: Pool | undefined; epoch: number; count: number; poolKeys: readonly string[] | undefined }

/** The settles of one key in one flush (same token limits): one script entry. */
interface SettleGroup { keys: readonly [string, string, string, string]; caps: readonly [number, number, number]; delta: [number, number, number]; ids: string[] }

/** Requests per script call at most (a call holds Redis for its whole batch). */
const MAX_BATCH = 64;

/** Script result code + 5 → layer. */
const LAYERS: readonly (Layer | undefined)[] = ["environment-tokens", "tenant-tokens", "tokens", "concurrency", "blocked", undefined, "global", "tenant", "environment", "key", "client", "client-generation"];

const script = (name: string) => fs.readFileSync(new URL(`./${name}.lua`, import.meta.url), "utf8");
type Scripted = Redis & {
  clAdmit(numberOfKeys: number, keys: string[], args: (string | number)[]): Promise<number[][]>;
  clSettle(numberOfKeys: number, keys: string[], args: (string | number)[]): Promise<number>;
  clRefresh(...args: (string | number)[]): Promise<number>;
  clRefund(numberOfKeys: number, keys: string[], args: (string | number)[]): Promise<number>;
};

export class Limiter {
  readonly #redis: Scripted;
  readonly #s: LimitSettings;
  readonly #events: LimiterEvents;
  readonly #leases = new Map<string, string>();
  readonly #timer: NodeJS.Timeout;
  readonly #global: string;
  readonly #none: string;
  // Batches of this event-loop turn.
  #admitKeys: string[] = [];
  #admitArgs: (string | number)[] = [];
  #admitWaiting: Waiting[] = [];
  #admitScheduled = false;
  readonly #flushAdmitsBound = () => this.#flushAdmits();
  /** Settles of this turn grouped per key (concurrency set) and token limits. */
  #settleGroups = new Map<string, SettleGroup>();
  #settleWaiting: Array<() => void> = [];
  #settleScheduled = false;
  readonly #flushSettlesBound = () => this.#flushSettles();
  // Pre-admission.
  readonly #pools = new Map<string, Pool>();
  readonly #sweeper: NodeJS.Timeout;
  readonly #replica = Math.random().toString(36).slice(2, 10);
  #ticketSeq = 0;
  #refundKeys: string[] = [];
  #refundArgs: (string | number)[] = [];

  constructor(redis: Redis, settings: LimitSettings, events: LimiterEvents) {
    redis.defineCommand("clAdmit", { lua: script("admit") });
    redis.defineCommand("clSettle", { lua: script("settle") });
    redis.defineCommand("clRefresh", { lua: script("refresh") });
    this.#redis = redis as Scripted;
    this.#s = settings;
    this.#events = events;
    this.#global = `${settings.keyPrefix}{gw}g`;
    this.#none = `${settings.keyPrefix}{gw}-`;
    this.#timer = setInterval(() => void this.#refresh(), Math.max(250, Math.floor(settings.leaseTtlMs / 3)));
    this.#timer.unref();
    redis.defineCommand("clRefund", { lua: script("refund") });
    this.#sweeper = setInterval(() => this.#sweep(), Math.ceil(TICKET_MAX_AGE_MS / 2));
    this.#sweeper.unref();
    // Tickets are admissions Redis made; once the connection is gone they are not used (fail-closed
    // then refuses at once). Their slots expire with LEASE_TTL_MS.
    redis.on("close", () => {
      let n = 0;
      for (const p of this.#pools.values()) { n += p.tickets.length; p.tickets.length = 0; p.target = 0; }
      if (n > 0) this.#events.tickets?.("discarded", n);
    });
  }

  /** Pre-admitted requests this replica holds (all pools). */
  get ticketsHeld(): number { let n = 0; for (const p of this.#pools.values()) n += p.tickets.length; return n; }

  get inFlightLeases(): number { return this.#leases.size; }

  /** Key names: every key carries the hash tag {gw} (one Redis Cluster slot for the scripts). */
  #k(kind: string, id: string): string { return `${this.#s.keyPrefix}{gw}${kind}${id}`; }

  /** A keyed admission's KEYS: global, tenant, environment, key, key concurrency set, address. */
  #keyNames(k: KeyLimits, client: string): string[] {
    return [this.#global, this.#k("t:", k.tenant), this.#k("e:", k.environment), this.#k("k:", k.hash), this.#k("c:", k.hash), this.#k("a:", client)];
  }

  admit(input: AdmitInput): Promise<Decision> {
    const k = input.key;
    const now = performance.now();
    const pool = k && input.forceViolation !== true ? this.#poolFor(input, k, now) : undefined;
    if (pool === undefined) return new Promise<Decision>((resolve) => this.#enqueue(input, resolve, undefined, 0, 1));
    const d = this.#take(pool, k!, now);
    if (d) { this.#topUp(pool, input, k!, now); return Promise.resolve(d); }
    // The request's own admission goes first in the batch: a prefetch must not take what it needs.
    const decided = new Promise<Decision>((resolve) => this.#enqueue(input, resolve, undefined, 0, 1));
    this.#topUp(pool, input, k!, now);
    return decided;
  }

  /** The pool of this request's (key, address, endpoint kind), or none when its limits are too small to pre-admit. */
  #poolFor(input: AdmitInput, k: KeyLimits, now: number): Pool | undefined {
    if (prefetchCap(this.#s, k, input.generation, k.reserve) < 2) return undefined;
    // Listing models carries no token or concurrency limits: its own pool, not a limits change.
    const id = `${k.hash}|${input.client}|${input.generation ? "g" : ""}${k.concurrency}|${k.tpm}`;
    let pool = this.#pools.get(id);
    if (pool === undefined) {
      if (this.#pools.size >= MAX_POOLS) return undefined;
      pool = { limits: k, generation: input.generation, keys: undefined, tickets: [], pending: 0, target: 0, reserve: k.reserve, epoch: 0, lastSeen: now - GAP_CEILING_MS, gap: GAP_CEILING_MS / 2, quietUntil: 0 };
      this.#pools.set(id, pool);
    } else if (!sameLimits(pool.limits, k)) {
      this.#handBack(pool, pool.tickets.length);
      if (pool.limits.tenant !== k.tenant || pool.limits.environment !== k.environment) pool.keys = undefined;
      pool.limits = k; pool.target = 0; pool.reserve = k.reserve; pool.epoch++;
    }
    pool.gap = pool.gap * 0.8 + Math.min(now - pool.lastSeen, GAP_CEILING_MS) * 0.2;
    pool.lastSeen = now;
    return pool;
  }

  /** A pre-admitted decision from the pool, if it holds one that covers this request's reservation. */
  #take(pool: Pool, k: KeyLimits, now: number): Decision | undefined {
    const tickets = pool.tickets;
    const t = tickets[0];
    if (t !== undefined && t.reserve >= k.reserve && now - t.at <= TICKET_MAX_AGE_MS) {
      tickets.shift();
      this.#events.tickets?.("used", 1);
      if (t.leaseId) this.#leases.set(t.leaseId, t.lease!.set);
      return { admitted: true, retryAfterMs: 0, limit: t.limit, remaining: t.remaining, resetMs: Math.max(0, Math.ceil(t.resetAt - now)), delayMs: 0, newlyBlocked: false, lease: t.lease };
    }
    // Tickets that reserved too few tokens for this request go back; later ones reserve enough.
    if (t !== undefined && t.reserve < k.reserve) { this.#handBack(pool, tickets.length); pool.epoch++; }
    if (k.reserve > pool.reserve) pool.reserve = k.reserve;
    return undefined;
  }

  /** Asks for more tickets (one script entry) when the pool holds less than half its target. */
  #topUp(pool: Pool, input: AdmitInput, k: KeyLimits, now: number): void {
    const tickets = pool.tickets;
    // Enough tickets for PREFETCH_HORIZON_MS of this pool's recent rate (none when it is slow).
    pool.target = pool.gap < PREFETCH_GAP_MS && now >= pool.quietUntil
      ? Math.min(prefetchCap(this.#s, k, input.generation, pool.reserve), Math.max(2, Math.ceil(PREFETCH_HORIZON_MS / Math.max(pool.gap, 0.05))))
      : 0;
    const have = tickets.length + pool.pending;
    if (pool.target >= 2 && have <= pool.target / 2) {
      // One script entry admits them all (leases "<base>.1".."<base>.n").
      const n = pool.target - have;
      pool.pending += n;
      const base = k.concurrency > 0 ? `${this.#replica}.${++this.#ticketSeq}` : "";
      this.#enqueue({ client: input.client, generation: input.generation, key: { ...k, reserve: pool.reserve, leaseId: base } }, undefined, pool, pool.epoch, n);
    }
  }

  #enqueue(input: AdmitInput, resolve: ((d: Decision) => void) | undefined, pool: Pool | undefined, epoch: number, count: number): void {
    const s = this.#s;
    const k = input.key;
    const forced = input.forceViolation === true;
    const keys = this.#admitKeys;
    const args = this.#admitArgs;
    if (k) {
      const names = pool ? (pool.keys ??= this.#keyNames(k, input.client)) : this.#keyNames(k, input.client);
      keys.push(names[0]!, names[1]!, names[2]!, names[3]!, names[4]!, names[5]!);
      args.push(pool ? -count : 1, forced ? 1 : 0, s.globalRpm, k.tenantRpm, k.environmentRpm, k.rpm, s.clientRpm, input.generation ? s.clientGenerationRpm : 0,
        k.tenantTpm, k.environmentTpm, k.tpm, k.reserve, k.concurrency, k.leaseId, s.leaseTtlMs,
        s.violationWindowMs, s.delayAfter, s.blockAfter, s.maxDelayMs, s.blockMs);
    } else {
      keys.push(this.#global, this.#none, this.#none, this.#none, this.#none, this.#k("a:", input.client));
      args.push(0, forced ? 1 : 0, 0, 0, 0, 0, s.clientRpm, input.generation ? s.clientGenerationRpm : 0,
        0, 0, 0, 0, 0, "", s.leaseTtlMs, s.violationWindowMs, s.delayAfter, s.blockAfter, s.maxDelayMs, s.blockMs);
    }
    this.#admitWaiting.push({ input, resolve, pool, epoch, count, poolKeys: pool?.keys });
    if (this.#admitWaiting.length >= MAX_BATCH) this.#flushAdmits();
    else if (!this.#admitScheduled) { this.#admitScheduled = true; setImmediate(this.#flushAdmitsBound); }
  }

  /** One script call for every admission of this event-loop turn. */
  #flushAdmits(): void {
    this.#admitScheduled = false;
    const waiting = this.#admitWaiting;
    if (waiting.length === 0) return;
    const keys = this.#admitKeys;
    const args = this.#admitArgs;
    this.#admitWaiting = [];
    this.#admitKeys = [];
    this.#admitArgs = [];
    this.#redis.clAdmit(keys.length, keys, args).then((replies) => {
      const now = performance.now();
      for (let i = 0; i < waiting.length; i++) {
        const w = waiting[i]!;
        if (w.resolve) { w.resolve(this.#decision(w.input, replies[i]!, keys, i)); continue; }
        const pool = w.pool!;
        pool.pending -= w.count;
        const r = replies[i]!;
        const m = r[0]!;
        if (m === 0) { pool.target = 0; pool.quietUntil = now + PREFETCH_QUIET_MS; continue; }
        const k = w.input.key!;
        const at = i * 6;
        // Admitted for limits that changed meanwhile, or after the connection dropped: handed back.
        const stale = w.epoch !== pool.epoch || this.#redis.status !== "ready";
        for (let j = 1; j <= m; j++) {
          const leaseId = k.leaseId ? `${k.leaseId}.${j}` : "";
          const lease = leased(k) ? leaseAt(keys, at, k, leaseId) : undefined;
          const t: Ticket = { keys: w.poolKeys!, at: now, epoch: w.epoch, reserve: k.reserve, limit: r[3]!, remaining: Math.max(0, r[4]! - j + 1), resetAt: now + r[5]!, lease, leaseId };
          if (stale) this.#refund(pool, t);
          else pool.tickets.push(t);
        }
      }
    }, () => {
      const now = performance.now();
      for (let i = 0; i < waiting.length; i++) {
        const w = waiting[i]!;
        // A call that timed out may still run when Redis wakes up: its concurrency leases are
        // released after it (same connection, so in order); what it spent of the buckets stays spent.
        const k = w.input.key;
        if (k && k.concurrency > 0) {
          const at = i * 6;
          const g = this.#group(leaseAt(keys, at, k, ""));
          if (w.pool) for (let j = 1; j <= w.count; j++) g.ids.push(`${k.leaseId}.${j}`);
          else g.ids.push(k.leaseId);
          this.#scheduleSettles();
        }
        if (w.resolve) { this.#events.redisFailure("admit"); w.resolve(this.#degraded(w.input)); continue; }
        w.pool!.pending -= w.count;
        w.pool!.target = 0;
        w.pool!.quietUntil = now + PREFETCH_QUIET_MS;
      }
    });
  }

  /** Hands back the oldest `n` tickets of a pool. */
  #handBack(pool: Pool, n: number): void {
    for (const t of pool.tickets.splice(0, n)) this.#refund(pool, t);
  }

  /** Queues the refund of an unused ticket (sent by the sweeper, or at close). */
  #refund(pool: Pool, t: Ticket): void {
    // Its slot and reserved tokens go back as a settle with nothing used; its request, to every request bucket, by refund.lua.
    if (t.lease) { this.#settleInto(t.lease, 0); this.#scheduleSettles(); }
    const k = pool.limits;
    const s = this.#s;
    const pk = t.keys;
    this.#refundKeys.push(pk[0]!, pk[1]!, pk[2]!, pk[3]!, pk[5]!);
    this.#refundArgs.push(s.globalRpm, k.tenantRpm, k.environmentRpm, k.rpm, s.clientRpm, pool.generation ? s.clientGenerationRpm : 0);
  }

  /** Hands back tickets older than TICKET_MAX_AGE_MS, forgets idle pools, sends the refunds. */
  #sweep(): void {
    const now = performance.now();
    for (const [id, pool] of this.#pools) {
      const tickets = pool.tickets;
      let old = 0;
      while (old < tickets.length && now - tickets[old]!.at > TICKET_MAX_AGE_MS) old++;
      if (old > 0) this.#handBack(pool, old);
      if (tickets.length === 0 && pool.pending === 0 && now - pool.lastSeen > POOL_FORGET_MS) this.#pools.delete(id);
    }
    this.#sendRefunds();
  }

  #sendRefunds(): void {
    if (this.#refundKeys.length === 0) return;
    const keys = this.#refundKeys;
    const args = this.#refundArgs;
    this.#refundKeys = [];
    this.#refundArgs = [];
    this.#events.tickets?.("refunded", keys.length / 5);
    // A failed refund leaves the quota spent (it refills) and the slots to expire (LEASE_TTL_MS).
    this.#redis.clRefund(keys.length, keys, args).catch(() => this.#events.redisFailure("settle"));
  }

  #decision(input: AdmitInput, r: number[], keys: string[], i: number): Decision {
    const k = input.key;
    const refused = r[1]!;
    const d: Decision = { admitted: r[0] === 1, retryAfterMs: r[2]!, limit: r[3]!, remaining: r[4]!, resetMs: r[5]!, delayMs: r[6]!, newlyBlocked: r[7] === 1 };
    if (refused !== 0) d.layer = LAYERS[refused + 5];
    if (d.admitted && k && leased(k)) {
      d.lease = leaseAt(keys, i * 6, k, k.concurrency > 0 ? k.leaseId : "");
      if (k.concurrency > 0) this.#leases.set(k.leaseId, d.lease.set);
    }
    return d;
  }

  #degraded(input: AdmitInput): Decision {
    return { admitted: this.#s.failurePolicy === "fail-open", retryAfterMs: 1000, limit: this.configuredLimit(input), remaining: 0, resetMs: 0, delayMs: 0, newlyBlocked: false, degraded: true };
  }

  /** The tightest configured requests/min for this request (what X-RateLimit-Limit says when Redis cannot be asked). */
  configuredLimit(input: AdmitInput): number {
    const s = this.#s;
    let min = 0;
    const take = (n: number) => { if (n > 0 && (min === 0 || n < min)) min = n; };
    take(s.globalRpm); take(s.clientRpm);
    if (input.generation) take(s.clientGenerationRpm);
    if (input.key && !input.forceViolation) { take(input.key.tenantRpm); take(input.key.environmentRpm); take(input.key.rpm); }
    return min;
  }

  /** Releases the lease and settles tokens against real usage (`usedTokens` undefined: keep the reservation). */
  settle(lease: Lease, usedTokens: number | undefined): Promise<void> {
    if (lease.id) this.#leases.delete(lease.id);
    this.#settleInto(lease, usedTokens);
    return new Promise<void>((resolve) => {
      this.#settleWaiting.push(resolve);
      if (this.#settleWaiting.length >= MAX_BATCH) this.#flushSettles();
      else this.#scheduleSettles();
    });
  }

  /** Adds a lease's release and token correction to this turn's settle entry for its key. */
  #settleInto(lease: Lease, usedTokens: number | undefined): void {
    const g = this.#group(lease);
    if (lease.id) g.ids.push(lease.id);
    // Each token bucket reserved min(reservation, its limit): the difference to real usage goes back (or is owed).
    if (usedTokens !== undefined) {
      const r = lease.reserved;
      if (lease.tenantTpm > 0) g.delta[0] += Math.min(r, lease.tenantTpm) - usedTokens;
      if (lease.environmentTpm > 0) g.delta[1] += Math.min(r, lease.environmentTpm) - usedTokens;
      if (lease.tpm > 0) g.delta[2] += Math.min(r, lease.tpm) - usedTokens;
    }
  }

  #scheduleSettles(): void {
    if (!this.#settleScheduled) { this.#settleScheduled = true; setImmediate(this.#flushSettlesBound); }
  }

  /** This turn's settle entry for the lease's key (and token limits). */
  #group(lease: Lease): SettleGroup {
    let g = this.#settleGroups.get(lease.set);
    if (g !== undefined && (g.caps[0] !== lease.tenantTpm || g.caps[1] !== lease.environmentTpm || g.caps[2] !== lease.tpm || g.keys[1] !== lease.tenantKey || g.keys[2] !== lease.environmentKey)) {
      // Limits changed within this turn (a config reload): a group of its own.
      const id = `${lease.set}|${lease.tenantKey}|${lease.environmentKey}|${lease.tenantTpm}|${lease.environmentTpm}|${lease.tpm}`;
      g = this.#settleGroups.get(id);
      if (g === undefined) this.#settleGroups.set(id, g = newGroup(lease));
    } else if (g === undefined) this.#settleGroups.set(lease.set, g = newGroup(lease));
    return g;
  }

  #flushSettles(): void {
    this.#settleScheduled = false;
    const waiting = this.#settleWaiting;
    const groups = this.#settleGroups;
    if (groups.size === 0) return;
    this.#settleWaiting = [];
    this.#settleGroups = new Map();
    const keys: string[] = [];
    const args: (string | number)[] = [];
    for (const g of groups.values()) {
      keys.push(g.keys[0], g.keys[1], g.keys[2], g.keys[3]);
      args.push(g.ids.length, g.delta[0], g.delta[1], g.delta[2], g.caps[0], g.caps[1], g.caps[2]);
      for (const id of g.ids) args.push(id);
    }
    const done = () => { for (const w of waiting) w(); };
    this.#redis.clSettle(keys.length, keys, args).then(done, () => {
      // The leases expire on their own (LEASE_TTL_MS); the token reservations stay spent.
      for (let i = 0; i < waiting.length; i++) this.#events.redisFailure("settle");
      done();
    });
  }

  async #refresh(): Promise<void> {
    if (this.#leases.size === 0) return;
    const entries = [...this.#leases.entries()].slice(0, 5000);
    try {
      await this.#redis.clRefresh(entries.length, ...entries.map(([, set]) => set), this.#s.leaseTtlMs, ...entries.map(([id]) => id));
    } catch {
      this.#events.redisFailure("refresh");
    }
  }

  /** Stops the timers and hands back every unused ticket. */
  close(): void {
    clearInterval(this.#timer);
    clearInterval(this.#sweeper);
    for (const pool of this.#pools.values()) this.#handBack(pool, pool.tickets.length);
    if (this.#redis.status === "ready") { this.#flushSettles(); this.#sendRefunds(); }
  }
}

/**
 * The four rate-limit layers (global, tenant, environment, key), the key's token and concurrency
 * limits, the per-address limits (stricter for generation endpoints), and graduated response,
 * decided by ONE Redis script call (EVALSHA; ioredis reloads the script on NOSCRIPT) on Redis time;
 * settled by at most one more, off the response path. Calls carry every request of one event-loop
 * turn (up to 64: one admission call and one settle call per turn, however many requests), and
 * are written straight to the connection (no ioredis auto-pipelining: the batching is here). When Redis fails
 * or exceeds REDIS_TIMEOUT_MS, REDIS_FAILURE_POLICY decides: fail-closed refuses (503), fail-open
 * admits without limits; both are counted in metrics.
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

export interface LimiterEvents { redisFailure(op: "admit" | "settle" | "refresh"): void }

/** Requests per script call at most (a call holds Redis for its whole batch). */
const MAX_BATCH = 64;

/** Script result code + 5 → layer. */
const LAYERS: readonly (Layer | undefined)[] = ["environment-tokens", "tenant-tokens", "tokens", "concurrency", "blocked", undefined, "global", "tenant", "environment", "key", "client", "client-generation"];

const script = (name: string) => fs.readFileSync(new URL(`./${name}.lua`, import.meta.url), "utf8");
type Scripted = Redis & {
  clAdmit(numberOfKeys: number, keys: string[], args: (string | number)[]): Promise<number[][]>;
  clSettle(numberOfKeys: number, keys: string[], args: (string | number)[]): Promise<number>;
  clRefresh(...args: (string | number)[]): Promise<number>;
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
  #admitWaiting: Array<{ input: AdmitInput; resolve: (d: Decision) => void }> = [];
  #admitScheduled = false;
  readonly #flushAdmitsBound = () => this.#flushAdmits();
  #settleKeys: string[] = [];
  #settleArgs: (string | number)[] = [];
  #settleWaiting: Array<() => void> = [];
  #settleScheduled = false;
  readonly #flushSettlesBound = () => this.#flushSettles();

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
  }

  get inFlightLeases(): number { return this.#leases.size; }

  /** Key names: every key carries the hash tag {gw} (one Redis Cluster slot for the scripts). */
  #k(kind: string, id: string): string { return `${this.#s.keyPrefix}{gw}${kind}${id}`; }

  admit(input: AdmitInput): Promise<Decision> {
    const s = this.#s;
    const k = input.key;
    const forced = input.forceViolation === true;
    const keys = this.#admitKeys;
    const args = this.#admitArgs;
    keys.push(this.#global);
    if (k) {
      keys.push(this.#k("t:", k.tenant), this.#k("e:", k.environment), this.#k("k:", k.hash), this.#k("c:", k.hash), this.#k("a:", input.client));
      args.push(1, forced ? 1 : 0, s.globalRpm, k.tenantRpm, k.environmentRpm, k.rpm, s.clientRpm, input.generation ? s.clientGenerationRpm : 0,
        k.tenantTpm, k.environmentTpm, k.tpm, k.reserve, k.concurrency, k.leaseId, s.leaseTtlMs,
        s.violationWindowMs, s.delayAfter, s.blockAfter, s.maxDelayMs, s.blockMs);
    } else {
      keys.push(this.#none, this.#none, this.#none, this.#none, this.#k("a:", input.client));
      args.push(0, forced ? 1 : 0, 0, 0, 0, 0, s.clientRpm, input.generation ? s.clientGenerationRpm : 0,
        0, 0, 0, 0, 0, "", s.leaseTtlMs, s.violationWindowMs, s.delayAfter, s.blockAfter, s.maxDelayMs, s.blockMs);
    }
    return new Promise<Decision>((resolve) => {
      this.#admitWaiting.push({ input, resolve });
      if (this.#admitWaiting.length >= MAX_BATCH) this.#flushAdmits();
      else if (!this.#admitScheduled) { this.#admitScheduled = true; setImmediate(this.#flushAdmitsBound); }
    });
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
      for (let i = 0; i < waiting.length; i++) waiting[i]!.resolve(this.#decision(waiting[i]!.input, replies[i]!, keys, i));
    }, () => {
      for (const w of waiting) { this.#events.redisFailure("admit"); w.resolve(this.#degraded(w.input)); }
    });
  }

  #decision(input: AdmitInput, r: number[], keys: string[], i: number): Decision {
    const k = input.key;
    const refused = r[1]!;
    const d: Decision = { admitted: r[0] === 1, retryAfterMs: r[2]!, limit: r[3]!, remaining: r[4]!, resetMs: r[5]!, delayMs: r[6]!, newlyBlocked: r[7] === 1 };
    if (refused !== 0) d.layer = LAYERS[refused + 5];
    if (d.admitted && k && (k.concurrency > 0 || k.tpm > 0 || k.tenantTpm > 0 || k.environmentTpm > 0)) {
      const at = i * 6;
      d.lease = {
        id: k.concurrency > 0 ? k.leaseId : "", set: keys[at + 4]!, tenantKey: keys[at + 1]!, environmentKey: keys[at + 2]!, keyKey: keys[at + 3]!,
        tenantTpm: k.tenantTpm, environmentTpm: k.environmentTpm, tpm: k.tpm, reserved: k.reserve,
      };
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
    this.#settleKeys.push(lease.set, lease.tenantKey, lease.environmentKey, lease.keyKey);
    this.#settleArgs.push(lease.id, usedTokens === undefined ? -1 : usedTokens, lease.reserved, lease.tenantTpm, lease.environmentTpm, lease.tpm);
    return new Promise<void>((resolve) => {
      this.#settleWaiting.push(resolve);
      if (this.#settleWaiting.length >= MAX_BATCH) this.#flushSettles();
      else if (!this.#settleScheduled) { this.#settleScheduled = true; setImmediate(this.#flushSettlesBound); }
    });
  }

  #flushSettles(): void {
    this.#settleScheduled = false;
    const waiting = this.#settleWaiting;
    if (waiting.length === 0) return;
    const keys = this.#settleKeys;
    const args = this.#settleArgs;
    this.#settleWaiting = [];
    this.#settleKeys = [];
    this.#settleArgs = [];
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

  close(): void { clearInterval(this.#timer); }
}

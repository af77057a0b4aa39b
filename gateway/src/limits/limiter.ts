/**
 * The four rate-limit layers (global, tenant, environment, key), the key's token and concurrency
 * limits, the per-address limits (stricter for generation endpoints), and graduated response,
 * decided by ONE Redis script call on Redis time; settled by at most one more. When Redis fails
 * or exceeds REDIS_TIMEOUT_MS, REDIS_FAILURE_POLICY decides: fail-closed refuses (503), fail-open
 * admits without limits; both are counted in metrics.
 */
import fs from "node:fs";
import type { Redis } from "ioredis";

export type Layer = "global" | "tenant" | "environment" | "key" | "client" | "client-generation" | "blocked" | "concurrency" | "tokens";

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

export interface AdmitInput {
  /** Address bucket id (IPv4, or IPv6 /56 prefix). */
  client: string;
  generation: boolean;
  key?: {
    hash: string; tenant: string; environment: string;
    tenantRpm: number; environmentRpm: number; rpm: number; tpm: number; concurrency: number;
    reserve: number; leaseId: string;
  };
  /** Count this request as a violation (failed authentication) without admitting anything. */
  forceViolation?: boolean;
}

export interface Decision {
  admitted: boolean;
  /** The layer that refused (absent when admitted). */
  layer?: Layer;
  retryAfterMs: number;
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

export interface Lease { readonly id: string; readonly set: string; readonly bucket: string; readonly tpm: number; readonly reserved: number }

export interface LimiterEvents { redisFailure(op: "admit" | "settle" | "refresh"): void }

const script = (name: string) => fs.readFileSync(new URL(`./${name}.lua`, import.meta.url), "utf8");
type Scripted = Redis & {
  clAdmit(...args: (string | number)[]): Promise<number[]>;
  clSettle(...args: (string | number)[]): Promise<number>;
  clRefresh(...args: (string | number)[]): Promise<number>;
};

export class Limiter {
  readonly #redis: Scripted;
  readonly #s: LimitSettings;
  readonly #events: LimiterEvents;
  readonly #leases = new Map<string, string>();
  readonly #timer: NodeJS.Timeout;

  constructor(redis: Redis, settings: LimitSettings, events: LimiterEvents) {
    redis.defineCommand("clAdmit", { lua: script("admit") });
    redis.defineCommand("clSettle", { numberOfKeys: 2, lua: script("settle") });
    redis.defineCommand("clRefresh", { lua: script("refresh") });
    this.#redis = redis as Scripted;
    this.#s = settings;
    this.#events = events;
    this.#timer = setInterval(() => void this.#refresh(), Math.max(250, Math.floor(settings.leaseTtlMs / 3)));
    this.#timer.unref();
  }

  get inFlightLeases(): number { return this.#leases.size; }

  async admit(input: AdmitInput): Promise<Decision> {
    const p = this.#s.keyPrefix;
    const k = input.key;
    const keys: string[] = [
      k ? `${p}block:k:${k.hash}` : `${p}block:none`, `${p}block:a:${input.client}`,
      k ? `${p}viol:k:${k.hash}` : `${p}viol:none`, `${p}viol:a:${input.client}`,
      k ? `${p}cc:${k.hash}` : `${p}cc:none`, k ? `${p}tk:${k.hash}` : `${p}tk:none`,
    ];
    const caps: number[] = [];
    const layers: Layer[] = [];
    const bucket = (layer: Layer, key: string, rpm: number) => { if (rpm > 0) { keys.push(key); caps.push(rpm); layers.push(layer); } };
    if (!input.forceViolation) {
      bucket("global", `${p}rl:g`, this.#s.globalRpm);
      if (k) {
        bucket("tenant", `${p}rl:t:${k.tenant}`, k.tenantRpm);
        bucket("environment", `${p}rl:e:${k.environment}`, k.environmentRpm);
        bucket("key", `${p}rl:k:${k.hash}`, k.rpm);
      }
    }
    bucket("client", `${p}rl:a:${input.client}`, this.#s.clientRpm);
    if (input.generation) bucket("client-generation", `${p}rl:ag:${input.client}`, this.#s.clientGenerationRpm);
    const s = this.#s;
    const args = [
      1, k && !input.forceViolation ? k.concurrency : 0, k?.leaseId ?? "", s.leaseTtlMs, k && !input.forceViolation ? k.tpm : 0, k?.reserve ?? 0,
      s.violationWindowMs, s.delayAfter, s.blockAfter, s.maxDelayMs, s.blockMs, k ? 1 : 0, input.forceViolation ? 1 : 0, ...caps,
    ];
    let r: number[];
    try {
      r = await this.#redis.clAdmit(keys.length, ...keys, ...args);
    } catch {
      this.#events.redisFailure("admit");
      const admitted = s.failurePolicy === "fail-open";
      return { admitted, retryAfterMs: 1000, limit: 0, remaining: 0, resetMs: 60_000, delayMs: 0, newlyBlocked: false, degraded: true };
    }
    const [ok, refused, retryAfterMs, limit, remaining, resetMs, delayMs, newlyBlocked] = r as [number, number, number, number, number, number, number, number];
    const d: Decision = { admitted: ok === 1, retryAfterMs, limit, remaining, resetMs, delayMs, newlyBlocked: newlyBlocked === 1 };
    if (refused !== 0) d.layer = refused === -1 ? "blocked" : refused === -2 ? "concurrency" : refused === -3 ? "tokens" : layers[refused - 1]!;
    if (d.admitted && k && (k.concurrency > 0 || k.tpm > 0)) {
      d.lease = { id: k.leaseId, set: keys[4]!, bucket: keys[5]!, tpm: k.tpm, reserved: Math.min(k.reserve, k.tpm) };
      if (k.concurrency > 0) this.#leases.set(k.leaseId, keys[4]!);
    }
    return d;
  }

  /** Releases the lease and settles tokens against real usage (`usedTokens` undefined: keep the reservation). */
  async settle(lease: Lease, usedTokens: number | undefined): Promise<void> {
    this.#leases.delete(lease.id);
    const delta = lease.tpm > 0 && usedTokens !== undefined ? lease.reserved - usedTokens : 0;
    try {
      await this.#redis.clSettle(lease.set, lease.bucket, lease.id, delta, lease.tpm);
    } catch {
      // The lease expires on its own (LEASE_TTL_MS); the token reservation stays spent.
      this.#events.redisFailure("settle");
    }
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

/**
 * A deduplicating work queue with per-key serialisation (client-go's workqueue semantics): a key
 * added many times while waiting is processed once; a key added while being processed is processed
 * again after, never by two workers at once. Failed keys come back after an exponential backoff
 * with jitter; delayed adds keep only the earliest deadline. Keys added at low priority wait until
 * no other key does.
 */
import { backoffDelay } from "@crosslogic/kube/backoff";

export interface QueueOptions {
  baseDelayMs?: number;
  maxDelayMs?: number;
  onDepth?: (depth: number) => void;
}

export class WorkQueue {
  /** Waiting keys in FIFO order, [key, entry number]; an entry whose number is no longer the key's is skipped. */
  #high: Array<[string, number]> = [];
  #low: Array<[string, number]> = [];
  /** The live queue entry of each waiting key. */
  #entries = new Map<string, number>();
  #entrySeq = 0;
  /** Keys to process (waiting, or again after the current pass), and whether only at low priority. */
  #dirty = new Map<string, { low: boolean }>();
  #processing = new Set<string>();
  #failures = new Map<string, number>();
  #timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  #waiters: Array<(key: string | undefined) => void> = [];
  #shuttingDown = false;
  #opts: Required<Omit<QueueOptions, "onDepth">> & Pick<QueueOptions, "onDepth">;

  constructor(opts: QueueOptions = {}) {
    this.#opts = { baseDelayMs: opts.baseDelayMs ?? 200, maxDelayMs: opts.maxDelayMs ?? 300_000, onDepth: opts.onDepth };
  }

  get length(): number {
    return this.#entries.size;
  }

  /**
   * Queues `key`. `low`: a pass nothing asked for (a periodic resync, the first pass after start),
   * taken only when no other key waits, so that a change is never queued behind every object of the
   * cluster (controller-runtime's priority queue does the same). Adding a waiting low key without
   * `low` moves it up.
   */
  add(key: string, low = false): void {
    if (this.#shuttingDown) return;
    const dirty = this.#dirty.get(key);
    if (dirty) {
      if (!low && dirty.low) {
        dirty.low = false;
        if (this.#entries.has(key)) this.#enqueue(key, false);
      }
      return;
    }
    this.#dirty.set(key, { low });
    if (this.#processing.has(key)) return;
    this.#dispatch(key, low);
  }

  /** Every waiting key to low priority: what was queued before the controllers started. */
  demoteAll(): void {
    for (const [key, d] of this.#dirty) {
      if (d.low || !this.#entries.has(key)) continue;
      d.low = true;
      this.#enqueue(key, true);
    }
  }

  #dispatch(key: string, low: boolean): void {
    const waiter = this.#waiters.shift();
    if (waiter) { this.#dirty.delete(key); this.#processing.add(key); waiter(key); return; }
    this.#enqueue(key, low);
  }

  #enqueue(key: string, low: boolean): void {
    const n = ++this.#entrySeq;
    this.#entries.set(key, n);
    (low ? this.#low : this.#high).push([key, n]);
    this.#opts.onDepth?.(this.#entries.size);
  }

  addAfter(key: string, delayMs: number): void {
    if (this.#shuttingDown) return;
    if (delayMs <= 0) { this.add(key); return; }
    const at = Date.now() + delayMs;
    const existing = this.#timers.get(key);
    if (existing && existing.at <= at) return;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(() => { this.#timers.delete(key); this.add(key); }, delayMs);
    timer.unref();
    this.#timers.set(key, { at, timer });
  }

  /** Requeues a failed key after its next backoff delay; returns the delay. */
  addRateLimited(key: string): number {
    const n = (this.#failures.get(key) ?? 0) + 1;
    this.#failures.set(key, n);
    const delay = backoffDelay(n, { baseMs: this.#opts.baseDelayMs, maxMs: this.#opts.maxDelayMs });
    this.addAfter(key, delay);
    return delay;
  }

  failures(key: string): number {
    return this.#failures.get(key) ?? 0;
  }

  forget(key: string): void {
    this.#failures.delete(key);
  }

  /** The next key to process (marked as processing), or undefined once shut down. */
  get(): Promise<string | undefined> {
    if (this.#shuttingDown) return Promise.resolve(undefined);
    for (;;) {
      const next = this.#high.shift() ?? this.#low.shift();
      if (next === undefined) break;
      const [key, n] = next;
      if (this.#entries.get(key) !== n) continue; // moved up: its live entry is elsewhere
      this.#entries.delete(key);
      this.#dirty.delete(key);
      this.#processing.add(key);
      this.#opts.onDepth?.(this.#entries.size);
      return Promise.resolve(key);
    }
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  done(key: string): void {
    this.#processing.delete(key);
    const dirty = this.#dirty.get(key);
    if (dirty) this.#dispatch(key, dirty.low);
  }

  shutDown(): void {
    this.#shuttingDown = true;
    for (const { timer } of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    for (const w of this.#waiters.splice(0)) w(undefined);
  }
}

/**
 * A deduplicating work queue with per-key serialisation (client-go's workqueue semantics): a key
 * added many times while waiting is processed once; a key added while being processed is processed
 * again after, never by two workers at once. Failed keys come back after an exponential backoff
 * with jitter; delayed adds keep only the earliest deadline.
 */
import { backoffDelay } from "@crosslogic/kube/backoff";

export interface QueueOptions {
  baseDelayMs?: number;
  maxDelayMs?: number;
  onDepth?: (depth: number) => void;
}

export class WorkQueue {
  #queue: string[] = [];
  #dirty = new Set<string>();
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
    return this.#queue.length;
  }

  add(key: string): void {
    if (this.#shuttingDown || this.#dirty.has(key)) return;
    this.#dirty.add(key);
    if (this.#processing.has(key)) return;
    const waiter = this.#waiters.shift();
    if (waiter) { this.#dirty.delete(key); this.#processing.add(key); waiter(key); return; }
    this.#queue.push(key);
    this.#opts.onDepth?.(this.#queue.length);
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
    const key = this.#queue.shift();
    if (key !== undefined) {
      this.#dirty.delete(key);
      this.#processing.add(key);
      this.#opts.onDepth?.(this.#queue.length);
      return Promise.resolve(key);
    }
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  done(key: string): void {
    this.#processing.delete(key);
    if (this.#dirty.has(key)) {
      this.#dirty.delete(key);
      this.add(key);
    }
  }

  shutDown(): void {
    this.#shuttingDown = true;
    for (const { timer } of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    for (const w of this.#waiters.splice(0)) w(undefined);
  }
}

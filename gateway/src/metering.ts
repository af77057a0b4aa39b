/**
 * Usage metering off the hot path: records (metadata only) go into a bounded in-memory buffer and
 * are written in batches. A failed batch stays at the head of the buffer and is retried with
 * backoff; the store is idempotent on `requestId`, so a batch whose outcome was unknown cannot be
 * duplicated. When the buffer is full the gateway refuses new metered requests (503) rather than
 * serve traffic it cannot bill. On shutdown the buffer is flushed; what PostgreSQL cannot take
 * before the deadline is spooled to USAGE_SPOOL_DIR and re-sent at the next start.
 */
import fs from "node:fs";
import path from "node:path";
import type { UsageRecord } from "@crosslogic/crds";

export interface UsageSink { insertBatch(records: UsageRecord[]): Promise<{ inserted: number }> }

export interface MeterOptions { maxBuffered: number; batchSize: number; intervalMs: number; spoolDir?: string | undefined }
export interface MeterEvents { flushed(n: number): void; flushFailed(err: unknown): void; buffered(n: number): void }

export class UsageMeter {
  readonly #sink: UsageSink;
  readonly #o: MeterOptions;
  readonly #events: MeterEvents;
  #buffer: UsageRecord[] = [];
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;
  #backoffUntil = 0;
  #failures = 0;
  /** Spool files loaded at start, removed once the flushed count passes their last record. */
  #spooled: Array<{ file: string; upTo: number }> = [];
  #flushedTotal = 0;

  constructor(sink: UsageSink, options: MeterOptions, events: MeterEvents) {
    this.#sink = sink;
    this.#o = options;
    this.#events = events;
  }

  get size(): number { return this.#buffer.length; }
  get full(): boolean { return this.#buffer.length >= this.#o.maxBuffered; }

  start(): void {
    this.#loadSpool();
    this.#timer = setInterval(() => void this.flush(), this.#o.intervalMs);
    this.#timer.unref();
  }

  /** Adds a record; false when the buffer is full (the caller refused the request before, so this is rare). */
  record(r: UsageRecord): boolean {
    if (this.#buffer.length >= this.#o.maxBuffered * 1.1) return false; // admitted requests may overshoot a little
    this.#buffer.push(r);
    this.#events.buffered(this.#buffer.length);
    if (this.#buffer.length >= this.#o.batchSize && !this.#flushing) void this.flush();
    return true;
  }

  /** Writes batches until the buffer is empty or a write fails. */
  flush(): Promise<void> {
    if (this.#flushing) return this.#flushing;
    if (this.#buffer.length === 0 || Date.now() < this.#backoffUntil) return Promise.resolve();
    this.#flushing = (async () => {
      try {
        while (this.#buffer.length > 0) {
          const batch = this.#buffer.slice(0, this.#o.batchSize);
          try {
            await this.#sink.insertBatch(batch);
          } catch (err) {
            this.#failures++;
            this.#backoffUntil = Date.now() + Math.min(30_000, 250 * 2 ** Math.min(7, this.#failures));
            this.#events.flushFailed(err);
            return;
          }
          this.#failures = 0;
          this.#backoffUntil = 0;
          // Only now are they gone: records added meanwhile are behind the batch.
          this.#buffer.splice(0, batch.length);
          this.#flushedTotal += batch.length;
          while (this.#spooled[0] && this.#spooled[0].upTo <= this.#flushedTotal) fs.rmSync(this.#spooled.shift()!.file, { force: true });
          this.#events.flushed(batch.length);
          this.#events.buffered(this.#buffer.length);
        }
      } finally {
        this.#flushing = undefined;
      }
    })();
    return this.#flushing;
  }

  /** Flushes until empty or `deadline` (ms epoch); spools the rest. Returns how many were spooled. */
  async close(deadline: number): Promise<number> {
    clearInterval(this.#timer);
    while (this.#buffer.length > 0 && Date.now() < deadline) {
      this.#backoffUntil = 0;
      await this.flush();
      if (this.#buffer.length > 0) await new Promise((r) => setTimeout(r, Math.min(500, Math.max(0, deadline - Date.now()))));
    }
    await this.#flushing;
    const left = this.#buffer.length;
    if (left > 0 && this.#o.spoolDir) {
      fs.mkdirSync(this.#o.spoolDir, { recursive: true });
      const file = path.join(this.#o.spoolDir, `usage-${process.pid}-${Date.now()}.jsonl`);
      fs.writeFileSync(`${file}.tmp`, this.#buffer.map((r) => JSON.stringify(r)).join("\n") + "\n");
      fs.renameSync(`${file}.tmp`, file);
      // Records of earlier spool files still unflushed are in the new one.
      for (const old of this.#spooled.splice(0)) fs.rmSync(old.file, { force: true });
      this.#buffer = [];
    }
    return left;
  }

  /** Loads spooled records to the head of the buffer. */
  #loadSpool(): void {
    const dir = this.#o.spoolDir;
    if (!dir || !fs.existsSync(dir)) return;
    for (const name of fs.readdirSync(dir).filter((n) => /^usage-.*\.jsonl(\.loaded)?$/.test(n)).sort()) {
      const file = path.join(dir, name.replace(/\.loaded$/, ""));
      const loaded = `${file}.loaded`;
      if (name === path.basename(file)) fs.renameSync(file, loaded);
      // Renamed before loading so a second start does not double-load; kept until written (a crash
      // before that re-sends them: the store is idempotent).
      const lines = fs.readFileSync(loaded, "utf8").split("\n").filter(Boolean);
      for (const line of lines) {
        const r = JSON.parse(line) as UsageRecord & { createdAt: string };
        this.#buffer.push({ ...r, createdAt: new Date(r.createdAt) });
      }
      this.#spooled.push({ file: loaded, upTo: this.#buffer.length });
    }
  }
}

/**
 * An in-memory sink for tests and runs without DATABASE_URL (idempotent on requestId, like the
 * store). Keeps the most recent `limit` records only, so a long run without a database does not
 * grow without bound.
 */
export class MemoryUsageSink implements UsageSink {
  readonly records = new Map<string, UsageRecord>();
  readonly limit: number;
  failing = false;
  constructor(limit = 100_000) { this.limit = limit; }
  async insertBatch(records: UsageRecord[]): Promise<{ inserted: number }> {
    if (this.failing) throw new Error("sink unavailable");
    let inserted = 0;
    for (const r of records) if (!this.records.has(r.requestId)) { this.records.set(r.requestId, r); inserted++; }
    for (const id of this.records.keys()) { if (this.records.size <= this.limit) break; this.records.delete(id); }
    return { inserted };
  }
}

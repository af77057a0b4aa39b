/**
 * Persists audit events in the background: `push` never waits (reconciles are not held up by the
 * database), events are written in batches, a failed batch is retried with capped exponential
 * backoff (the store skips events it already holds, so a retry after a lost reply duplicates
 * nothing), and the buffer is bounded: past `maxBuffer` the oldest events are dropped, counted and
 * logged (the JSON log line of each event was written already). `close` flushes what is left.
 */
import type { AuditEvent } from "@crosslogic/crds";
import { backoffDelay } from "@crosslogic/kube/backoff";

export interface AuditBatchStore {
  insertBatch(events: AuditEvent[]): Promise<{ inserted: number }>;
}

export interface AuditPersisterOptions {
  maxBuffer?: number;
  batchSize?: number;
  flushIntervalMs?: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
  onPersisted?: (n: number) => void;
  onDropped?: (n: number) => void;
  onError?: (err: Error, attempt: number, retryInMs: number) => void;
}

export interface AuditPersister {
  push(event: AuditEvent): void;
  /** Events waiting to be written. */
  pending(): number;
  /** Stops the timer and writes what is buffered, retrying until `deadlineMs`; resolves with the events left unwritten. */
  close(deadlineMs?: number): Promise<number>;
}

export function createAuditPersister(store: AuditBatchStore, opts: AuditPersisterOptions = {}): AuditPersister {
  const maxBuffer = opts.maxBuffer ?? 50_000;
  const batchSize = opts.batchSize ?? 500;
  const flushIntervalMs = opts.flushIntervalMs ?? 1000;
  const retryBaseMs = opts.retryBaseMs ?? 500;
  const retryMaxMs = opts.retryMaxMs ?? 30_000;
  const buffer: AuditEvent[] = [];
  let timer: NodeJS.Timeout | undefined;
  let flushing: Promise<void> | undefined;
  let failures = 0;
  let closed = false;
  let dropped = 0;

  const schedule = (ms: number) => {
    if (closed || timer) return;
    timer = setTimeout(() => { timer = undefined; void flush(); }, ms);
    timer.unref();
  };

  /** Writes one batch; on failure the batch stays at the head of the buffer and the retry delay is returned. */
  async function writeOne(maxDelayMs = retryMaxMs): Promise<number | undefined> {
    const batch = buffer.slice(0, batchSize);
    const droppedBefore = dropped;
    try {
      await store.insertBatch(batch);
    } catch (err) {
      failures++;
      const delay = backoffDelay(failures, { baseMs: retryBaseMs, maxMs: maxDelayMs });
      opts.onError?.(err as Error, failures, delay);
      return delay;
    }
    failures = 0;
    // Events dropped from the head while the batch was in flight are no longer there to remove.
    buffer.splice(0, Math.max(0, batch.length - (dropped - droppedBefore)));
    opts.onPersisted?.(batch.length);
    return undefined;
  }

  function flush(): Promise<void> {
    flushing ??= (async () => {
      while (buffer.length > 0 && !closed) {
        const retryIn = await writeOne();
        if (retryIn !== undefined) {
          schedule(retryIn);
          return;
        }
      }
    })().finally(() => { flushing = undefined; });
    return flushing;
  }

  return {
    push(event) {
      buffer.push(event);
      if (buffer.length > maxBuffer) {
        const n = buffer.splice(0, buffer.length - maxBuffer).length;
        dropped += n;
        opts.onDropped?.(n);
      }
      if (closed) return;
      if (buffer.length >= batchSize && failures === 0) void flush();
      else schedule(flushIntervalMs);
    },
    pending: () => buffer.length,
    async close(deadlineMs = 10_000) {
      closed = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      await flushing;
      const deadline = Date.now() + deadlineMs;
      while (buffer.length > 0 && Date.now() < deadline) {
        const retryIn = await writeOne(2000);
        if (retryIn !== undefined) await new Promise((r) => setTimeout(r, Math.min(retryIn, Math.max(0, deadline - Date.now()))));
      }
      return buffer.length;
    },
  };
}

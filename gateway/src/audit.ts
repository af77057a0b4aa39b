/**
 * Audit lines in the seed's format (crds/src/audit.ts), one winston JSON line each, keys by prefix
 * only; also kept in a bounded ring for the admin API, and handed to the audit store when a
 * database is configured.
 */
import winston from "winston";
import { auditEvent, type AuditAction, type AuditEvent } from "@crosslogic/crds";
import { redact } from "./redact.ts";

export interface AuditStoreLike { insertBatch(events: AuditEvent[]): Promise<unknown> }

export class AuditLog {
  readonly #logger: winston.Logger;
  readonly #ring: AuditEvent[] = [];
  readonly #max: number;
  #pending: AuditEvent[] = [];
  #store: AuditStoreLike | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(stream: NodeJS.WritableStream = process.stdout, max = 10_000) {
    // The line is the event itself (plus `log: "audit"` to tell it from operational logs).
    this.#logger = winston.createLogger({
      level: "info",
      format: winston.format.printf((info) => JSON.stringify({ log: "audit", ...(info.event as AuditEvent) })),
      transports: [new winston.transports.Stream({ stream })],
    });
    this.#max = max;
  }

  /** Persists events in the background (batched every second; failures retried, bounded). */
  persistTo(store: AuditStoreLike): void {
    this.#store = store;
    this.#timer = setInterval(() => void this.#flush(), 1000);
    this.#timer.unref();
  }

  write(action: AuditAction, fields: Partial<Omit<AuditEvent, "action" | "timestamp">>): AuditEvent {
    // Every field goes through the one redaction (client-supplied text may hold a key).
    const event = auditEvent(action, redact(fields));
    this.#logger.info("audit", { event });
    this.#ring.push(event);
    if (this.#ring.length > this.#max) this.#ring.shift();
    if (this.#store) { this.#pending.push(event); if (this.#pending.length > this.#max) this.#pending.shift(); }
    return event;
  }

  recent(filter: { tenant?: string; action?: string; from?: number; to?: number; limit?: number }): AuditEvent[] {
    const out: AuditEvent[] = [];
    for (let i = this.#ring.length - 1; i >= 0 && out.length < (filter.limit ?? 1000); i--) {
      const e = this.#ring[i]!;
      const t = Date.parse(e.timestamp);
      if (filter.tenant && e.tenant_id !== filter.tenant) continue;
      if (filter.action && e.action !== filter.action) continue;
      if (filter.from && t < filter.from) continue;
      if (filter.to && t > filter.to) continue;
      out.push(e);
    }
    return out;
  }

  async #flush(): Promise<void> {
    if (!this.#store || this.#pending.length === 0) return;
    const batch = this.#pending.slice(0, 500);
    try {
      await this.#store.insertBatch(batch);
      this.#pending.splice(0, batch.length);
    } catch { /* retried next tick; the line is already in the log */ }
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.#flush();
    this.#logger.close();
  }
}

/** Redacts key-like text in every field of an operational log line (in place: winston's info object). */
const redactFormat = winston.format((info) => {
  const fields = info as Record<string, unknown>;
  for (const k of Object.keys(fields)) fields[k] = redact(fields[k]);
  return info;
});

/** Operational JSON logs (never keys: callers pass prefixes; anything key-shaped is redacted anyway). */
export function createLogger(level: string, stream: NodeJS.WritableStream = process.stderr): winston.Logger {
  return winston.createLogger({
    level,
    format: winston.format.combine(redactFormat(), winston.format.timestamp(), winston.format.json()),
    transports: [new winston.transports.Stream({ stream })],
  });
}

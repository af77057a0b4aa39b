import https from "node:https";
import { randomUUID } from "node:crypto";
import { auditEvent } from "@crosslogic/crds/audit";
import { auditRow, type Database } from "@crosslogic/data";
import type { Logger } from "./log.ts";
import { signatureHeader } from "./signing.ts";
import { guardedLookup, refusedUrl, type TargetPolicy } from "./ssrf.ts";

export interface SenderOptions extends TargetPolicy {
  /** Attempts before a delivery is dead-lettered (default 8). */
  maxAttempts?: number;
  /** First retry delay (default 10 s); doubles per attempt, with jitter, up to capMs. */
  baseDelayMs?: number;
  /** Largest retry delay (default 1 h). */
  capDelayMs?: number;
  /** How long a claimed delivery stays ours; a crashed sender's rows return after this (default 60 s). */
  leaseMs?: number;
  /** Per-request timeout (default 10 s; must be below leaseMs). */
  timeoutMs?: number;
  /** Rows claimed per round (default 20). */
  batchSize?: number;
  /** Extra CA certificates to trust (tests: a self-signed receiver). */
  ca?: string | Buffer;
  random?: () => number;
  now?: () => Date;
  /** Called once per recorded attempt (metrics). */
  onResult?: (result: "delivered" | "failed" | "dead_lettered") => void;
}

/** Resolves a webhook signing secret (the Tenant's secretRef, in namespace tenant-<name>). */
export type SecretResolver = (tenant: string, ref: { name: string; key: string }) => Promise<string>;

/** Exponential backoff with "equal jitter": half the delay fixed, half random; capped. */
export function backoffMs(attempt: number, baseMs: number, capMs: number, random: () => number = Math.random): number {
  const exp = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exp / 2 + random() * (exp / 2));
}

interface Claimed {
  id: string; tenant: string; eventId: string; eventType: string; url: string; body: string;
  secretRef: { name: string; key: string }; attempts: number;
}

interface AttemptResult { statusCode: number | null; error: string | null }

export interface Sender {
  /** Claims due deliveries and attempts each once; returns how many were attempted. */
  runOnce(): Promise<number>;
  /** Runs rounds until stop() (sleeping `idleMs` when nothing was due). */
  start(idleMs?: number): void;
  stop(): Promise<void>;
}

export function createSender(db: Database, resolveSecret: SecretResolver, log: Logger, opts: SenderOptions = {}): Sender {
  const me = `sender-${process.pid}-${randomUUID().slice(0, 8)}`;
  const maxAttempts = opts.maxAttempts ?? 8;
  const leaseMs = opts.leaseMs ?? 60_000;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const now = opts.now ?? (() => new Date());
  const lookup = guardedLookup(opts);

  async function claim(): Promise<Claimed[]> {
    return db.prisma.$queryRaw<Claimed[]>`
      update "WebhookDelivery" d
         set "lockedUntil" = now() + make_interval(secs => ${leaseMs / 1000}::float8), "lockedBy" = ${me}
       where d.id in (
         select id from "WebhookDelivery"
          where status = 'pending' and "nextAttemptAt" <= now() and ("lockedUntil" is null or "lockedUntil" < now())
          order by "nextAttemptAt" limit ${opts.batchSize ?? 20}
          for update skip locked)
      returning d.id, d.tenant, d."eventId", d."eventType", d.url, d.body, d."secretRef", d.attempts`;
  }

  function post(d: Claimed, secret: string): Promise<AttemptResult> {
    const refused = refusedUrl(d.url, opts);
    if (refused) return Promise.resolve({ statusCode: null, error: refused });
    const timestamp = Math.floor(now().getTime() / 1000);
    return new Promise((resolve) => {
      const req = https.request(d.url, {
        method: "POST",
        lookup: lookup as never,
        timeout: timeoutMs,
        ...(opts.ca ? { ca: opts.ca } : {}),
        headers: {
          "content-type": "application/json",
          "user-agent": "CrossLogic-Webhooks/1",
          "x-webhook-id": d.eventId,
          "x-webhook-event": d.eventType,
          "x-signature": signatureHeader(secret, d.body, timestamp),
        },
      }, (res) => {
        res.resume();
        res.on("end", () => {
          const code = res.statusCode ?? 0;
          // Redirects are never followed: a 3xx is a failed attempt.
          resolve({ statusCode: code, error: code >= 200 && code < 300 ? null : code >= 300 && code < 400 ? `redirect (${code}) not followed` : `HTTP ${code}` });
        });
        res.on("error", (err) => resolve({ statusCode: code(res.statusCode), error: err.message }));
      });
      req.on("timeout", () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)));
      req.on("error", (err) => resolve({ statusCode: null, error: err.message }));
      req.end(d.body);
    });
  }

  async function attempt(d: Claimed): Promise<void> {
    const started = now();
    let result: AttemptResult;
    try {
      result = await post(d, await resolveSecret(d.tenant, d.secretRef));
    } catch (err) {
      result = { statusCode: null, error: `signing secret unavailable: ${(err as Error).message}` };
    }
    const attemptNo = d.attempts + 1;
    const ok = result.error === null;
    const dead = !ok && attemptNo >= maxAttempts;
    const next = new Date(now().getTime() + backoffMs(attemptNo, opts.baseDelayMs ?? 10_000, opts.capDelayMs ?? 3_600_000, opts.random));
    const recorded = await db.prisma.$transaction(async (tx) => {
      // Fenced by lockedBy: if our lease expired and another sender took the row, record nothing.
      const updated = await tx.webhookDelivery.updateMany({
        where: { id: d.id, lockedBy: me, status: "pending" },
        data: ok
          ? { status: "delivered", deliveredAt: now(), attempts: attemptNo, lockedUntil: null, lockedBy: null, lastError: null }
          : { status: dead ? "dead" : "pending", attempts: attemptNo, nextAttemptAt: next, lockedUntil: null, lockedBy: null, lastError: result.error },
      });
      if (updated.count === 0) return false;
      await tx.webhookAttempt.create({
        data: { deliveryId: d.id, tenant: d.tenant, attempt: attemptNo, startedAt: started, durationMs: now().getTime() - started.getTime(), statusCode: result.statusCode, error: result.error },
      });
      if (dead) {
        await tx.auditEvent.createMany({
          data: [auditRow(auditEvent("webhook_dead_lettered", { actor_id: "billing", tenant_id: d.tenant, details: { delivery: d.id, event_id: d.eventId, type: d.eventType, url: d.url, attempts: attemptNo, error: result.error } }))],
          skipDuplicates: true,
        });
      }
      return true;
    });
    if (recorded) opts.onResult?.(ok ? "delivered" : dead ? "dead_lettered" : "failed");
    const meta = { tenant: d.tenant, delivery: d.id, eventId: d.eventId, url: d.url, attempt: attemptNo, statusCode: result.statusCode };
    if (ok) log.info("Delivered webhook", meta);
    else if (dead) log.warn("Dead-lettered webhook", { ...meta, error: result.error });
    else log.info("Webhook attempt failed; will retry", { ...meta, error: result.error, nextAttemptAt: next.toISOString() });
  }

  let running = false;
  let loop: Promise<void> | undefined;
  let wake: (() => void) | undefined;
  return {
    async runOnce() {
      const claimed = await claim();
      await Promise.all(claimed.map((d) => attempt(d)));
      return claimed.length;
    },
    start(idleMs = 1000) {
      if (running) return;
      running = true;
      loop = (async () => {
        while (running) {
          let n = 0;
          try { n = await this.runOnce(); } catch (err) { log.error("Webhook sender round failed", { error: (err as Error).message }); }
          if (n === 0 && running) await new Promise<void>((r) => { wake = r; setTimeout(r, idleMs); });
        }
      })();
    },
    async stop() {
      running = false;
      wake?.();
      await loop;
    },
  };
}

function code(c: number | undefined): number | null {
  return c ?? null;
}

/**
 * Limit-threshold notifications (`limit.threshold`): derived from the audit events the gateway
 * persists when a client's traffic hits a rate limit, read with a persisted cursor over AuditEvent.
 *
 * - Idempotent: the notification id is derived from the audit event id (`ntf_limit_<id>`) and a
 *   LimitNotification row (unique per audit event) is written in the same transaction as the outbox
 *   rows, so re-reading an event never notifies twice.
 * - Throttled: at most one notification per tenant, key and layer per window, measured on the
 *   events' own timestamps (any two notifications for the same triple are ≥ window apart).
 * - Serialised: a pass holds the cursor row's lock, so billing replicas take turns.
 * - No event lost to commit order: AuditEvent ids are taken before commit, so a lower id can appear
 *   after a higher one. The cursor stops before a gap in the ids until the gap is older than
 *   `gapTimeoutMs` (a rolled-back insert or a skipped duplicate leaves a gap that never fills);
 *   rows beyond the gap are handled meanwhile and, being idempotent, again on the next pass.
 */
import type { AuditAction } from "@crosslogic/crds/audit";
import type { Database } from "@crosslogic/data";
import type { Logger } from "./log.ts";
import { enqueueNotification, type WebhookEndpoint } from "./outbox.ts";
import type { TenantDirectory } from "./tenants.ts";

/**
 * Audit actions that mean "this traffic hit a limit". The gateway writes `rate_limit_block` when a
 * client becomes blocked after repeated 429s (details.layer says which limit); it does not audit
 * every single 429, so that is the signal available.
 */
export const LIMIT_ACTIONS: readonly AuditAction[] = ["rate_limit_block"];
export const LIMIT_CURSOR = "limit-threshold";

export interface LimitNotifierOptions {
  /** At most one notification per tenant, key and layer within this window. */
  windowMs: number;
  /** How long a gap in AuditEvent ids may stay open before the cursor moves past it (default 30 s). */
  gapTimeoutMs?: number;
  /** Events older than this when first read are not notified (backlog after downtime; default 1 h). */
  maxAgeMs?: number;
  /** Audit rows read per pass (default 1000). */
  batchSize?: number;
  now?: () => Date;
}

export interface LimitPassResult {
  scanned: number;
  notified: number;
  suppressed: number;
  position: bigint;
}

export function limitNotificationId(auditEventId: bigint): string {
  return `ntf_limit_${auditEventId}`;
}

interface Deps { db: Database; tenants: Pick<TenantDirectory, "webhooks">; log: Logger }

export function createLimitNotifier(deps: Deps, opts: LimitNotifierOptions) {
  const { db, log } = deps;
  const now = opts.now ?? (() => new Date());
  const gapTimeoutMs = opts.gapTimeoutMs ?? 30_000;
  const maxAgeMs = opts.maxAgeMs ?? 3_600_000;
  const batchSize = opts.batchSize ?? 1000;

  /** First run: start at the oldest event still young enough to notify (not at the beginning of history). */
  async function ensureCursor(): Promise<void> {
    const since = new Date(now().getTime() - maxAgeMs);
    await db.prisma.$executeRaw`
      insert into "ProcessingCursor" (name, position, "updatedAt")
      values (${LIMIT_CURSOR},
              coalesce((select min(id) - 1 from "AuditEvent" where timestamp >= ${since}), (select max(id) from "AuditEvent"), 0),
              now())
      on conflict (name) do nothing`;
  }

  async function pass(): Promise<LimitPassResult> {
    const t = now();
    const result = { scanned: 0, notified: 0, suppressed: 0, position: 0n };
    const endpointCache = new Map<string, WebhookEndpoint[]>();
    await db.prisma.$transaction(async (tx) => {
      const [cursor] = await tx.$queryRaw<{ position: bigint; gapSince: Date | null }[]>`
        select position, "gapSince" from "ProcessingCursor" where name = ${LIMIT_CURSOR} for update`;
      if (!cursor) throw new Error(`cursor ${LIMIT_CURSOR} missing`);
      const rows = await tx.auditEvent.findMany({ where: { id: { gt: cursor.position } }, orderBy: { id: "asc" }, take: batchSize });
      result.scanned = rows.length;

      // Advance over contiguous ids; stop at a gap unless it has been open longer than the timeout.
      let position = cursor.position;
      let gapSince = cursor.gapSince;
      for (const r of rows) {
        if (r.id === position + 1n || (gapSince && t.getTime() - gapSince.getTime() >= gapTimeoutMs)) {
          position = r.id;
          gapSince = null;
          continue;
        }
        gapSince ??= t;
        break;
      }
      if (rows.length === 0 || position === rows[rows.length - 1]!.id) gapSince = null;

      for (const r of rows) {
        if (!LIMIT_ACTIONS.includes(r.action as AuditAction) || !r.tenant) continue;
        if (t.getTime() - r.timestamp.getTime() > maxAgeMs) continue;
        const details = (r.details ?? {}) as Record<string, unknown>;
        const layer = typeof details.layer === "string" ? details.layer : "unknown";
        const keyPrefix = r.actorId ?? "";
        if (await tx.limitNotification.findUnique({ where: { auditEventId: r.id }, select: { id: true } })) continue;
        const near = await tx.limitNotification.findFirst({
          where: {
            tenant: r.tenant, keyPrefix, layer,
            eventAt: { gt: new Date(r.timestamp.getTime() - opts.windowMs), lt: new Date(r.timestamp.getTime() + opts.windowMs) },
          },
          select: { id: true },
        });
        if (near) { result.suppressed++; continue; }
        let endpoints = endpointCache.get(r.tenant);
        if (!endpoints) endpointCache.set(r.tenant, endpoints = await deps.tenants.webhooks(r.tenant));
        const id = limitNotificationId(r.id);
        await tx.limitNotification.create({ data: { tenant: r.tenant, keyPrefix, layer, auditEventId: r.id, eventAt: r.timestamp, notificationId: id } });
        await enqueueNotification(tx, endpoints, {
          tenant: r.tenant, type: "limit.threshold", id, created: r.timestamp,
          data: {
            layer, key_prefix: r.actorId, action: r.action, request_id: r.requestId, occurred_at: r.timestamp.toISOString(),
            window_seconds: Math.round(opts.windowMs / 1000),
          },
        });
        result.notified++;
        log.info("Enqueued limit-threshold notification", { tenant: r.tenant, keyPrefix: r.actorId, layer, auditEventId: r.id.toString() });
      }
      await tx.processingCursor.update({ where: { name: LIMIT_CURSOR }, data: { position, gapSince } });
      result.position = position;
    }, { timeout: 60_000, maxWait: 30_000 });
    return result;
  }

  return {
    /** Reads audit events until caught up (at most `maxPasses` batches); returns the totals. */
    async runOnce(maxPasses = 20): Promise<LimitPassResult> {
      await ensureCursor();
      const total = { scanned: 0, notified: 0, suppressed: 0, position: 0n };
      for (let i = 0; i < maxPasses; i++) {
        const before = total.position;
        const r = await pass();
        total.scanned += r.scanned;
        total.notified += r.notified;
        total.suppressed += r.suppressed;
        total.position = r.position;
        // Caught up, or held at an open gap (the rows beyond it were handled; the gap waits for its timeout).
        if (r.scanned < batchSize || (i > 0 && r.position === before)) break;
      }
      return total;
    },
  };
}

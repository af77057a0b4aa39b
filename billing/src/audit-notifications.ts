/**
 * Tenant notifications derived from the audit events other components persist (the gateway's
 * `rate_limit_block` → `limit.threshold`, `usage_anomaly` → `usage.anomaly`), read with a persisted
 * cursor over AuditEvent. One rule per notification type says which actions it reads, how events
 * are grouped for throttling and what the webhook carries; this module owns the rest:
 *
 * - Idempotent: the notification id is derived from the audit event id and a LimitNotification row
 *   (unique per audit event; the table serves every rule) is written in the same transaction as the
 *   outbox rows, so re-reading an event never notifies twice.
 * - Throttled: at most one notification per tenant, key prefix and group per window, measured on
 *   the events' own timestamps (any two notifications of the same group are ≥ window apart). A
 *   rule may let an event through when only lesser groups were notified (an escalation).
 * - Serialised: a pass holds its cursor row's lock, so billing replicas take turns.
 * - No event lost to commit order: AuditEvent ids are taken before commit, so a lower id can appear
 *   after a higher one. The cursor stops before a gap in the ids until the gap is older than
 *   `gapTimeoutMs` (a rolled-back insert or a skipped duplicate leaves a gap that never fills);
 *   rows beyond the gap are handled meanwhile and, being idempotent, again on the next pass.
 */
import type { AuditAction } from "@crosslogic/crds/audit";
import type { Database, Prisma } from "@crosslogic/data";
import type { Logger } from "./log.ts";
import { enqueueNotification, type WebhookEndpoint, type WebhookEventType } from "./outbox.ts";
import type { TenantDirectory } from "./tenants.ts";

export type AuditRow = Prisma.AuditEventModel;

/** Where an event falls for throttling. */
export interface ThrottleGroup {
  /** Prefix of the API key the event is about ("" when none). */
  keyPrefix: string;
  /** What else tells events apart (stored in LimitNotification.layer). */
  group: string;
  /** Groups whose notification within the window suppresses this one (default: its own group only). */
  suppressedBy?: readonly string[];
}

export interface AuditNotificationRule {
  type: WebhookEventType;
  /** Name of the ProcessingCursor row of this rule. */
  cursor: string;
  actions: readonly AuditAction[];
  /** The notification id of an audit event (stable: `X-Webhook-Id`). */
  id(auditEventId: bigint): string;
  throttle(row: AuditRow): ThrottleGroup;
  /** The webhook's `data`; `windowMs` is the throttling window. */
  data(row: AuditRow, windowMs: number): Record<string, unknown>;
}

export interface AuditNotifierOptions {
  /** At most one notification per tenant, key prefix and group within this window. */
  windowMs: number;
  /** How long a gap in AuditEvent ids may stay open before the cursor moves past it (default 30 s). */
  gapTimeoutMs?: number;
  /** Events older than this when first read are not notified (backlog after downtime; default 1 h). */
  maxAgeMs?: number;
  /** Audit rows read per pass (default 1000). */
  batchSize?: number;
  now?: () => Date;
}

export interface AuditPassResult {
  scanned: number;
  notified: number;
  suppressed: number;
  position: bigint;
}

export interface AuditNotifierDeps { db: Database; tenants: Pick<TenantDirectory, "webhooks">; log: Logger }

/** The JSON details of an audit row as a plain object. */
export function detailsOf(row: AuditRow): Record<string, unknown> {
  const d = row.details;
  return d && typeof d === "object" && !Array.isArray(d) ? d as Record<string, unknown> : {};
}

export function createAuditNotifier(deps: AuditNotifierDeps, rule: AuditNotificationRule, opts: AuditNotifierOptions) {
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
      values (${rule.cursor},
              coalesce((select min(id) - 1 from "AuditEvent" where timestamp >= ${since}), (select max(id) from "AuditEvent"), 0),
              now())
      on conflict (name) do nothing`;
  }

  async function pass(): Promise<AuditPassResult> {
    const t = now();
    const result = { scanned: 0, notified: 0, suppressed: 0, position: 0n };
    const endpointCache = new Map<string, WebhookEndpoint[]>();
    await db.prisma.$transaction(async (tx) => {
      const [cursor] = await tx.$queryRaw<{ position: bigint; gapSince: Date | null }[]>`
        select position, "gapSince" from "ProcessingCursor" where name = ${rule.cursor} for update`;
      if (!cursor) throw new Error(`cursor ${rule.cursor} missing`);
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
        if (!rule.actions.includes(r.action as AuditAction) || !r.tenant) continue;
        if (t.getTime() - r.timestamp.getTime() > maxAgeMs) continue;
        const { keyPrefix, group, suppressedBy = [group] } = rule.throttle(r);
        if (await tx.limitNotification.findUnique({ where: { auditEventId: r.id }, select: { id: true } })) continue;
        const near = await tx.limitNotification.findFirst({
          where: {
            tenant: r.tenant, keyPrefix, layer: { in: [...suppressedBy] },
            eventAt: { gt: new Date(r.timestamp.getTime() - opts.windowMs), lt: new Date(r.timestamp.getTime() + opts.windowMs) },
          },
          select: { id: true },
        });
        if (near) { result.suppressed++; continue; }
        let endpoints = endpointCache.get(r.tenant);
        if (!endpoints) endpointCache.set(r.tenant, endpoints = await deps.tenants.webhooks(r.tenant));
        const id = rule.id(r.id);
        await tx.limitNotification.create({ data: { tenant: r.tenant, keyPrefix, layer: group, auditEventId: r.id, eventAt: r.timestamp, notificationId: id } });
        await enqueueNotification(tx, endpoints, { tenant: r.tenant, type: rule.type, id, created: r.timestamp, data: rule.data(r, opts.windowMs) });
        result.notified++;
        log.info("Enqueued audit-derived notification", { type: rule.type, tenant: r.tenant, keyPrefix: keyPrefix || null, group, auditEventId: r.id.toString() });
      }
      await tx.processingCursor.update({ where: { name: rule.cursor }, data: { position, gapSince } });
      result.position = position;
    }, { timeout: 60_000, maxWait: 30_000 });
    return result;
  }

  return {
    /** Reads audit events until caught up (at most `maxPasses` batches); returns the totals. */
    async runOnce(maxPasses = 20): Promise<AuditPassResult> {
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

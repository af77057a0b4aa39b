import { createHash } from "node:crypto";
import type { AuditAction, AuditEvent } from "@crosslogic/crds/audit";
import type { Prisma } from "./generated/client.ts";
import type { Database } from "./database.ts";

export interface AuditQuery {
  /** Omit for events of every tenant, null for events outside any tenant. */
  tenant?: string | null;
  action?: AuditAction | AuditAction[];
  actorId?: string;
  requestId?: string;
  /** Inclusive. */
  from?: Date;
  /** Exclusive. */
  to?: Date;
  /** Default 1000, at most 10,000. */
  limit?: number;
}

export interface AuditStore {
  /** Persists events; an event already stored (same content) is skipped, so retried batches are safe. */
  insertBatch(events: AuditEvent[]): Promise<{ inserted: number }>;
  /** Events in the security document's JSON format, oldest first. */
  query(q: AuditQuery): Promise<AuditEvent[]>;
}

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === "object" && !(value instanceof Date)) {
    return Object.fromEntries(Object.keys(value).sort().map((k) => [k, canonical((value as Record<string, unknown>)[k])]));
  }
  return value;
}

/** SHA-256 of the event with keys in a fixed order: equal events have equal fingerprints. */
export function auditFingerprint(e: AuditEvent): string {
  return createHash("sha256").update(JSON.stringify(canonical({ ...e, timestamp: new Date(e.timestamp).toISOString() }))).digest("hex");
}

/** The table row for an event (for writers that insert inside their own transaction). */
export function auditRow(e: AuditEvent): Prisma.AuditEventCreateManyInput {
  return {
    fingerprint: auditFingerprint(e),
    timestamp: new Date(e.timestamp),
    requestId: e.request_id,
    action: e.action,
    actorId: e.actor_id,
    tenant: e.tenant_id,
    ipAddress: e.ip_address,
    details: (e.details ?? {}) as Prisma.InputJsonValue,
  };
}

export function createAuditStore(db: Database): AuditStore {
  const { prisma } = db;
  return {
    async insertBatch(events) {
      if (events.length === 0) return { inserted: 0 };
      let inserted = 0;
      for (let i = 0; i < events.length; i += 1000) {
        const data = events.slice(i, i + 1000).map(auditRow);
        inserted += (await prisma.auditEvent.createMany({ data, skipDuplicates: true })).count;
      }
      return { inserted };
    },
    async query(q) {
      const limit = Math.min(Math.max(1, q.limit ?? 1000), 10_000);
      const rows = await prisma.auditEvent.findMany({
        where: {
          ...(q.tenant !== undefined ? { tenant: q.tenant } : {}),
          ...(q.action ? { action: Array.isArray(q.action) ? { in: q.action } : q.action } : {}),
          ...(q.actorId ? { actorId: q.actorId } : {}),
          ...(q.requestId ? { requestId: q.requestId } : {}),
          ...(q.from || q.to ? { timestamp: { ...(q.from ? { gte: q.from } : {}), ...(q.to ? { lt: q.to } : {}) } } : {}),
        },
        orderBy: [{ timestamp: "asc" }, { id: "asc" }],
        take: limit,
      });
      return rows.map((r) => ({
        timestamp: r.timestamp.toISOString(),
        request_id: r.requestId,
        action: r.action as AuditAction,
        actor_id: r.actorId,
        tenant_id: r.tenant,
        ip_address: r.ipAddress,
        details: (r.details ?? {}) as Record<string, unknown>,
      }));
    },
  };
}

/**
 * @crosslogic/data: PostgreSQL through Prisma. Migrations are applied with `migrate(url)` (offline,
 * WebAssembly schema engine) or `prisma migrate deploy`; the stores below are what other
 * components use.
 */
export { createDatabase, type Database, type DatabaseOptions } from "./database.ts";
export { createUsageStore, utcDay, type UsageStore, type UsageQuery, type UsageTotals } from "./usage.ts";
export { createAuditStore, auditFingerprint, auditRow, type AuditStore, type AuditQuery } from "./audit.ts";
export { migrate, schemaDrift } from "./migrate.ts";
export type { PrismaClient, Prisma } from "./generated/client.ts";
export { runRetention, type RetentionPolicy, type RetentionReport } from "./retention.ts";
export { eraseTenant, type ErasureReport } from "./erasure.ts";
export { enqueueNotification, type Notification, type WebhookEndpoint, type WebhookEventType } from "./outbox.ts";

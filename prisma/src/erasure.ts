import { auditEvent } from "@crosslogic/crds/audit";
import { createAuditStore } from "./audit.ts";
import type { Database } from "./database.ts";

export interface ErasureReport {
  tenant: string;
  /** Rows deleted per table. */
  erased: {
    usageRecords: number; auditEvents: number; billingAccounts: number; stripeEvents: number;
    webhookDeliveries: number; webhookAttempts: number; usageReports: number; limitNotifications: number;
  };
}

/**
 * Erases everything stored about a tenant (GDPR/CCPA deletion), in one transaction, and says what it
 * erased. The erasure itself is then recorded as a `tenant_data_erased` audit event outside the
 * tenant (tenant_id null, the name and the counts in details), so the record of the deletion is not
 * itself erased by a repeat request. Stripe keeps its own records of the customer.
 */
export async function eraseTenant(db: Database, tenant: string, actor = "operator"): Promise<ErasureReport> {
  const erased = await db.prisma.$transaction(async (tx) => {
    const webhookAttempts = await tx.webhookAttempt.deleteMany({ where: { tenant } });
    return {
      usageRecords: (await tx.usageRecord.deleteMany({ where: { tenant } })).count,
      auditEvents: (await tx.auditEvent.deleteMany({ where: { tenant } })).count,
      billingAccounts: (await tx.billingAccount.deleteMany({ where: { tenant } })).count,
      stripeEvents: (await tx.stripeEvent.deleteMany({ where: { tenant } })).count,
      webhookDeliveries: (await tx.webhookDelivery.deleteMany({ where: { tenant } })).count,
      webhookAttempts: webhookAttempts.count,
      usageReports: (await tx.usageReport.deleteMany({ where: { tenant } })).count,
      limitNotifications: (await tx.limitNotification.deleteMany({ where: { tenant } })).count,
    };
  }, { timeout: 120_000 });
  await createAuditStore(db).insertBatch([auditEvent("tenant_data_erased", { actor_id: actor, details: { tenant, erased } })]);
  return { tenant, erased };
}

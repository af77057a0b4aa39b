import { auditEvent } from "@crosslogic/crds/audit";
import { auditRow, type Database } from "@crosslogic/data";
import { billingDecision } from "./billing-state.ts";
import type { Logger } from "./log.ts";
import { enqueueNotification } from "./outbox.ts";
import type { TenantDirectory } from "./tenants.ts";

export interface ReconcileDeps {
  db: Database;
  tenants: TenantDirectory;
  log: Logger;
  graceMs: number;
  now?: () => Date;
}

export type ReconcileResult = "suspended" | "resumed" | "unchanged" | "tenant_missing";

/**
 * Level-triggered: makes Tenant.spec.suspended follow the account's billing decision. The Tenant is
 * written first (server-side apply, idempotent), then the flip is recorded with a conditional update,
 * so a crash in between repeats only the idempotent apply, and the audit event and notification are
 * written exactly once.
 */
export async function reconcileTenant(deps: ReconcileDeps, tenant: string): Promise<ReconcileResult> {
  const now = (deps.now ?? (() => new Date()))();
  const account = await deps.db.prisma.billingAccount.findUnique({ where: { tenant } });
  if (!account) return "unchanged";
  const decision = billingDecision(account, now, deps.graceMs);
  if (decision.suspend === account.suspendedByBilling) {
    // Re-assert a suspension (someone may have cleared the field); the apply is a no-op when unchanged.
    if (decision.suspend && !(await deps.tenants.setSuspended(tenant, true))) return "tenant_missing";
    return "unchanged";
  }
  if (!(await deps.tenants.setSuspended(tenant, decision.suspend))) return "tenant_missing";
  const endpoints = await deps.tenants.webhooks(tenant);
  const flipped = await deps.db.prisma.$transaction(async (tx) => {
    const res = await tx.billingAccount.updateMany({
      where: { tenant, suspendedByBilling: !decision.suspend },
      data: { suspendedByBilling: decision.suspend, suspendedAt: decision.suspend ? now : null },
    });
    if (res.count === 0) return false;
    const action = decision.suspend ? "tenant_suspended" : "tenant_resumed";
    const details = decision.suspend
      ? { reason: decision.reason, since: (decision.reason === "payment_failed" ? account.paymentFailingSince : account.cancelledAt)?.toISOString(), grace_seconds: deps.graceMs / 1000 }
      : { reason: "billing_restored" };
    await tx.auditEvent.createMany({ data: [auditRow(auditEvent(action, { timestamp: now, actor_id: "billing", tenant_id: tenant, details }))], skipDuplicates: true });
    await enqueueNotification(tx, endpoints, {
      tenant, type: decision.suspend ? "tenant.suspended" : "tenant.resumed", data: details,
      id: `ntf_${tenant}_${action}_${now.getTime()}`, created: now,
    });
    return true;
  });
  if (!flipped) return "unchanged";
  deps.log.info(decision.suspend ? "Suspended Tenant for billing" : "Resumed Tenant after billing was restored", { tenant, reason: decision.reason });
  return decision.suspend ? "suspended" : "resumed";
}

/** Reconciles every account that has, or had, a billing problem. */
export async function reconcileAll(deps: ReconcileDeps): Promise<Record<string, ReconcileResult>> {
  const accounts = await deps.db.prisma.billingAccount.findMany({
    where: { OR: [{ suspendedByBilling: true }, { paymentFailingSince: { not: null } }, { cancelledAt: { not: null } }] },
    select: { tenant: true },
  });
  const out: Record<string, ReconcileResult> = {};
  for (const { tenant } of accounts) {
    try {
      out[tenant] = await reconcileTenant(deps, tenant);
    } catch (err) {
      deps.log.error("Billing reconcile of Tenant failed", { tenant, error: (err as Error).message });
    }
  }
  return out;
}

import { auditEvent } from "@crosslogic/crds/audit";
import { auditRow } from "@crosslogic/data";
import { applyStripeEvent, customerOf, type AccountState, type StripeEventLike } from "./billing-state.ts";
import type { Logger } from "./log.ts";
import { enqueueNotification } from "./outbox.ts";
import { reconcileTenant, type ReconcileDeps } from "./reconcile.ts";

export type EventStatus = "processed" | "stale" | "ignored" | "duplicate";

export interface ProcessResult {
  status: EventStatus;
  tenant: string | null;
  detail: string;
}

/**
 * Applies one verified Stripe event exactly once. The event id is inserted into StripeEvent in the
 * same transaction that changes the billing account, writes the audit event and queues any
 * notification: a duplicate (retry, replay, concurrent delivery) finds the id and changes nothing;
 * a failure rolls everything back and Stripe's retry starts clean.
 */
export async function processStripeEvent(deps: ReconcileDeps & { log: Logger }, event: StripeEventLike & { livemode?: boolean }): Promise<ProcessResult> {
  const { db } = deps;
  if (await db.prisma.stripeEvent.findUnique({ where: { id: event.id }, select: { id: true } })) {
    return { status: "duplicate", tenant: null, detail: "event already received" };
  }
  const customer = customerOf(event);
  const tenant = customer ? await resolveTenant(deps, customer) : null;
  const endpoints = tenant ? await deps.tenants.webhooks(tenant) : [];
  const objectId = typeof event.data.object.id === "string" ? event.data.object.id : null;

  const result = await db.prisma.$transaction(async (tx): Promise<ProcessResult> => {
    const inserted = await tx.stripeEvent.createMany({
      data: [{ id: event.id, type: event.type, created: new Date(event.created * 1000), livemode: event.livemode ?? false, tenant, objectId, status: "received" }],
      skipDuplicates: true,
    });
    // A concurrent delivery of the same event committed first.
    if (inserted.count === 0) return { status: "duplicate", tenant, detail: "event already received" };
    const finish = async (status: Exclude<EventStatus, "duplicate">, detail: string): Promise<ProcessResult> => {
      await tx.stripeEvent.update({ where: { id: event.id }, data: { status, detail, processedAt: new Date() } });
      return { status, tenant, detail };
    };
    if (!tenant) return finish("ignored", customer ? `no Tenant has stripeCustomerId ${customer}` : "event names no customer");

    await tx.$executeRaw`insert into "BillingAccount" (tenant, "stripeCustomerId", "updatedAt") values (${tenant}, ${customer}, now()) on conflict (tenant) do nothing`;
    // Serialise events of one tenant: the row lock is held until commit.
    const [account] = await tx.$queryRaw<AccountState[]>`
      select "subscriptionId", "subscriptionStatus", "subscriptionEventAt", "paymentFailingSince", "paymentEventAt", "cancelledAt"
        from "BillingAccount" where tenant = ${tenant} for update`;
    const outcome = applyStripeEvent(account!, event);
    if (outcome.kind !== "applied") return finish(outcome.kind, outcome.detail);
    await tx.billingAccount.update({ where: { tenant }, data: { ...outcome.state, stripeCustomerId: customer } });
    await tx.auditEvent.createMany({
      data: [auditRow(auditEvent(outcome.audit, {
        timestamp: new Date(event.created * 1000), actor_id: "stripe", tenant_id: tenant,
        details: { stripe_event_id: event.id, type: event.type, object_id: objectId, summary: outcome.detail },
      }))],
      skipDuplicates: true,
    });
    if (outcome.notify) {
      await enqueueNotification(tx, endpoints, { tenant, type: outcome.notify, id: `ntf_${event.id}`, created: new Date(event.created * 1000), data: { stripe_event_id: event.id, summary: outcome.detail } });
    }
    return finish("processed", outcome.detail);
  });
  if (result.status === "processed" && tenant) {
    // Act on the new state now (a grace period of 0, or a payment that restores the tenant); the
    // billing loop does the same periodically, so a failure here is retried there.
    await reconcileTenant(deps, tenant).catch((err: unknown) => deps.log.warn("Billing reconcile after Stripe event failed; the loop will retry", { tenant, error: (err as Error).message }));
  }
  return result;
}

async function resolveTenant(deps: ReconcileDeps, customer: string): Promise<string | null> {
  const known = await deps.db.prisma.billingAccount.findUnique({ where: { stripeCustomerId: customer }, select: { tenant: true } });
  return known?.tenant ?? deps.tenants.findByCustomer(customer);
}

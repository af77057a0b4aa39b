/**
 * Pure billing-state rules: how a Stripe event changes a tenant's billing account, and whether the
 * account's state means the tenant must be suspended. Events may arrive duplicated (handled by the
 * event-id log before these run) and out of order (handled here, by Stripe's `created` time).
 */
import type { AuditAction } from "@crosslogic/crds/audit";
import type { WebhookEventType } from "./outbox.ts";

export interface AccountState {
  subscriptionId: string | null;
  subscriptionStatus: string | null;
  subscriptionEventAt: Date | null;
  paymentFailingSince: Date | null;
  paymentEventAt: Date | null;
  cancelledAt: Date | null;
}

export interface StripeEventLike {
  id: string;
  type: string;
  /** Unix seconds. */
  created: number;
  data: { object: Record<string, unknown> };
}

export type Outcome =
  | { kind: "applied"; state: AccountState; audit: AuditAction; notify?: WebhookEventType; detail: string }
  | { kind: "stale"; detail: string }
  | { kind: "ignored"; detail: string };

export const HandledEventTypes = [
  "invoice.payment_failed", "invoice.paid", "invoice.payment_succeeded",
  "customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted",
] as const;

/** The Stripe customer an event is about (string id or expanded object). */
export function customerOf(event: StripeEventLike): string | null {
  const c = event.data.object.customer;
  if (typeof c === "string") return c;
  if (c && typeof c === "object" && typeof (c as { id?: unknown }).id === "string") return (c as { id: string }).id;
  return null;
}

/** On equal `created` seconds the more final subscription status wins, whatever the arrival order. */
const statusRank: Record<string, number> = { canceled: 4, incomplete_expired: 4, unpaid: 3, past_due: 2 };
const rank = (s: string | null) => (s ? statusRank[s] ?? 1 : 0);

export function applyStripeEvent(state: AccountState, event: StripeEventLike): Outcome {
  const at = new Date(event.created * 1000);
  const obj = event.data.object;
  switch (event.type) {
    case "invoice.payment_failed": {
      // A failure never overrides a success of the same second: the success wins ties.
      if (state.paymentEventAt && at.getTime() <= state.paymentEventAt.getTime()) return { kind: "stale", detail: "an equally new or newer invoice event was already applied" };
      return {
        kind: "applied", audit: "payment_failed", notify: "payment.failed",
        state: { ...state, paymentEventAt: at, paymentFailingSince: state.paymentFailingSince ?? at },
        detail: `invoice ${String(obj.id)} payment failed`,
      };
    }
    case "invoice.paid":
    case "invoice.payment_succeeded": {
      if (state.paymentEventAt && at.getTime() < state.paymentEventAt.getTime()) return { kind: "stale", detail: "a newer invoice event was already applied" };
      return {
        kind: "applied", audit: "payment_succeeded",
        state: { ...state, paymentEventAt: at, paymentFailingSince: null },
        detail: `invoice ${String(obj.id)} paid`,
      };
    }
    case "customer.subscription.created":
    case "customer.subscription.updated":
    case "customer.subscription.deleted": {
      const status = event.type === "customer.subscription.deleted" ? "canceled" : String(obj.status ?? "active");
      const prev = state.subscriptionEventAt?.getTime();
      if (prev !== undefined && (at.getTime() < prev || (at.getTime() === prev && rank(status) < rank(state.subscriptionStatus)))) {
        return { kind: "stale", detail: "a newer subscription event was already applied" };
      }
      const cancelled = status === "canceled" || status === "incomplete_expired";
      const canceledAt = typeof obj.canceled_at === "number" ? new Date(obj.canceled_at * 1000) : at;
      return {
        kind: "applied",
        audit: cancelled ? "subscription_cancelled" : "billing_event",
        state: {
          ...state,
          subscriptionId: typeof obj.id === "string" ? obj.id : state.subscriptionId,
          subscriptionStatus: status,
          subscriptionEventAt: at,
          cancelledAt: cancelled ? (state.cancelledAt ?? canceledAt) : null,
          // Stripe's own dunning says payment is failing even if we missed the invoice event.
          paymentFailingSince: status === "unpaid" || status === "past_due" ? (state.paymentFailingSince ?? at) : state.paymentFailingSince,
        },
        detail: `subscription ${String(obj.id)} is ${status}`,
      };
    }
    default:
      return { kind: "ignored", detail: `event type ${event.type} does not affect billing state` };
  }
}

export type SuspendReason = "payment_failed" | "subscription_cancelled";

export interface Decision {
  suspend: boolean;
  reason: SuspendReason | null;
  /** When the grace period of a pending problem ends (the tenant will be suspended then). */
  dueAt: Date | null;
}

/** Persistent payment failure or a cancelled subscription suspends the tenant once the grace period has passed. */
export function billingDecision(state: Pick<AccountState, "paymentFailingSince" | "cancelledAt">, now: Date, graceMs: number): Decision {
  const candidates: Array<[SuspendReason, Date]> = [];
  if (state.cancelledAt) candidates.push(["subscription_cancelled", state.cancelledAt]);
  if (state.paymentFailingSince) candidates.push(["payment_failed", state.paymentFailingSince]);
  candidates.sort((a, b) => a[1].getTime() - b[1].getTime());
  const first = candidates[0];
  if (!first) return { suspend: false, reason: null, dueAt: null };
  const dueAt = new Date(first[1].getTime() + graceMs);
  return { suspend: now.getTime() >= dueAt.getTime(), reason: first[0], dueAt };
}

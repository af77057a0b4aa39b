/**
 * The outgoing-webhook outbox (table WebhookDelivery): one row per endpoint subscribed to a
 * notification. Written by billing and by the operator; sent by billing's sender.
 */
import { randomUUID } from "node:crypto";
import type { WebhookEvents } from "@crosslogic/crds/resources";
import type { Database } from "./database.ts";
import type { Prisma } from "./generated/client.ts";

export type WebhookEventType = (typeof WebhookEvents)[number];

/** An entry of Tenant.spec.webhooks. */
export interface WebhookEndpoint {
  url: string;
  secretRef: { name: string; key: string };
  events: string[];
}

export interface Notification {
  tenant: string;
  type: WebhookEventType;
  data: Record<string, unknown>;
  /** Stable id (sent as X-Webhook-Id); pass one derived from the cause so a retried enqueue is a no-op. */
  id?: string;
  created?: Date;
}

type Tx = Pick<Database["prisma"], "webhookDelivery">;

/**
 * Writes one outbox row per endpoint subscribed to the notification's type (a row with the same
 * id and URL already there is skipped). Call it inside the transaction that records the cause, so
 * the notification exists if and only if the change does.
 */
export async function enqueueNotification(tx: Tx, endpoints: WebhookEndpoint[], n: Notification): Promise<number> {
  const id = n.id ?? `ntf_${randomUUID()}`;
  const created = n.created ?? new Date();
  const body = JSON.stringify({ id, type: n.type, created: Math.floor(created.getTime() / 1000), tenant: n.tenant, data: n.data });
  const rows = endpoints.filter((e) => e.events.includes(n.type)).map((e) => ({
    tenant: n.tenant, eventId: id, eventType: n.type, url: e.url, secretRef: e.secretRef as unknown as Prisma.InputJsonValue, body,
  }));
  if (rows.length === 0) return 0;
  return (await tx.webhookDelivery.createMany({ data: rows, skipDuplicates: true })).count;
}

/**
 * Outgoing notifications (Tenant.spec.webhooks), enqueued into the persisted outbox that billing's
 * sender delivers. Which lifecycle changes notify is decided here (pure), from the status the
 * operator last wrote and the state it is about to write: the same change seen again (a resync, a
 * retried reconcile, a restarted operator) yields the same deterministic id, and the outbox keeps
 * one row per id and URL. The plaintext key is never part of a notification (prefix only).
 */
import { createHash } from "node:crypto";
import type { ApiKey, ApiKeyStatus, Tenant } from "@crosslogic/crds";
import type { WebhookEndpoint, WebhookEventType } from "@crosslogic/data/outbox";
import type { KeyMaterial } from "../controllers/api-key/key-material.ts";
import { isExpired } from "../controllers/api-key/decide.ts";

export interface NotificationRequest {
  type: WebhookEventType;
  /** Deterministic: derived from the object's uid and the change. */
  id: string;
  data: Record<string, unknown>;
}

/** The id of a change: stable across restarts and resyncs, distinct for distinct changes. */
export function notificationId(uid: string, type: WebhookEventType, discriminator = ""): string {
  return `ntf_${createHash("sha256").update(`${uid}\n${type}\n${discriminator}`).digest("hex").slice(0, 32)}`;
}

type Meta = { metadata: { name: string; namespace?: string; uid?: string; generation?: number } };

/**
 * Key notifications due, given the status last written (`before`) and the key material now:
 * created (first key issued), rotated (a new rotation time), revoked, expiring (within `noticeMs`
 * of expiry), expired (an Active key passed its expiry).
 */
export function keyNotifications(apiKey: ApiKey & Meta, before: ApiKeyStatus | undefined, material: KeyMaterial, now: Date, noticeMs: number): NotificationRequest[] {
  const uid = apiKey.metadata.uid ?? `${apiKey.metadata.namespace}/${apiKey.metadata.name}`;
  const data = {
    name: apiKey.metadata.name, namespace: apiKey.metadata.namespace, environment: apiKey.spec.environment, role: apiKey.spec.role,
    prefix: material.current?.prefix ?? before?.prefix ?? null, ...(apiKey.spec.expiresAt ? { expiresAt: apiKey.spec.expiresAt } : {}),
  };
  const out: NotificationRequest[] = [];
  if (apiKey.spec.revoked) {
    if (before?.phase !== "Revoked") out.push({ type: "key.revoked", id: notificationId(uid, "key.revoked"), data });
    return out;
  }
  if (!material.current) return out;
  if (!before?.prefix) out.push({ type: "key.created", id: notificationId(uid, "key.created"), data });
  if (material.rotatedAt && material.rotatedAt !== before?.rotatedAt) {
    const previous = material.previous.at(-1);
    out.push({
      type: "key.rotated", id: notificationId(uid, "key.rotated", material.rotatedAt),
      data: { ...data, rotatedAt: material.rotatedAt, ...(previous ? { previousPrefix: previous.prefix, previousKeyExpiresAt: previous.expiresAt } : {}) },
    });
  }
  if (apiKey.spec.expiresAt) {
    const expiresAt = Date.parse(apiKey.spec.expiresAt);
    if (isExpired(apiKey, now)) {
      if (before?.phase === "Active") out.push({ type: "key.expired", id: notificationId(uid, "key.expired", apiKey.spec.expiresAt), data });
    } else if (expiresAt - now.getTime() <= noticeMs) {
      out.push({ type: "key.expiring", id: notificationId(uid, "key.expiring", apiKey.spec.expiresAt), data });
    }
  }
  return out;
}

/** Milliseconds until a key enters its expiry-notice window, if that is still ahead. */
export function msUntilExpiryNotice(apiKey: ApiKey, now: Date, noticeMs: number): number | undefined {
  if (!apiKey.spec.expiresAt || apiKey.spec.revoked) return undefined;
  const d = Date.parse(apiKey.spec.expiresAt) - noticeMs - now.getTime();
  return d > 0 ? d + 1000 : undefined;
}

/** Tenant notifications due when its phase changes between Suspended and not (per generation). */
export function tenantNotifications(tenant: Tenant & Meta, phaseBefore: string | undefined): NotificationRequest[] {
  const uid = tenant.metadata.uid ?? tenant.metadata.name;
  const generation = String(tenant.metadata.generation ?? 0);
  const data = { tenant: tenant.metadata.name };
  if (tenant.spec.suspended && phaseBefore !== "Suspended") return [{ type: "tenant.suspended", id: notificationId(uid, "tenant.suspended", generation), data }];
  if (!tenant.spec.suspended && phaseBefore === "Suspended") return [{ type: "tenant.resumed", id: notificationId(uid, "tenant.resumed", generation), data }];
  return [];
}

export interface Notifier {
  /**
   * Enqueues the notifications the tenant's webhooks subscribe to. Resolves once they are in the
   * outbox (a no-op without a database or subscribers); rejects when the database fails, so the
   * reconcile is retried and the change noticed again.
   */
  notify(tenant: Tenant & Meta | undefined, requests: NotificationRequest[]): Promise<void>;
}

export type EnqueueFn = (endpoints: WebhookEndpoint[], n: { tenant: string; type: WebhookEventType; id: string; data: Record<string, unknown>; created: Date }) => Promise<number>;

export const noNotifier: Notifier = { notify: async () => {} };

export function createNotifier(enqueue: EnqueueFn, opts: { now: () => Date; onEnqueued?: (type: WebhookEventType, rows: number) => void; remember?: number }): Notifier {
  // Ids this process already enqueued: a key inside its expiry window is noticed at every resync.
  const sent = new Set<string>();
  const cap = opts.remember ?? 50_000;
  return {
    async notify(tenant, requests) {
      const endpoints = (tenant?.spec.webhooks ?? []) as WebhookEndpoint[];
      for (const r of requests) {
        if (sent.has(r.id) || !endpoints.some((e) => e.events.includes(r.type))) continue;
        const rows = await enqueue(endpoints, { tenant: tenant!.metadata.name, type: r.type, id: r.id, data: r.data, created: opts.now() });
        opts.onEnqueued?.(r.type, rows);
        sent.add(r.id);
        if (sent.size > cap) sent.delete(sent.values().next().value!);
      }
    },
  };
}

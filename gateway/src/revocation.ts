/**
 * The fast path for revocation: the operator publishes on REVOCATION_CHANNEL when a key is revoked
 * or deleted or a tenant is suspended; every replica applies it at once (the Secret watch remains
 * the source of truth and catches up within seconds).
 */
import type { Redis } from "ioredis";
import { REVOCATION_CHANNEL } from "@crosslogic/crds";
import type { ConfigStore } from "./config-store.ts";

export type RevocationMessage = { type: "key_revoked"; hash: string; prefix?: string } | { type: "tenant_suspended"; tenant: string };

export function parseRevocation(text: string): RevocationMessage | undefined {
  let m: unknown;
  try { m = JSON.parse(text); } catch { return undefined; }
  if (!m || typeof m !== "object") return undefined;
  const o = m as Record<string, unknown>;
  if (o.type === "key_revoked" && typeof o.hash === "string" && /^[0-9a-f]{64}$/.test(o.hash)) return { type: "key_revoked", hash: o.hash, ...(typeof o.prefix === "string" ? { prefix: o.prefix } : {}) };
  if (o.type === "tenant_suspended" && typeof o.tenant === "string" && o.tenant.length > 0 && o.tenant.length <= 253) return { type: "tenant_suspended", tenant: o.tenant };
  return undefined;
}

export async function subscribeRevocations(subscriber: Redis, store: ConfigStore, log: { info(msg: string, meta?: object): void; warn(msg: string, meta?: object): void }): Promise<void> {
  subscriber.on("message", (channel: string, text: string) => {
    if (channel !== REVOCATION_CHANNEL) return;
    const m = parseRevocation(text);
    if (!m) return log.warn("Ignored a malformed revocation message");
    if (m.type === "key_revoked") { store.revokeKey(m.hash); log.info("Applied key revocation", { key_prefix: m.prefix ?? null }); }
    else { store.suspendTenant(m.tenant); log.info("Applied tenant suspension", { tenant: m.tenant }); }
  });
  await subscriber.subscribe(REVOCATION_CHANNEL);
}

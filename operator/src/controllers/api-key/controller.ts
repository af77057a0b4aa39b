/**
 * ApiKey controller: generates the key once into its own Secret (create-only: an existing Secret is
 * never overwritten, so restarts and resyncs cannot change a key), rotates on request keeping the
 * previous hash valid for the grace period, broadcasts revocations, and reports status.
 */
import {
  apiKeySecretName, FieldManagers, generateApiKey, keyEnvForTier,
  Labels, MANAGED_BY, tenantOfNamespace, type ApiKey, type Environment,
} from "@crosslogic/crds";
import { withAppliedHash } from "../../kube/apply.ts";
import { isConflict, resourcePath } from "@crosslogic/kube/client";
import type { KubeObject } from "@crosslogic/kube/informer";
import { Types } from "../../kube/types.ts";
import { applyIfChanged, ChangeReport, deleteIfExists, FinalizedSet, ensureFinalizer, knownStatus, removeFinalizer, writeStatusIfChanged, type Context, type Obj, type ReconcileResult } from "../runtime.ts";
import { ownerRef, type ChildObject } from "../tenant/desired.ts";
import { apiKeyStatus, decideKeyAction, isExpired, nextTimedChange, publicationPendingMs } from "./decide.ts";
import { keyNotifications, msUntilExpiryNotice } from "../../persistence/notifications.ts";
import { keySecretContent, livePreviousKeys, readKeyMaterial, type KeyMaterial, type SecretLike } from "./key-material.ts";
import { publishedByEnvironment } from "../environment/shards.ts";

const NAME = "apikey";
const FM = FieldManagers.apiKey;

type SecretObj = KubeObject & SecretLike & { type?: string };

/** How long a Secret this process created stands in for it while the cache has not caught up. */
const CREATED_MEMORY_MS = 30_000;

export function apiKeyController(ctx: Context) {
  const { informers: inf, client } = ctx;
  const finalized = new FinalizedSet();
  /**
   * Secrets this process created that the cache may not show yet. The pass after a create often
   * runs before the Secret's watch event (the ApiKey's own events come on another watch); without
   * this it would try the create again, get 409 and read the Secret back: two wasted requests.
   */
  const created = new Map<string, { secret: SecretObj; at: number }>();
  function cachedSecret(key: string): SecretObj | undefined {
    const cached = inf.secrets.get(key) as SecretObj | undefined;
    const mine = created.get(key);
    if (mine && (cached || Date.now() - mine.at > CREATED_MEMORY_MS)) created.delete(key);
    return cached ?? (created.has(key) ? mine!.secret : undefined);
  }
  function remember(secret: SecretObj): void {
    const now = Date.now();
    created.delete(`${secret.metadata.namespace}/${secret.metadata.name}`);
    created.set(`${secret.metadata.namespace}/${secret.metadata.name}`, { secret, at: now });
    // Oldest first: forget what can no longer stand in for anything.
    for (const [k, v] of created) { if (now - v.at <= CREATED_MEMORY_MS) break; created.delete(k); }
  }
  function secretMeta(apiKey: ApiKey & KubeObject): ChildObject {
    const tenant = tenantOfNamespace(apiKey.metadata.namespace!) ?? "";
    return {
      apiVersion: "v1", kind: "Secret",
      metadata: {
        name: apiKeySecretName(apiKey.metadata.name), namespace: apiKey.metadata.namespace,
        labels: { [Labels.managedBy]: MANAGED_BY, [Labels.tenant]: tenant, [Labels.environment]: apiKey.spec.environment, [Labels.apiKey]: apiKey.metadata.name },
        ownerReferences: [ownerRef({ kind: "ApiKey", metadata: apiKey.metadata })],
      },
    };
  }

  async function revokeEverywhere(material: KeyMaterial): Promise<void> {
    const hashes = [...(material.current ? [material.current] : []), ...material.previous];
    for (const h of hashes) await ctx.revocation.publish({ type: "key_revoked", hash: h.hash, prefix: h.prefix });
  }

  async function createSecret(apiKey: ApiKey & KubeObject, env: Environment): Promise<{ secret: SecretObj; created: boolean }> {
    const meta = withAppliedHash(secretMeta(apiKey));
    const key = generateApiKey(keyEnvForTier(env.spec.tier));
    const content = keySecretContent(key, { ...(apiKey.spec.rotationRequest ? { rotationRequest: apiKey.spec.rotationRequest } : {}), previous: [] });
    try {
      const result = await client.request<SecretObj>({
        method: "POST", path: resourcePath(Types.secret, apiKey.metadata.namespace), query: { fieldManager: FM },
        body: { ...meta, type: "Opaque", metadata: { ...meta.metadata, annotations: { ...meta.metadata.annotations, ...content.annotations } }, data: content.data },
      });
      ctx.metrics.writes.inc({ controller: NAME, kind: "Secret", op: "create" });
      remember(result);
      return { secret: result, created: true };
    } catch (err) {
      // Already there (our cache was behind): use it; a key is never generated twice.
      if (!isConflict(err)) throw err;
      return { secret: await client.request<SecretObj>({ method: "GET", path: resourcePath(Types.secret, apiKey.metadata.namespace, meta.metadata.name) }), created: false };
    }
  }

  /** Replaces the key in an existing Secret (optimistic concurrency on its resourceVersion). */
  async function replaceKey(secret: SecretObj, env: Environment, annotations: { rotationRequest?: string; rotatedAt?: string }, previous: KeyMaterial["previous"], keepKey?: string): Promise<SecretObj> {
    const key = keepKey ?? generateApiKey(keyEnvForTier(env.spec.tier));
    const content = keySecretContent(key, { ...annotations, previous });
    const kept = Object.fromEntries(Object.entries(secret.metadata.annotations ?? {}).filter(([k]) => !k.startsWith("crosslogic.ai/key-") && !k.startsWith("crosslogic.ai/rotat") && k !== "crosslogic.ai/previous-keys"));
    const updated = await client.request<SecretObj>({
      method: "PUT", path: resourcePath(Types.secret, secret.metadata.namespace, secret.metadata.name), query: { fieldManager: FM },
      body: { ...secret, metadata: { ...secret.metadata, managedFields: undefined, annotations: { ...kept, ...content.annotations } }, data: { ...secret.data, ...content.data } },
    });
    ctx.metrics.writes.inc({ controller: NAME, kind: "Secret", op: "update" });
    if (created.has(`${secret.metadata.namespace}/${secret.metadata.name}`)) remember(updated);
    return updated;
  }

  return async function reconcile(key: string): Promise<ReconcileResult | void> {
    const apiKey = inf.apiKeys.get(key);
    if (!apiKey) return;
    const ns = apiKey.metadata.namespace!;
    const secretName = apiKeySecretName(apiKey.metadata.name);
    let secret = cachedSecret(`${ns}/${secretName}`);
    const tenant = tenantOfNamespace(ns) ?? null;
    const envKey = `${ns}/${apiKey.spec.environment}`;

    if (apiKey.metadata.deletionTimestamp) {
      if (finalized.has(apiKey.metadata.uid)) return;
      const material = readKeyMaterial(secret);
      await revokeEverywhere(material);
      await deleteIfExists(ctx, NAME, Types.secret, ns, secretName);
      ctx.audit.record("api_key_deleted", { tenant_id: tenant, details: { name: apiKey.metadata.name, namespace: ns, environment: apiKey.spec.environment, prefix: material.current?.prefix } });
      ctx.queues.environment.add(envKey);
      await removeFinalizer(ctx, NAME, Types.apiKey, apiKey);
      finalized.add(apiKey.metadata.uid);
      return;
    }
    // Keys are issued only in a Tenant's namespace, for an Environment that exists there.
    const env = tenant && inf.tenants.get(tenant) ? inf.environments.get(envKey) : undefined;
    if (env || secret) await ensureFinalizer(ctx, NAME, FM, Types.apiKey, apiKey);
    const now = ctx.now();
    let material = readKeyMaterial(secret);
    const action = decideKeyAction(apiKey, secret !== undefined, material, now);
    const details = { name: apiKey.metadata.name, namespace: ns, environment: apiKey.spec.environment, role: apiKey.spec.role };
    if (env && action.kind !== "none") {
      if (action.kind === "create") {
        const result = await createSecret(apiKey, env);
        secret = result.secret;
        material = readKeyMaterial(secret);
        let issued = result.created;
        if (!material.current) {
          issued = true;
          // The existing Secret holds no key we issued: replace its contents.
          secret = await replaceKey(secret, env, { ...(apiKey.spec.rotationRequest ? { rotationRequest: apiKey.spec.rotationRequest } : {}) }, []);
          material = readKeyMaterial(secret);
        }
        if (issued) {
          ctx.audit.record("api_key_created", { tenant_id: tenant, details: { ...details, prefix: material.current?.prefix } });
          ctx.events.event(apiKey, "Normal", "KeyGenerated", `Generated key ${material.current?.prefix}… into Secret ${secretName}`);
        }
      } else if (action.kind === "regenerate") {
        secret = await replaceKey(secret!, env, { ...(material.rotationRequest ? { rotationRequest: material.rotationRequest } : {}), ...(material.rotatedAt ? { rotatedAt: material.rotatedAt } : {}) }, livePreviousKeys(material, now));
        material = readKeyMaterial(secret);
        ctx.audit.record("api_key_rotated", { tenant_id: tenant, details: { ...details, prefix: material.current?.prefix, reason: action.reason } });
        ctx.events.event(apiKey, "Warning", "KeyRegenerated", `Generated a new key ${material.current?.prefix}…: ${action.reason}`);
      } else if (action.kind === "rotate") {
        const graceSeconds = apiKey.spec.rotationGracePeriodSeconds ?? ctx.config.keyRotationGraceSeconds;
        const old = material.current!;
        const previous = [...livePreviousKeys(material, now), ...(graceSeconds > 0 ? [{ ...old, expiresAt: new Date(now.getTime() + graceSeconds * 1000).toISOString() }] : [])];
        secret = await replaceKey(secret!, env, { rotationRequest: apiKey.spec.rotationRequest!, rotatedAt: now.toISOString().replace(/\.\d{3}Z$/, "Z") }, previous);
        material = readKeyMaterial(secret);
        if (graceSeconds === 0) await ctx.revocation.publish({ type: "key_revoked", hash: old.hash, prefix: old.prefix });
        ctx.audit.record("api_key_rotated", { tenant_id: tenant, details: { ...details, prefix: material.current?.prefix, previous_prefix: old.prefix, grace_seconds: graceSeconds } });
        ctx.events.event(apiKey, "Normal", "KeyRotated", `Rotated to key ${material.current?.prefix}…; ${old.prefix}… stays valid for ${graceSeconds} s`);
      } else if (action.kind === "prunePrevious") {
        const live = livePreviousKeys(material, now);
        const keyText = Buffer.from(secret!.data!.key!, "base64").toString("utf8");
        secret = await replaceKey(secret!, env, { ...(material.rotationRequest ? { rotationRequest: material.rotationRequest } : {}), ...(material.rotatedAt ? { rotatedAt: material.rotatedAt } : {}) }, live, keyText);
        material = readKeyMaterial(secret);
      }
      ctx.queues.environment.addAfter(envKey, ctx.publishPacer.delay(envKey));
    }
    if (secret) {
      const report = new ChangeReport();
      await applyIfChanged(ctx, NAME, FM, Types.secret, secretMeta(apiKey), secret, report);
      report.flush(ctx, apiKey);
    }

    const statusBefore = knownStatus(ctx, apiKey);
    const phaseBefore = statusBefore?.phase;
    if (apiKey.spec.revoked && phaseBefore !== "Revoked") await revokeEverywhere(material);
    // Before the audit lines: if the outbox write fails, the retried reconcile sees the same change.
    const noticeMs = ctx.config.keyExpiryNoticeSeconds * 1000;
    await ctx.notifier.notify(tenant ? inf.tenants.get(tenant) : undefined, keyNotifications(apiKey, statusBefore, material, now, noticeMs));
    if (apiKey.spec.revoked && phaseBefore !== "Revoked") {
      ctx.audit.record("api_key_revoked", { tenant_id: tenant, details: { ...details, prefix: material.current?.prefix } });
      ctx.events.event(apiKey, "Normal", "KeyRevoked", `Key ${material.current?.prefix ?? ""}… revoked and removed from the gateway config`);
      ctx.queues.environment.add(envKey);
    } else if (!apiKey.spec.revoked && material.current && isExpired(apiKey, now) && phaseBefore === "Active") {
      ctx.audit.record("api_key_expired", { tenant_id: tenant, details: { ...details, prefix: material.current.prefix } });
      ctx.events.event(apiKey, "Normal", "KeyExpired", `Key ${material.current.prefix}… expired at ${apiKey.spec.expiresAt}`);
    }

    const published = material.current !== undefined
      && publishedByEnvironment((k) => inf.secrets.get(k) as SecretObj | undefined, ctx.config.gatewayConfigNamespace, ns, apiKey.spec.environment, ctx.config.gatewayConfigMaxSecrets).has(material.current.hash);
    const issuedAt = Date.parse(material.rotatedAt ?? secret?.metadata.creationTimestamp ?? "");
    const pendingMs = publicationPendingMs(apiKey, material, published, Number.isNaN(issuedAt) ? undefined : issuedAt, now);
    if (pendingMs === 0) {
      const status = apiKeyStatus(apiKey, { environmentFound: env !== undefined, secretName, material, published }, now);
      await writeStatusIfChanged(ctx, NAME, FM, Types.apiKey, apiKey as Obj & ApiKey, status);
    }
    // Publication requeues this key (the config Secret's watch event); the timer is the fallback.
    const next = [nextTimedChange(apiKey, material, now), msUntilExpiryNotice(apiKey, now, noticeMs), pendingMs || undefined].filter((d) => d !== undefined);
    return next.length === 0 ? undefined : { requeueAfterMs: Math.min(...next, 2 ** 31 - 1) };
  };
}

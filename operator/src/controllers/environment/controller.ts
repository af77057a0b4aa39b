/** Environment controller: Certificate, backend NetworkPolicies, gateway config, capacity status. */
import {
  apiKeySecretName, FieldManagers, gatewayConfigSecretName, gatewayConfigShardOf, Labels, tenantOfNamespace, validateGatewayConfig, type ApiKey, type Environment, type Tenant,
} from "@crosslogic/crds";
import { Types } from "../../kube/types.ts";
import type { KubeObject } from "@crosslogic/kube/informer";
import { applyIfChanged, ChangeReport, deleteIfExists, FinalizedSet, ensureFinalizer, labelsMatch, removeFinalizer, writeStatusIfChanged, type Context, type ReconcileResult } from "../runtime.ts";
import { readKeyMaterial, type SecretLike } from "../api-key/key-material.ts";
import { needsApply, withAppliedHash } from "../../kube/apply.ts";
import { poolCapacity, type NodeLike } from "../node-pools.ts";
import {
  desiredBackendPolicies, desiredCertificate, environmentLabels, gatewayConfigSecret, keyEntries, poolDefaultDeny, renderGatewayConfig, type ServiceLike,
} from "./desired.ts";
import { planShards, shardOfHashes, writeOrder, type ShardSizes } from "./shards.ts";
import { environmentStatus, type EnvironmentObservation } from "./status.ts";

const NAME = "environment";
const FM = FieldManagers.environment;

export function environmentController(ctx: Context) {
  const { informers: inf, config } = ctx;
  const finalized = new FinalizedSet();

  async function cleanUp(env: KubeObject, tenant: string): Promise<void> {
    const sel = environmentLabels(tenant, env.metadata.name);
    for (const p of inf.networkPolicies.list().filter((o) => labelsMatch(o, sel))) await deleteIfExists(ctx, NAME, Types.networkPolicy, p.metadata.namespace, p.metadata.name);
    for (const c of inf.certificates.listIn(env.metadata.namespace!).filter((o) => labelsMatch(o, sel))) await deleteIfExists(ctx, NAME, Types.certificate, c.metadata.namespace, c.metadata.name);
    // Any under the old name first: a gateway never hands the environment over to it from the shards.
    const isShard = (s: KubeObject) => gatewayConfigShardOf(s.metadata.name, env.metadata.namespace!, env.metadata.name) !== undefined;
    const configs = gatewayConfigsOf(env, tenant).sort((a, b) => Number(isShard(a)) - Number(isShard(b)));
    for (const s of configs) await deleteIfExists(ctx, NAME, Types.secret, config.gatewayConfigNamespace, s.metadata.name);
    await deleteIfExists(ctx, NAME, Types.secret, config.gatewayConfigNamespace, gatewayConfigSecretName(env.metadata.namespace!, env.metadata.name));
    await removeFinalizer(ctx, NAME, Types.environment, env);
  }

  /** The gateway-config Secrets labelled for this Environment: its shards, and any under the old naming scheme. */
  function gatewayConfigsOf(env: KubeObject, tenant: string): KubeObject[] {
    const sel = { ...environmentLabels(tenant, env.metadata.name), [Labels.gatewayConfig]: "true" };
    return inf.secrets.listIn(config.gatewayConfigNamespace).filter((s) => labelsMatch(s, sel));
  }

  return async function reconcile(key: string): Promise<ReconcileResult | void> {
    const env = inf.environments.get(key);
    if (!env) return;
    const ns = env.metadata.namespace!;
    const tenantName = tenantOfNamespace(ns) ?? "";
    if (env.metadata.deletionTimestamp) {
      if (finalized.has(env.metadata.uid)) return;
      await cleanUp(env, tenantName);
      finalized.add(env.metadata.uid);
      return;
    }
    const found = tenantName ? inf.tenants.get(tenantName) : undefined;
    // A Tenant being deleted has had its configs removed: nothing is published for it again.
    const tenant = found?.metadata.deletionTimestamp ? undefined : found;
    if (!tenant) {
      // Outside a live Tenant's namespace nothing is issued: report it once and wait for a Tenant.
      const status = environmentStatus(env, { tenantFound: false, tenantSuspended: false, certificate: undefined, missingServices: [], gatewayConfig: undefined, nodePools: [] }, ctx.now());
      await writeStatusIfChanged(ctx, NAME, FM, Types.environment, env, status);
      return;
    }
    await ensureFinalizer(ctx, NAME, FM, Types.environment, env);

    const report = new ChangeReport();
    try {
      return await reconcileChildren(env, tenant, tenantName, report);
    } finally {
      report.flush(ctx, env);
    }
  };

  async function reconcileChildren(env: Environment & KubeObject, tenant: Tenant & KubeObject, tenantName: string, report: ChangeReport): Promise<ReconcileResult | void> {
    const ns = env.metadata.namespace!;
    const key = `${ns}/${env.metadata.name}`;
    const labels = environmentLabels(tenantName, env.metadata.name);
    const now = ctx.now();

    // Certificate (same namespace: owned by the Environment).
    const cert = desiredCertificate(env, tenantName, config.defaultIssuer);
    let certificate: EnvironmentObservation["certificate"] = (env.spec.hostnames ?? []).length ? "no-issuer" : undefined;
    if (cert && inf.certificates.available) {
      const observed = inf.certificates.get(`${ns}/${cert.metadata.name}`) as (KubeObject & { status?: { conditions?: Array<{ type: string; status: string; message?: string }> } }) | undefined;
      await applyIfChanged(ctx, NAME, FM, Types.certificate, cert, observed, report);
      const ready = observed?.status?.conditions?.find((c) => c.type === "Ready");
      certificate = { name: cert.metadata.name, issued: ready?.status === "True", ...(ready?.message ? { message: ready.message } : {}) };
    }
    for (const c of inf.certificates.listIn(ns)) {
      if (labelsMatch(c, labels) && c.metadata.name !== cert?.metadata.name) await deleteIfExists(ctx, NAME, Types.certificate, ns, c.metadata.name);
    }

    // NetworkPolicies in the node-pool namespaces (cross-namespace: labels + finalizer).
    const backends = desiredBackendPolicies(env, tenantName, config.systemNamespace, (sns, name) => inf.services.get(`${sns}/${name}`) as ServiceLike | undefined);
    for (const pool of backends.poolNamespaces) {
      const deny = poolDefaultDeny(pool);
      await applyIfChanged(ctx, NAME, FM, Types.networkPolicy, deny, inf.networkPolicies.get(`${pool}/${deny.metadata.name}`));
    }
    for (const p of backends.policies) {
      await applyIfChanged(ctx, NAME, FM, Types.networkPolicy, p, inf.networkPolicies.get(`${p.metadata.namespace}/${p.metadata.name}`), report);
    }
    const wantedPolicies = new Set(backends.policies.map((p) => `${p.metadata.namespace}/${p.metadata.name}`));
    for (const p of inf.networkPolicies.list()) {
      if (labelsMatch(p, labels) && !wantedPolicies.has(`${p.metadata.namespace}/${p.metadata.name}`)) await deleteIfExists(ctx, NAME, Types.networkPolicy, p.metadata.namespace, p.metadata.name);
    }

    // Gateway config (in the system namespace): one Secret, or several (shards) when its keys do not fit in one.
    let gatewayConfig: EnvironmentObservation["gatewayConfig"];
    let requeueAfterMs: number | undefined;
    {
      const keys = inf.apiKeys.listIn(ns)
        .filter((k) => k.spec.environment === env.metadata.name)
        .map((apiKey) => ({ apiKey: apiKey as ApiKey, material: readKeyMaterial(inf.secrets.get(`${ns}/${apiKeySecretName(apiKey.metadata.name)}`) as SecretLike | undefined) }));
      const all = keyEntries(env, tenant, keys, now);
      const max = config.gatewayConfigMaxSecrets;
      // Every shard labelled for it, past the limit too (lowered since): their keys are placed first.
      const labelled = gatewayConfigsOf(env, tenantName) as Array<KubeObject & SecretLike>;
      const published = new Map(labelled.flatMap((sh) => { const i = gatewayConfigShardOf(sh.metadata.name, ns, env.metadata.name); return i === undefined ? [] : [[i, sh] as const]; }));
      const current = shardOfHashes(published);
      const baseBytes = Buffer.byteLength(JSON.stringify(renderGatewayConfig(env, tenant, [], 0)));
      const sizes: ShardSizes = { base: (i) => baseBytes + String(i).length - 1, entry: (e) => Buffer.byteLength(JSON.stringify(e)) };
      const build = (entries: typeof all) => {
        const plan = planShards(entries, current, sizes, max);
        const shards = [...plan.shards].map(([index, es]) => {
          const doc = renderGatewayConfig(env, tenant, es, index);
          return { index, entries: es, doc, secret: gatewayConfigSecret(env, tenantName, config.gatewayConfigNamespace, doc) };
        });
        return { plan, shards, keys: shards.reduce((n, sh) => n + sh.entries.length, 0) };
      };
      const unchanged = (out: ReturnType<typeof build>) => out.shards.length === published.size
        && out.shards.every((sh) => published.has(sh.index) && !needsApply(published.get(sh.index), withAppliedHash(sh.secret)));
      // Newly issued keys wait for the end of the pacing window when they are the only change (any
      // pass may get here first: the ApiKey's, the Environment's own events); anything else goes now.
      const wait = published.size ? ctx.publishPacer.delay(key) : 0;
      // (Rendered only when there are new keys: otherwise it would be the full render, twice.)
      const held = wait > 0 && all.some((e) => !current.has(e.hash)) ? build(all.filter((e) => current.has(e.hash))) : undefined;
      const onlyNewKeys = held !== undefined && unchanged(held);
      if (onlyNewKeys) requeueAfterMs = wait;
      const out = onlyNewKeys ? held : build(all);
      const left = out.plan.left;
      if (left) ctx.log.warn("Gateway config of Environment over what its Secrets hold: keys left out", { environment: key, keys: out.keys, secrets: out.shards.length, left });
      const invalid = out.shards.flatMap((sh) => { const v = validateGatewayConfig(sh.doc); return v.ok ? [] : v.errors; });
      if (!invalid.length) {
        // A shard that takes a key over is written before the one that gives it up: the key is
        // always in one of them.
        const byIndex = new Map(out.shards.map((sh) => [sh.index, sh]));
        let wrote = false;
        for (const index of writeOrder(out.plan, current)) {
          const sh = byIndex.get(index)!;
          if (await applyIfChanged(ctx, NAME, FM, Types.secret, sh.secret, published.get(index)) !== "unchanged") wrote = true;
        }
        if (wrote) ctx.publishPacer.wrote(key);
        // Then the Secrets no longer wanted: emptied shards, and any under the old naming scheme.
        const wanted = new Set(out.shards.map((sh) => sh.secret.metadata.name));
        for (const sh of labelled) if (!wanted.has(sh.metadata.name)) await deleteIfExists(ctx, NAME, Types.secret, config.gatewayConfigNamespace, sh.metadata.name);
        gatewayConfig = { secretName: out.shards[0]!.secret.metadata.name, secrets: out.shards.length, keys: out.keys, ...(left ? { tooLarge: left } : {}) };
      } else {
        gatewayConfig = { invalid };
        ctx.log.error("Gateway config of Environment failed validation; not written", { environment: key, errors: invalid });
      }
      // Come back when a rotated key's grace period ends, to drop it from the config.
      const graceEnds = out.shards.flatMap((sh) => sh.entries).filter((e) => e.expiresAt && keys.some((k) => k.material.previous.some((p) => p.hash === e.hash)))
        .map((e) => Date.parse(e.expiresAt!) - now.getTime()).filter((d) => d > 0);
      if (graceEnds.length) requeueAfterMs = Math.min(requeueAfterMs ?? Infinity, Math.min(...graceEnds) + 1000);
    }

    const pools = (env.spec.routes ?? []).flatMap((r) => (r.nodePool ? [r.nodePool] : []));
    const status = environmentStatus(env, {
      tenantFound: true,
      tenantSuspended: tenant.spec.suspended,
      certificate,
      missingServices: backends.missingServices,
      gatewayConfig,
      nodePools: poolCapacity(pools, inf.nodes.list() as NodeLike[]),
    }, now);
    await writeStatusIfChanged(ctx, NAME, FM, Types.environment, env, status);
    return requeueAfterMs === undefined ? undefined : { requeueAfterMs };
  }
}


/** Tenant controller: gathers from the caches, applies the desired children, prunes, writes status. */
import { FieldManagers, Labels, MANAGED_BY, tenantNamespace, type Tenant } from "@crosslogic/crds";
import { Types } from "../../kube/types.ts";
import type { KubeObject } from "@crosslogic/kube/informer";
import { ApiError, type ResourceType } from "@crosslogic/kube/client";
import { applyIfChanged, ChangeReport, deleteIfExists, FinalizedSet, ensureFinalizer, knownStatus, labelsMatch, removeFinalizer, writeStatusIfChanged, type Context, type ReconcileResult } from "../runtime.ts";
import { desiredTenantChildren, desiredTenantRoles, desiredTenantViewer, tenantLabels, type ChildObject } from "./desired.ts";
import { tenantStatus } from "./status.ts";
import { tenantNotifications } from "../../persistence/notifications.ts";

const NAME = "tenant";
const FM = FieldManagers.tenant;

const typeOf = (child: ChildObject) => child.kind === "NetworkPolicy" ? Types.networkPolicy : Types.roleBinding;

/** The API server's answer to a binding whose roleRef would change (it cannot, in place). */
const isRoleRefChange = (err: unknown): boolean => err instanceof ApiError && err.status === 422 && /roleRef\b.*\b(immutable|cannot change)/.test(err.message);

export function tenantController(ctx: Context) {
  const { informers: inf } = ctx;
  const finalized = new FinalizedSet();

  async function cleanUp(tenant: Tenant & KubeObject): Promise<void> {
    const name = tenant.metadata.name;
    const sel = { [Labels.managedBy]: MANAGED_BY, [Labels.tenant]: name };
    // Cross-namespace and cluster-scoped children, found by label (owner references cannot reach them).
    for (const s of inf.secrets.listIn(ctx.config.gatewayConfigNamespace).filter((o) => labelsMatch(o, sel))) {
      await deleteIfExists(ctx, NAME, Types.secret, s.metadata.namespace, s.metadata.name);
    }
    for (const p of inf.networkPolicies.list().filter((o) => o.metadata.namespace !== tenantNamespace(name) && labelsMatch(o, sel))) {
      await deleteIfExists(ctx, NAME, Types.networkPolicy, p.metadata.namespace, p.metadata.name);
    }
    for (const [t, informer] of [[Types.clusterRoleBinding, inf.clusterRoleBindings], [Types.clusterRole, inf.clusterRoles]] as const) {
      for (const o of informer.list().filter((x) => labelsMatch(x, sel))) await deleteIfExists(ctx, NAME, t, undefined, o.metadata.name);
    }
    for (const ns of inf.namespaces.list().filter((o) => labelsMatch(o, sel) && !o.metadata.deletionTimestamp)) {
      await deleteIfExists(ctx, NAME, Types.namespace, undefined, ns.metadata.name);
    }
    await ctx.revocation.publish({ type: "tenant_suspended", tenant: name });
    ctx.audit.record("tenant_deleted", { tenant_id: name, details: { namespace: tenantNamespace(name) } });
    await removeFinalizer(ctx, NAME, Types.tenant, tenant);
  }

  return async function reconcile(key: string): Promise<ReconcileResult | void> {
    const tenant = inf.tenants.get(key);
    if (!tenant) return;
    const log = ctx.log.child({ tenant: key });
    if (tenant.metadata.deletionTimestamp) {
      if (finalized.has(tenant.metadata.uid)) return;
      await cleanUp(tenant);
      finalized.add(tenant.metadata.uid);
      log.info("Tenant cleaned up");
      return;
    }
    await ensureFinalizer(ctx, NAME, FM, Types.tenant, tenant);

    const { namespace, namespaced } = desiredTenantChildren(tenant);
    const observedNs = inf.namespaces.get(namespace.metadata.name);
    if (observedNs?.metadata.deletionTimestamp) {
      // A namespace being deleted cannot be re-filled; wait until it is gone.
      return { requeueAfterMs: 5_000 };
    }
    const report = new ChangeReport();
    /**
     * Applies a child unless the cache shows it as desired. A binding of that name to another role
     * (an earlier version's, or one planted there, labelled as ours or not) is deleted and created anew.
     */
    const apply = async (t: ResourceType, child: ChildObject, observed: KubeObject | undefined) => {
      try {
        await applyIfChanged(ctx, NAME, FM, t, child, observed, report);
      } catch (err) {
        if (!isRoleRefChange(err)) throw err;
        await deleteIfExists(ctx, NAME, t, child.metadata.namespace, child.metadata.name);
        await applyIfChanged(ctx, NAME, FM, t, child, undefined, report);
      }
    };
    try {
      await apply(Types.namespace, namespace, observedNs);
      // The member roles every tenant binds (the first Tenant creates them; unchanged, no write).
      for (const role of desiredTenantRoles()) await apply(Types.clusterRole, role, inf.clusterRoles.get(role.metadata.name));
      for (const child of namespaced) {
        const t = typeOf(child);
        const informer = t === Types.networkPolicy ? inf.networkPolicies : inf.roleBindings;
        await apply(t, child, informer.get(`${child.metadata.namespace}/${child.metadata.name}`));
      }
      for (const child of desiredTenantViewer(tenant)) {
        const [t, informer] = child.kind === "ClusterRole" ? [Types.clusterRole, inf.clusterRoles] : [Types.clusterRoleBinding, inf.clusterRoleBindings];
        await apply(t, child, informer.get(child.metadata.name));
      }
    } finally {
      report.flush(ctx, tenant);
    }
    // Prune children of this tenant (not of its environments) that are no longer desired, such as
    // the per-namespace Roles that earlier versions created for the member roles.
    const wanted = new Set(namespaced.map((c) => `${c.kind}/${c.metadata.name}`));
    const ownLabels = tenantLabels(tenant.metadata.name);
    for (const [t, informer] of [[Types.networkPolicy, inf.networkPolicies], [Types.role, inf.roles], [Types.roleBinding, inf.roleBindings]] as const) {
      for (const o of informer.listIn(namespace.metadata.name)) {
        if (!labelsMatch(o, ownLabels) || o.metadata.labels?.[Labels.environment]) continue;
        if (!wanted.has(`${t.kind}/${o.metadata.name}`)) await deleteIfExists(ctx, NAME, t, o.metadata.namespace, o.metadata.name);
      }
    }

    const previousPhase = knownStatus(ctx, tenant)?.phase;
    if (tenant.spec.suspended && previousPhase !== "Suspended") await ctx.revocation.publish({ type: "tenant_suspended", tenant: tenant.metadata.name });
    // Before the audit lines: if the outbox write fails, the retried reconcile sees the same change.
    await ctx.notifier.notify(tenant, tenantNotifications(tenant, previousPhase));
    if (tenant.spec.suspended && previousPhase !== "Suspended") {
      ctx.audit.record("tenant_suspended", { tenant_id: tenant.metadata.name, details: {} });
      ctx.events.event(tenant, "Warning", "Suspended", "Tenant suspended: the gateway refuses every key of the tenant");
    } else if (!tenant.spec.suspended && previousPhase === "Suspended") {
      ctx.audit.record("tenant_resumed", { tenant_id: tenant.metadata.name, details: {} });
      ctx.events.event(tenant, "Normal", "Resumed", "Tenant resumed");
    } else if (previousPhase === undefined) {
      ctx.audit.record("tenant_created", { tenant_id: tenant.metadata.name, details: { plan: tenant.spec.plan } });
    }

    // What was just applied is in place; the caches catch up with the watch events that follow.
    const status = tenantStatus(tenant, { namespaceReady: true, rbacReady: true, networkPolicyReady: true }, ctx.now());
    await writeStatusIfChanged(ctx, NAME, FM, Types.tenant, tenant, status);
  };
}

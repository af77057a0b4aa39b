import * as k8s from "@kubernetes/client-node";
import { API_VERSION, GROUP, VERSION } from "@crosslogic/crds/labels";
import type { Tenant } from "@crosslogic/crds/resources";
import type { WebhookEndpoint } from "./outbox.ts";

export const FIELD_MANAGER = "crosslogic-billing";

/** What billing needs from the Kubernetes API: Tenants (read, and spec.suspended) and webhook secrets. */
export interface TenantDirectory {
  /** The Tenant whose spec.billing.stripeCustomerId is `customerId`, or null. */
  findByCustomer(customerId: string): Promise<string | null>;
  webhooks(tenant: string): Promise<WebhookEndpoint[]>;
  /** Sets spec.suspended by server-side apply; false when the Tenant no longer exists. */
  setSuspended(tenant: string, suspended: boolean): Promise<boolean>;
  secret(tenant: string, ref: { name: string; key: string }): Promise<string>;
}

function isNotFound(err: unknown): boolean {
  const e = err as { code?: number; statusCode?: number; body?: unknown };
  return e.code === 404 || e.statusCode === 404;
}

export function kubeTenantDirectory(kc: k8s.KubeConfig): TenantDirectory {
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const get = async (name: string): Promise<Tenant | null> => {
    try {
      return (await custom.getClusterCustomObject({ group: GROUP, version: VERSION, plural: "tenants", name })) as Tenant;
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  };
  return {
    async findByCustomer(customerId) {
      const list = (await custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: "tenants" })) as { items: Tenant[] };
      return list.items.find((t) => t.spec?.billing?.stripeCustomerId === customerId)?.metadata.name ?? null;
    },
    async webhooks(tenant) {
      return ((await get(tenant))?.spec?.webhooks ?? []) as WebhookEndpoint[];
    },
    async setSuspended(tenant, suspended) {
      try {
        await objects.patch(
          { apiVersion: API_VERSION, kind: "Tenant", metadata: { name: tenant }, spec: { suspended } } as k8s.KubernetesObject,
          undefined, undefined, FIELD_MANAGER, true, k8s.PatchStrategy.ServerSideApply,
        );
        return true;
      } catch (err) {
        if (isNotFound(err)) return false;
        throw err;
      }
    },
    async secret(tenant, ref) {
      const s = await core.readNamespacedSecret({ name: ref.name, namespace: `tenant-${tenant}` });
      const value = s.data?.[ref.key];
      if (!value) throw new Error(`Secret tenant-${tenant}/${ref.name} has no key ${ref.key}`);
      return Buffer.from(value, "base64").toString("utf8");
    },
  };
}

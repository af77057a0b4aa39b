/**
 * Runs a component under the chart's own RBAC: renders the component's ServiceAccount, roles and
 * bindings from the chart, applies them, and writes a kubeconfig that authenticates as that
 * ServiceAccount with a TokenRequest token, as the pod's projected token does in a cluster.
 */
import fs from "node:fs";
import path from "node:path";
import YAML from "yaml";
import type { Kube } from "@crosslogic/testenv/kube";
import { helm, templateArgs } from "./helm.ts";

export interface ChartIdentity {
  /** Kubeconfig authenticating as the component's ServiceAccount. */
  kubeconfig: string;
  serviceAccount: string;
  /** What was applied (for cleanup): kind/name pairs, cluster-scoped ones included. */
  applied: Array<{ kind: string; name: string; namespace?: string }>;
}

export interface ChartIdentityOptions {
  component: "operator" | "gateway";
  /** The release namespace (the component's SYSTEM_NAMESPACE); must exist. */
  namespace: string;
  /** Release name; cluster-scoped names derive from it, so tests sharing a cluster pass unique ones. */
  release: string;
  /** Where the kubeconfig is written. */
  dir: string;
  /** Extra `--set` values for the render (e.g. the gateway's backend namespaces). */
  set?: string[];
}

/** Applies the chart's RBAC for `component` and returns a kubeconfig for its ServiceAccount. */
export async function chartIdentity(k: Kube, adminKubeconfig: string, o: ChartIdentityOptions): Promise<ChartIdentity> {
  const r = helm([...templateArgs({ release: o.release, namespace: o.namespace, set: o.set }), "--show-only", `templates/${o.component}-rbac.yaml`]);
  if (r.status !== 0) throw new Error(`helm template failed: ${r.stderr.trim()}`);
  const docs = YAML.parseAllDocuments(r.stdout).map((d) => d.toJS() as { kind: string; metadata: { name: string; namespace?: string } } | null).filter((d) => d !== null);
  const sa = docs.find((d) => d.kind === "ServiceAccount");
  if (!sa) throw new Error(`no ServiceAccount in templates/${o.component}-rbac.yaml`);
  await k.ok(["apply", "-f", "-"], r.stdout);
  const token = (await k.ok(["create", "token", sa.metadata.name, "-n", o.namespace, "--duration=24h"])).trim();

  const admin = YAML.parse(fs.readFileSync(adminKubeconfig, "utf8")) as {
    "current-context": string;
    contexts: Array<{ name: string; context: { cluster: string } }>;
    clusters: Array<{ name: string; cluster: Record<string, unknown> }>;
  };
  const clusterName = admin.contexts.find((c) => c.name === admin["current-context"])!.context.cluster;
  const cluster = admin.clusters.find((c) => c.name === clusterName)!.cluster;
  const user = `system:serviceaccount:${o.namespace}:${sa.metadata.name}`;
  const kubeconfig = path.join(o.dir, `kubeconfig-${o.release}-${o.component}`);
  fs.writeFileSync(kubeconfig, YAML.stringify({
    apiVersion: "v1", kind: "Config", "current-context": "sa",
    clusters: [{ name: "local", cluster }],
    users: [{ name: user, user: { token } }],
    contexts: [{ name: "sa", context: { cluster: "local", user, namespace: o.namespace } }],
  }), { mode: 0o600 });
  return {
    kubeconfig, serviceAccount: sa.metadata.name,
    applied: docs.map((d) => ({ kind: d.kind, name: d.metadata.name, ...(d.metadata.namespace ? { namespace: d.metadata.namespace } : {}) })),
  };
}

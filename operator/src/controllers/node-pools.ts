/**
 * GPU node pools (pure parts): capacity per pool from the Nodes labelled crosslogic.ai/node-pool,
 * and the audit events for node launch and termination.
 */
import { Labels, type AuditAction } from "@crosslogic/crds";

export interface NodeLike {
  metadata: { name: string; uid?: string; labels?: Record<string, string>; creationTimestamp?: string };
  spec?: { providerID?: string; unschedulable?: boolean };
  status?: { conditions?: Array<{ type: string; status: string }>; allocatable?: Record<string, string>; capacity?: Record<string, string> };
}

export const GPU_RESOURCE = "nvidia.com/gpu";

export function isNodeReady(node: NodeLike): boolean {
  return node.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
}

export function poolCapacity(pools: string[], nodes: NodeLike[]): Array<{ name: string; nodes: number; readyNodes: number; gpus: number }> {
  return [...new Set(pools)].sort().map((name) => {
    const members = nodes.filter((n) => n.metadata.labels?.[Labels.nodePool] === name);
    const ready = members.filter(isNodeReady);
    const gpus = ready.reduce((sum, n) => sum + (Number.parseInt(n.status?.allocatable?.[GPU_RESOURCE] ?? "0", 10) || 0), 0);
    return { name, nodes: members.length, readyNodes: ready.length, gpus };
  });
}

/** The audit record for a node entering or leaving a pool (or changing pool). */
export function nodeAuditEvents(event: { type: "add" | "update" | "delete"; obj: NodeLike; old?: NodeLike }): Array<{ action: AuditAction; details: Record<string, unknown> }> {
  const pool = event.obj.metadata.labels?.[Labels.nodePool];
  const details = (n: NodeLike, p: string | undefined) => ({
    node: n.metadata.name, node_pool: p, uid: n.metadata.uid, provider_id: n.spec?.providerID,
    gpus: n.status?.capacity?.[GPU_RESOURCE] ?? "0", created_at: n.metadata.creationTimestamp,
  });
  if (event.type === "add") return [{ action: "node_launched", details: details(event.obj, pool) }];
  if (event.type === "delete") return [{ action: "node_terminated", details: details(event.obj, pool) }];
  const oldPool = event.old?.metadata.labels?.[Labels.nodePool];
  if (oldPool === pool) return [];
  return [
    ...(oldPool ? [{ action: "node_terminated" as const, details: { ...details(event.obj, oldPool), reason: "left pool" } }] : []),
    ...(pool ? [{ action: "node_launched" as const, details: { ...details(event.obj, pool), reason: "joined pool" } }] : []),
  ];
}

/**
 * Kubernetes sources, namespace-scoped only: the gateway-config Secrets in the gateway's own
 * namespace (label `crosslogic.ai/gateway-config=true`), and — for Service backends — the
 * EndpointSlices of that Service in the backend's namespace. The latter needs a Role in each GPU
 * node-pool namespace granting `get, list, watch` on `discovery.k8s.io/endpointslices` to the
 * gateway's ServiceAccount (see gateway/README.md); nothing cluster-wide.
 *
 * Built on the operator's own small client and informer (@crosslogic/kube: paged lists, watches
 * with bookmarks, relist after 410, stalled-watch restarts), not @kubernetes/client-node, whose
 * import alone would cost the gateway ~85 MB of memory.
 */
import type { Logger } from "winston";
import { GATEWAY_CONFIG_DATA_KEY, GATEWAY_CONFIG_LABEL } from "@crosslogic/crds";
import { KubeClient, resourcePath, type ResourceType } from "@crosslogic/kube/client";
import { Informer, type KubeObject } from "@crosslogic/kube/informer";
import type { EndpointSource } from "../upstream.ts";
import type { ConfigSink } from "./directory.ts";

const SECRETS: ResourceType = { group: "", version: "v1", plural: "secrets", kind: "Secret", namespaced: true };
const ENDPOINT_SLICES: ResourceType = { group: "discovery.k8s.io", version: "v1", plural: "endpointslices", kind: "EndpointSlice", namespaced: true };

type SecretObject = KubeObject & { data?: Record<string, string> };

/** The fields of a discovery.k8s.io/v1 EndpointSlice the gateway reads. */
export interface EndpointSliceLike {
  addressType: string;
  endpoints?: Array<{ addresses: string[]; conditions?: { ready?: boolean } }>;
  ports?: Array<{ port?: number; name?: string }>;
}

/** From KUBECONFIG (a path) or the in-cluster service account. */
export function kubeClient(kubeconfigPath: string | undefined): Promise<KubeClient> {
  return KubeClient.create({ kubeconfig: kubeconfigPath, userAgent: "crosslogic-gateway" });
}

/**
 * Watches gateway-config Secrets in `namespace`; resolves once the first list is applied. A first
 * request the API server refuses (no such namespace, RBAC, credentials) fails the start with its
 * message; later failures are retried by the informer, the last good configs staying in force.
 */
export async function watchConfigSecrets(client: KubeClient, namespace: string, sink: ConfigSink, log: Logger): Promise<() => void> {
  const labelSelector = `${GATEWAY_CONFIG_LABEL}=true`;
  await client.request({ method: "GET", path: resourcePath(SECRETS, namespace), query: { labelSelector, limit: 1 } });
  const informer = new Informer<SecretObject>(client, SECRETS, log, { namespace, labelSelector });
  const apply = (s: SecretObject) => {
    const name = `secret/${s.metadata.name}`;
    const data = s.data?.[GATEWAY_CONFIG_DATA_KEY];
    if (data === undefined) return sink.rejected(name, [`/data/${GATEWAY_CONFIG_DATA_KEY}: missing`]);
    sink.document(name, Buffer.from(data, "base64").toString("utf8"), s.metadata.resourceVersion);
  };
  informer.on((ev) => (ev.type === "delete" ? sink.removed(`secret/${ev.obj.metadata.name}`) : apply(ev.obj)));
  informer.start();
  await informer.waitForSync();
  return () => void informer.stop();
}

/** Ready endpoint addresses of a Service, from its EndpointSlices (label kubernetes.io/service-name). */
export function endpointSliceSource(client: KubeClient, log: Logger): EndpointSource {
  return {
    watch({ namespace, name, port }, onChange) {
      const informer = new Informer<KubeObject & EndpointSliceLike>(client, ENDPOINT_SLICES, log, { namespace, labelSelector: `kubernetes.io/service-name=${name}` });
      informer.on(() => onChange(originsOf(informer.listIn(namespace), port)));
      informer.start();
      return () => void informer.stop();
    },
  };
}

/** `http://addr:port` for every ready endpoint; the slice's port named for the Service port number wins. */
export function originsOf(slices: readonly EndpointSliceLike[], servicePort: number): string[] {
  const out: string[] = [];
  for (const s of slices) {
    const port = s.ports?.length === 1 ? s.ports[0]!.port ?? servicePort : s.ports?.find((p) => p.port === servicePort)?.port ?? servicePort;
    for (const ep of s.endpoints ?? []) {
      if (ep.conditions?.ready === false) continue;
      for (const a of ep.addresses) out.push(s.addressType === "IPv6" ? `http://[${a}]:${port}` : `http://${a}:${port}`);
    }
  }
  return out.sort();
}

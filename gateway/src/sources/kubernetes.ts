/**
 * Kubernetes sources, namespace-scoped only: the gateway-config Secrets in the gateway's own
 * namespace (label `crosslogic.ai/gateway-config=true`), and — for Service backends — the
 * EndpointSlices of that Service in the backend's namespace. The latter needs a Role in each GPU
 * node-pool namespace granting `get, list, watch` on `discovery.k8s.io/endpointslices` to the
 * gateway's ServiceAccount (see gateway/README.md); nothing cluster-wide.
 */
import { CoreV1Api, DiscoveryV1Api, KubeConfig, makeInformer, type Informer, type KubernetesObject, type V1EndpointSlice, type V1Secret } from "@kubernetes/client-node";
import { GATEWAY_CONFIG_DATA_KEY, GATEWAY_CONFIG_LABEL } from "@crosslogic/crds";
import type { EndpointSource } from "../upstream.ts";
import type { ConfigSink } from "./directory.ts";

export function kubeConfig(kubeconfigPath: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (kubeconfigPath) kc.loadFromFile(kubeconfigPath);
  else kc.loadFromCluster();
  return kc;
}

/** Keeps an informer running: restarts it with backoff after an error (the informer relists). */
function keepRunning<T extends KubernetesObject>(informer: Informer<T>, what: string, sink: { error(msg: string): void }): { started: Promise<void>; stop(): void } {
  let stopped = false;
  let delay = 500;
  let timer: NodeJS.Timeout | undefined;
  informer.on("error", (err: unknown) => {
    if (stopped) return;
    sink.error(`${what} watch failed (${(err as Error)?.message ?? err}); restarting in ${delay} ms`);
    timer = setTimeout(() => { if (!stopped) void informer.start().then(() => { delay = 500; }, () => undefined); }, delay);
    delay = Math.min(delay * 2, 30_000);
  });
  return {
    started: informer.start(),
    stop() { stopped = true; clearTimeout(timer); void informer.stop(); },
  };
}

/** Watches gateway-config Secrets in `namespace`; resolves once the first list is applied. */
export async function watchConfigSecrets(kc: KubeConfig, namespace: string, sink: ConfigSink): Promise<() => void> {
  const core = kc.makeApiClient(CoreV1Api);
  const labelSelector = `${GATEWAY_CONFIG_LABEL}=true`;
  const informer = makeInformer<V1Secret>(kc, `/api/v1/namespaces/${namespace}/secrets`, () => core.listNamespacedSecret({ namespace, labelSelector }), labelSelector);
  const apply = (s: V1Secret) => {
    const name = `secret/${s.metadata?.name ?? "?"}`;
    const data = s.data?.[GATEWAY_CONFIG_DATA_KEY];
    if (data === undefined) return sink.rejected(name, [`/data/${GATEWAY_CONFIG_DATA_KEY}: missing`]);
    sink.document(name, Buffer.from(data, "base64").toString("utf8"), s.metadata?.resourceVersion);
  };
  informer.on("add", apply);
  informer.on("update", apply);
  informer.on("delete", (s) => sink.removed(`secret/${s.metadata?.name ?? "?"}`));
  const run = keepRunning(informer, `Secrets in ${namespace}`, sink);
  await run.started;
  return run.stop;
}

/** Ready endpoint addresses of a Service, from its EndpointSlices (label kubernetes.io/service-name). */
export function endpointSliceSource(kc: KubeConfig, log: { error(msg: string): void }): EndpointSource {
  const discovery = kc.makeApiClient(DiscoveryV1Api);
  return {
    watch({ namespace, name, port }, onChange) {
      const labelSelector = `kubernetes.io/service-name=${name}`;
      const informer = makeInformer<V1EndpointSlice>(kc, `/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices`,
        () => discovery.listNamespacedEndpointSlice({ namespace, labelSelector }), labelSelector);
      const publish = () => onChange(originsOf(informer.list(namespace), port));
      for (const verb of ["add", "update", "delete"] as const) informer.on(verb, publish);
      const run = keepRunning(informer, `EndpointSlices of ${namespace}/${name}`, log);
      run.started.catch((e: unknown) => log.error(`EndpointSlices of ${namespace}/${name} unavailable: ${(e as Error).message}`));
      return run.stop;
    },
  };
}

/** `http://addr:port` for every ready endpoint; the slice's port named for the Service port number wins. */
export function originsOf(slices: readonly V1EndpointSlice[], servicePort: number): string[] {
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

/**
 * A Service backend through EndpointSlices on the local API server. EndpointSlices refuse loopback
 * addresses, so the model servers run in network namespaces (`createTestHost`, indexes 40–59) on
 * their own addresses. The gateway follows the slices: traffic goes to the ready endpoints, moves
 * when the slice changes, and an endpoint marked not ready gets nothing.
 */
import assert from "node:assert/strict";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { CoreV1Api, DiscoveryV1Api, KubeConfig, type V1EndpointSlice } from "@kubernetes/client-node";
import { canCreateTestHosts, createTestHost, type TestHost } from "@crosslogic/testenv/netns";
import type { ManagedProcess } from "@crosslogic/testenv/process";
import { waitUntilReady } from "@crosslogic/testenv/process";
import { testEnv } from "@crosslogic/testenv/test-env";
import { makeDoc, makeKey, suffix } from "../fixtures.ts";
import { eventually, startHarness, type Harness } from "../harness.ts";

const env = testEnv();
const modelServer = path.resolve(import.meta.dirname, "../../../model-server/src/main.ts");

describe("Service backend through EndpointSlices", { skip: canCreateTestHosts() ? false : "network namespaces need root and iproute2" }, () => {
  const ns = `gw-eps-${suffix()}`;
  const service = "pool";
  const hosts: TestHost[] = [];
  const procs: ManagedProcess[] = [];
  let discovery: DiscoveryV1Api;
  let core: CoreV1Api;
  let h: Harness;
  const k = makeKey();

  const slice = (endpoints: Array<{ ip: string; ready: boolean }>): V1EndpointSlice => ({
    metadata: { name: `${service}-abc`, namespace: ns, labels: { "kubernetes.io/service-name": service } },
    addressType: "IPv4",
    ports: [{ name: "http", port: 8000, protocol: "TCP" }],
    endpoints: endpoints.map((e) => ({ addresses: [e.ip], conditions: { ready: e.ready } })),
  });

  before(async () => {
    const kc = new KubeConfig();
    kc.loadFromFile(env.KUBECONFIG);
    core = kc.makeApiClient(CoreV1Api);
    discovery = kc.makeApiClient(DiscoveryV1Api);
    const base = 40 + (process.pid % 10) * 2;
    for (const [i, name] of ["pool-a", "pool-b"].entries()) {
      const host = createTestHost(base + i);
      hosts.push(host);
      const p = host.start(name, process.execPath, [modelServer, "--host", host.ip, "--port", "8000", "--name", name], path.join(os.tmpdir(), `gw-eps-${process.pid}-${name}.log`));
      procs.push(p);
      await waitUntilReady(p, async () => (await fetch(`http://${host.ip}:8000/health`, { signal: AbortSignal.timeout(500) })).ok, 15_000);
    }
    await core.createNamespace({ body: { metadata: { name: ns } } });
    await discovery.createNamespacedEndpointSlice({ namespace: ns, body: slice([{ ip: hosts[0]!.ip, ready: true }]) });
    const doc = makeDoc({ keys: [k], routes: [{ model: "llama-3-8b", backend: { service: { name: service, namespace: ns, port: 8000 } } }] });
    h = await startHarness({ REDIS_URL: env.REDIS_URL, KUBECONFIG: env.KUBECONFIG, VIOLATION_DELAY_AFTER: "100000", VIOLATION_BLOCK_AFTER: "100000" }, { a: doc });
  });

  after(async () => {
    await h?.stop();
    for (const p of procs) await p.stop().catch(() => undefined);
    for (const host of hosts) host.destroy();
    await core?.deleteNamespace({ name: ns }).catch(() => undefined);
  });

  /** Which model server answered (its name is the response's system_fingerprint). */
  const who = async (): Promise<string> => {
    const r = await fetch(`${h.gw.url}/v1/chat/completions`, {
      method: "POST", headers: { authorization: `Bearer ${k.key}`, "content-type": "application/json" },
      body: '{"model":"llama-3-8b","messages":[{"role":"user","content":"x"}],"max_tokens":1}',
    });
    const body = (await r.json()) as { system_fingerprint?: string; error?: { code: string } };
    return r.status === 200 ? body.system_fingerprint! : `status ${r.status} ${body.error?.code}`;
  };
  const answers = async (n: number) => { const out = new Set<string>(); for (let i = 0; i < n; i++) out.add(await who()); return [...out].sort(); };
  const replace = async (endpoints: Array<{ ip: string; ready: boolean }>) => {
    await discovery.replaceNamespacedEndpointSlice({ name: `${service}-abc`, namespace: ns, body: slice(endpoints) });
  };

  it("sends traffic to the Service's ready endpoint", async () => {
    await eventually(async () => (await who()) === "pool-a", 10_000, 100);
    assert.deepEqual(await answers(10), ["pool-a"]);
  });

  it("balances over every ready endpoint when the slice grows", async () => {
    await replace([{ ip: hosts[0]!.ip, ready: true }, { ip: hosts[1]!.ip, ready: true }]);
    await eventually(async () => (await answers(20)).length === 2, 10_000, 100);
    assert.deepEqual(await answers(40), ["pool-a", "pool-b"]);
  });

  it("stops sending to an endpoint marked not ready, and to one removed", async () => {
    await replace([{ ip: hosts[0]!.ip, ready: false }, { ip: hosts[1]!.ip, ready: true }]);
    await eventually(async () => (await answers(10)).join() === "pool-b", 10_000, 100);
    assert.deepEqual(await answers(20), ["pool-b"]);
    await replace([{ ip: hosts[0]!.ip, ready: true }]);
    await eventually(async () => (await answers(10)).join() === "pool-a", 10_000, 100);
    assert.deepEqual(await answers(20), ["pool-a"]);
  });
});

/**
 * Config from labelled Secrets in the gateway-config namespace, watched with namespace-scoped access
 * only: the gateway runs as the Helm chart's ServiceAccount under the chart's Role (a token, as in a
 * pod), which reaches that namespace's Secrets and none of the release namespace's.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { CoreV1Api, KubeConfig, type V1Secret } from "@kubernetes/client-node";
import { request } from "undici";
import { GATEWAY_CONFIG_DATA_KEY, GATEWAY_CONFIG_LABEL, gatewayConfigSecretName } from "@crosslogic/crds";
import { kube } from "@crosslogic/testenv/kube";
import { testEnv } from "@crosslogic/testenv/test-env";
import { chartIdentity, type ChartIdentity } from "../../../charts/test/service-account.ts";
import { ADMIN_TOKEN, makeDoc, makeKey, suffix } from "../fixtures.ts";
import { eventually, startHarness, type Harness } from "../harness.ts";

const env = testEnv();

describe("gateway config from Kubernetes Secrets", () => {
  const ns = `gw-${suffix()}`;
  /** The chart's default: the release namespace plus "-gateway-config" (created by the chart's RBAC template). */
  const cfgNs = `${ns}-gateway-config`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gw-k8s-"));
  let identity: ChartIdentity;
  let core: CoreV1Api;
  let h: Harness;
  const first = makeKey();
  const second = makeKey();
  const doc = makeDoc({ keys: [first] });
  const name = gatewayConfigSecretName(doc.environment.namespace, doc.environment.name);
  const secret = (body: string, labelled = true): V1Secret => ({
    metadata: { name, namespace: cfgNs, labels: labelled ? { [GATEWAY_CONFIG_LABEL]: "true" } : {} },
    data: { [GATEWAY_CONFIG_DATA_KEY]: Buffer.from(body).toString("base64") },
  });
  const status = async (key: string) => (await fetch(`${h.gw.url}/v1/models`, { headers: { authorization: `Bearer ${key}` } })).status;

  before(async () => {
    const kc = new KubeConfig();
    kc.loadFromFile(env.KUBECONFIG);
    core = kc.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: ns } } });
    identity = await chartIdentity(kube(env.KUBECONFIG, env.KUBECTL), env.KUBECONFIG, { component: "gateway", namespace: ns, release: ns, dir });
    await core.createNamespacedSecret({ namespace: cfgNs, body: secret(JSON.stringify(doc)) });
    // An unlabelled Secret with a valid document is not config.
    await core.createNamespacedSecret({ namespace: cfgNs, body: { ...secret(JSON.stringify(makeDoc({ keys: [second] })), false), metadata: { name: "other", namespace: cfgNs } } });
    // The tests poll with keys that are refused until a document arrives: no graduated delays or blocks for that.
    h = await startHarness({ REDIS_URL: env.REDIS_URL, CONFIG_SOURCE: "kubernetes", SYSTEM_NAMESPACE: ns, GATEWAY_CONFIG_NAMESPACE: cfgNs, KUBECONFIG: identity.kubeconfig, ADMIN_TOKEN, VIOLATION_DELAY_AFTER: "100000", VIOLATION_BLOCK_AFTER: "100000" }, {});
  });

  after(async () => {
    await h?.stop();
    for (const n of [ns, cfgNs]) await core.deleteNamespace({ name: n }).catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("runs with the chart's Role: the gateway-config Secrets, read only; no Secret of the release namespace", async () => {
    const can = async (verb: string, res: string, namespace: string) =>
      (await kube(env.KUBECONFIG, env.KUBECTL).run(["auth", "can-i", verb, res, "-n", namespace, `--as=system:serviceaccount:${ns}:${identity.serviceAccount}`])).stdout.trim();
    assert.equal(await can("watch", "secrets", cfgNs), "yes");
    assert.equal(await can("update", "secrets", cfgNs), "no");
    // The release namespace holds the Stripe keys, database credentials and admin tokens.
    assert.equal(await can("get", "secrets", ns), "no");
    assert.equal(await can("list", "secrets", ns), "no");
    assert.equal(await can("list", "secrets", "default"), "no");
  });

  it("refuses to start, saying why, when its identity may not read the namespace", async () => {
    // Pointed at the release namespace (as before the config had its own): refused, not silently empty.
    await assert.rejects(startHarness({ REDIS_URL: env.REDIS_URL, CONFIG_SOURCE: "kubernetes", SYSTEM_NAMESPACE: ns, GATEWAY_CONFIG_NAMESPACE: ns, KUBECONFIG: identity.kubeconfig, ADMIN_TOKEN }, {}), /403|forbidden/i);
  });

  it("loads labelled Secrets at start and ignores others", async () => {
    assert.equal(await status(first.key), 200);
    assert.equal(await status(second.key), 401);
  });

  it("keeps the last good document when the Secret turns invalid, then applies the next valid one", async () => {
    await core.replaceNamespacedSecret({ name, namespace: cfgNs, body: secret('{"apiVersion":"nope"}') });
    await eventually(async () => (await fetch(`${h.gw.adminUrl}/metrics`).then((r) => r.text())).match(/gateway_config_reloads_total\{result="rejected"\} [1-9]/));
    assert.equal(await status(first.key), 200);
    await core.replaceNamespacedSecret({ name, namespace: cfgNs, body: secret(JSON.stringify({ ...doc, keys: [first.entry, second.entry] })) });
    await eventually(async () => (await status(second.key)) === 200, 5000);
  });

  it("hands an environment over to a renamed Secret (written before the old one is deleted) without refusing a request", async () => {
    // What the operator does to a config Secret under the old naming scheme (gwcfg-{ns}-{env}).
    // The kept key unlimited, and requests paced: no 429 however fast the machine.
    const [kept, added] = [makeKey({ name: "kept", limits: { requestsPerMinute: 0, tokensPerMinute: 0, concurrency: 10 } }), makeKey({ name: "added" })];
    const moved = makeDoc({ keys: [kept] });
    const labelled = (n: string, d: unknown): V1Secret => ({ ...secret(JSON.stringify(d)), metadata: { name: n, namespace: cfgNs, labels: { [GATEWAY_CONFIG_LABEL]: "true" } } });
    const [oldName, newName] = [`gwcfg-${moved.environment.namespace}-${moved.environment.name}`, gatewayConfigSecretName(moved.environment.namespace, moved.environment.name)];
    await core.createNamespacedSecret({ namespace: cfgNs, body: labelled(oldName, moved) });
    await eventually(async () => (await status(kept.key)) === 200, 5000);
    const metrics = () => fetch(`${h.gw.adminUrl}/metrics`).then((r) => r.text());
    const waitingBefore = Number(/gateway_config_reloads_total\{result="waiting"\} (\d+)/.exec(await metrics())?.[1] ?? 0);

    // Requests go on throughout, one after another.
    const seen = new Map<number, number>();
    let stop = false;
    const load = (async () => { while (!stop) { const s = await status(kept.key); seen.set(s, (seen.get(s) ?? 0) + 1); await new Promise((r) => setTimeout(r, 2)); } })();
    try {
      await core.createNamespacedSecret({ namespace: cfgNs, body: labelled(newName, { ...moved, keys: [kept.entry, added.entry] }) });
      await eventually(async () => Number(/gateway_config_reloads_total\{result="waiting"\} (\d+)/.exec(await metrics())?.[1] ?? 0) > waitingBefore, 5000);
      assert.equal(await status(added.key), 401, "the renamed Secret waits while the old one defines the environment");
      await core.deleteNamespacedSecret({ name: oldName, namespace: cfgNs });
      await eventually(async () => (await status(added.key)) === 200, 5000);
      await new Promise((r) => setTimeout(r, 200));
    } finally {
      stop = true;
      await load;
    }
    assert.deepEqual([...seen.keys()], [200], `statuses while handed over: ${JSON.stringify([...seen])}`);
    assert.ok(seen.get(200)! >= 10, `${seen.get(200)} requests during the handover`);
    await core.deleteNamespacedSecret({ name: newName, namespace: cfgNs });
    await eventually(async () => (await status(kept.key)) === 401, 5000);
  });

  it("serves an environment spread over several Secrets (shards); deleting one drops only its keys", async () => {
    const [a, b, c] = [makeKey({ name: "a" }), makeKey({ name: "b" }), makeKey({ name: "c" })];
    const big = makeDoc({ keys: [], hostnames: [`api-${suffix()}.example.test`] });
    const shard = (i: number, keys: typeof a[]): V1Secret => ({
      metadata: { name: gatewayConfigSecretName(big.environment.namespace, big.environment.name, i), namespace: cfgNs, labels: { [GATEWAY_CONFIG_LABEL]: "true" } },
      data: { [GATEWAY_CONFIG_DATA_KEY]: Buffer.from(JSON.stringify({ ...big, shard: i, keys: keys.map((k) => k.entry) })).toString("base64") },
    });
    // fetch() sends its own Host header: undici's request() sends the environment's.
    const onHost = async (key: string) => {
      const r = await request(`${h.gw.url}/v1/models`, { headers: { authorization: `Bearer ${key}`, host: big.environment.hostnames[0]! } });
      await r.body.dump();
      return r.statusCode;
    };
    await core.createNamespacedSecret({ namespace: cfgNs, body: shard(0, [a]) });
    await core.createNamespacedSecret({ namespace: cfgNs, body: shard(1, [b, c]) });
    await eventually(async () => (await onHost(c.key)) === 200, 5000);
    assert.deepEqual([await onHost(a.key), await onHost(b.key)], [200, 200]);
    await core.deleteNamespacedSecret({ name: shard(1, []).metadata!.name!, namespace: cfgNs });
    await eventually(async () => (await onHost(b.key)) === 401, 5000);
    assert.deepEqual([await onHost(a.key), await onHost(c.key)], [200, 401], "the other shard's key still answers, on the environment's hostname");
    await core.deleteNamespacedSecret({ name: shard(0, []).metadata!.name!, namespace: cfgNs });
    await eventually(async () => (await onHost(a.key)) === 401, 5000);
  });

  it("drops an environment when its Secret is deleted", async () => {
    await core.deleteNamespacedSecret({ name, namespace: cfgNs });
    await eventually(async () => (await status(first.key)) === 401, 5000);
  });
});

/**
 * Config from labelled Secrets in the gateway's namespace, watched with namespace-scoped access only:
 * the gateway runs as the Helm chart's ServiceAccount under the chart's Role (a token, as in a pod).
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { CoreV1Api, KubeConfig, type V1Secret } from "@kubernetes/client-node";
import { GATEWAY_CONFIG_DATA_KEY, GATEWAY_CONFIG_LABEL, gatewayConfigSecretName } from "@crosslogic/crds";
import { kube } from "@crosslogic/testenv/kube";
import { testEnv } from "@crosslogic/testenv/test-env";
import { chartIdentity, type ChartIdentity } from "../../../charts/test/service-account.ts";
import { ADMIN_TOKEN, makeDoc, makeKey, suffix } from "../fixtures.ts";
import { eventually, startHarness, type Harness } from "../harness.ts";

const env = testEnv();

describe("gateway config from Kubernetes Secrets", () => {
  const ns = `gw-${suffix()}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gw-k8s-"));
  let identity: ChartIdentity;
  let core: CoreV1Api;
  let h: Harness;
  const first = makeKey();
  const second = makeKey();
  const doc = makeDoc({ keys: [first] });
  const name = gatewayConfigSecretName(doc.environment.namespace, doc.environment.name);
  const secret = (body: string, labelled = true): V1Secret => ({
    metadata: { name, namespace: ns, labels: labelled ? { [GATEWAY_CONFIG_LABEL]: "true" } : {} },
    data: { [GATEWAY_CONFIG_DATA_KEY]: Buffer.from(body).toString("base64") },
  });
  const status = async (key: string) => (await fetch(`${h.gw.url}/v1/models`, { headers: { authorization: `Bearer ${key}` } })).status;

  before(async () => {
    const kc = new KubeConfig();
    kc.loadFromFile(env.KUBECONFIG);
    core = kc.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: ns } } });
    await core.createNamespacedSecret({ namespace: ns, body: secret(JSON.stringify(doc)) });
    // An unlabelled Secret with a valid document is not config.
    await core.createNamespacedSecret({ namespace: ns, body: { ...secret(JSON.stringify(makeDoc({ keys: [second] })), false), metadata: { name: "other", namespace: ns } } });
    identity = await chartIdentity(kube(env.KUBECONFIG, env.KUBECTL), env.KUBECONFIG, { component: "gateway", namespace: ns, release: ns, dir });
    h = await startHarness({ REDIS_URL: env.REDIS_URL, CONFIG_SOURCE: "kubernetes", SYSTEM_NAMESPACE: ns, KUBECONFIG: identity.kubeconfig, ADMIN_TOKEN }, {});
  });

  after(async () => {
    await h?.stop();
    await core.deleteNamespace({ name: ns }).catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("runs with the chart's Role: Secrets of its own namespace, read only", async () => {
    const can = async (verb: string, res: string, namespace: string) =>
      (await kube(env.KUBECONFIG, env.KUBECTL).run(["auth", "can-i", verb, res, "-n", namespace, `--as=system:serviceaccount:${ns}:${identity.serviceAccount}`])).stdout.trim();
    assert.equal(await can("watch", "secrets", ns), "yes");
    assert.equal(await can("update", "secrets", ns), "no");
    assert.equal(await can("list", "secrets", "default"), "no");
  });

  it("refuses to start, saying why, when its identity may not read the namespace", async () => {
    await assert.rejects(startHarness({ REDIS_URL: env.REDIS_URL, CONFIG_SOURCE: "kubernetes", SYSTEM_NAMESPACE: "default", KUBECONFIG: identity.kubeconfig, ADMIN_TOKEN }, {}), /403|forbidden/i);
  });

  it("loads labelled Secrets at start and ignores others", async () => {
    assert.equal(await status(first.key), 200);
    assert.equal(await status(second.key), 401);
  });

  it("keeps the last good document when the Secret turns invalid, then applies the next valid one", async () => {
    await core.replaceNamespacedSecret({ name, namespace: ns, body: secret('{"apiVersion":"nope"}') });
    await eventually(async () => (await fetch(`${h.gw.adminUrl}/metrics`).then((r) => r.text())).match(/gateway_config_reloads_total\{result="rejected"\} [1-9]/));
    assert.equal(await status(first.key), 200);
    await core.replaceNamespacedSecret({ name, namespace: ns, body: secret(JSON.stringify({ ...doc, keys: [first.entry, second.entry] })) });
    await eventually(async () => (await status(second.key)) === 200, 5000);
  });

  it("drops an environment when its Secret is deleted", async () => {
    await core.deleteNamespacedSecret({ name, namespace: ns });
    await eventually(async () => (await status(first.key)) === 401, 5000);
  });
});

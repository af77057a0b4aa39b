/** Config from labelled Secrets in the gateway's namespace, watched with namespace-scoped access only. */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { CoreV1Api, KubeConfig, type V1Secret } from "@kubernetes/client-node";
import { GATEWAY_CONFIG_DATA_KEY, GATEWAY_CONFIG_LABEL, gatewayConfigSecretName } from "@crosslogic/crds";
import { testEnv } from "@crosslogic/testenv/test-env";
import { ADMIN_TOKEN, makeDoc, makeKey, suffix } from "../fixtures.ts";
import { eventually, startHarness, type Harness } from "../harness.ts";

const env = testEnv();

describe("gateway config from Kubernetes Secrets", () => {
  const ns = `gw-${suffix()}`;
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
    h = await startHarness({ REDIS_URL: env.REDIS_URL, CONFIG_SOURCE: "kubernetes", SYSTEM_NAMESPACE: ns, KUBECONFIG: env.KUBECONFIG, ADMIN_TOKEN }, {});
  });

  after(async () => {
    await h?.stop();
    await core.deleteNamespace({ name: ns }).catch(() => undefined);
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

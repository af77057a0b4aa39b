import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";
import { describe, it } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { testEnv } from "../../src/test-env.ts";
import { waitForCrds } from "../../src/kube.ts";

const run = promisify(execFile);
const env = testEnv();
const kubectl = async (args: string[], input?: string) => {
  const p = run(env.KUBECTL, args, { env: { ...process.env, KUBECONFIG: env.KUBECONFIG } });
  if (input !== undefined) p.child.stdin?.end(input);
  return (await p).stdout;
};

describe("local control plane", () => {
  it("answers readyz ok to kubectl and reports a real Kubernetes version", async () => {
    assert.equal((await kubectl(["get", "--raw", "/readyz"])).trim(), "ok");
    const version = JSON.parse(await kubectl(["version", "-o", "json"])) as { serverVersion: { major: string; minor: string; gitVersion: string } };
    assert.match(version.serverVersion.gitVersion, /^v1\.\d+\.\d+$/);
    assert.ok(Number(version.serverVersion.minor) >= 34, `server minor ${version.serverVersion.minor} is current`);
  });

  it("stores a CRD and a custom object applied with kubectl, read back with @kubernetes/client-node", async () => {
    const group = `t${randomBytes(4).toString("hex")}.crosslogic.test`;
    const crd = {
      apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition",
      metadata: { name: `widgets.${group}` },
      spec: {
        group, scope: "Namespaced",
        names: { plural: "widgets", singular: "widget", kind: "Widget" },
        versions: [{
          name: "v1", served: true, storage: true,
          schema: { openAPIV3Schema: { type: "object", properties: { spec: { type: "object", properties: { size: { type: "integer", minimum: 1 } } } } } },
        }],
      },
    };
    await kubectl(["apply", "--server-side", "-f", "-"], JSON.stringify(crd));
    await waitForCrds(kubectl, [`widgets.${group}`], 30);
    await kubectl(["apply", "--server-side", "-f", "-"], JSON.stringify({ apiVersion: `${group}/v1`, kind: "Widget", metadata: { name: "w1", namespace: "default" }, spec: { size: 3 } }));

    const kc = new k8s.KubeConfig();
    kc.loadFromFile(env.KUBECONFIG);
    const api = kc.makeApiClient(k8s.CustomObjectsApi);
    const obj = (await api.getNamespacedCustomObject({ group, version: "v1", namespace: "default", plural: "widgets", name: "w1" })) as { spec: { size: number } };
    assert.equal(obj.spec.size, 3);

    // The schema is enforced: the API server refuses a size below the minimum.
    await assert.rejects(
      kubectl(["apply", "--server-side", "-f", "-"], JSON.stringify({ apiVersion: `${group}/v1`, kind: "Widget", metadata: { name: "w2", namespace: "default" }, spec: { size: 0 } })),
      /spec.size: Invalid value: 0/,
    );
  });

  it("has cert-manager's CRDs installed", async () => {
    const out = await kubectl(["get", "crd", "certificates.cert-manager.io", "-o", "jsonpath={.status.conditions[?(@.type=='Established')].status}"]);
    assert.equal(out, "True");
  });

  it("enforces RBAC: an identity without bindings is refused", async () => {
    await assert.rejects(kubectl(["get", "secrets", "-n", "default", "--as", "nobody@example.com"]), /forbidden/i);
  });
});

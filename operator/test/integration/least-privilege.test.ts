/**
 * The operator under the Helm chart's own RBAC (its ServiceAccount, ClusterRole and leader-election
 * Role, authenticated with a TokenRequest token as in a pod): every output of a Tenant, Environment
 * and ApiKey is created, a revocation and the Tenant's deletion are carried out, and the API server
 * refuses none of its requests. This is what proves the chart grants enough; the chart tests prove
 * it grants no more than it says.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { hashApiKey } from "@crosslogic/crds";
import { testEnv } from "@crosslogic/testenv/test-env";
import { chartIdentity, type ChartIdentity } from "../../../charts/test/service-account.ts";
import { installCrds, kube, startOperatorProcess, waitFor, type OperatorProcess } from "../support/cluster.ts";

const env = testEnv();
const k = kube(env.KUBECONFIG, env.KUBECTL);
const id = randomBytes(3).toString("hex");
const tenant = `lp-${id}`;
const ns = `tenant-${tenant}`;
const system = `cl-lp-${id}`;
/** The gateway-config Secrets' own namespace, as the chart sets GATEWAY_CONFIG_NAMESPACE (the chart's gateway RBAC creates it). */
const configNs = `${system}-gateway-config`;
const pool = `gpu-lp-${id}`;

type Obj = { metadata: { name: string; finalizers?: string[] }; data?: Record<string, string>; status?: { conditions?: Array<{ type: string; status: string; message?: string }> } };
const get = (args: string[]) => k.json<Obj>(["get", ...args]);
const exists = async (args: string[]) => (await k.run(["get", ...args, "-o", "name"])).code === 0;
const ready = (args: string[]) => waitFor(`${args.join(" ")} Ready`, async () => (await get(args)).status?.conditions?.find((c) => c.type === "Ready")?.status === "True", 60_000);
const configHashes = async () => {
  const s = await get(["secret", `gwcfg-${ns}.prod`, "-n", configNs]);
  return (JSON.parse(Buffer.from(s.data!["config.json"]!, "base64").toString("utf8")) as { keys: Array<{ hash: string }> }).keys.map((x) => x.hash);
};

describe("operator under the chart's least-privilege RBAC", { timeout: 240_000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "least-privilege-"));
  let identity: ChartIdentity;
  let op: OperatorProcess;

  before(async () => {
    await installCrds(k);
    for (const n of [system, pool, configNs]) await k.ok(["create", "namespace", n]);
    await k.ok(["apply", "-f", "-"], `apiVersion: v1\nkind: Service\nmetadata: {name: vllm, namespace: ${pool}}\nspec: {selector: {app: vllm}, ports: [{port: 8000}]}\n`);
    identity = await chartIdentity(k, env.KUBECONFIG, { component: "operator", namespace: system, release: `lp-${id}`, dir });
    op = await startOperatorProcess({ KUBECONFIG: identity.kubeconfig, SYSTEM_NAMESPACE: system, GATEWAY_CONFIG_NAMESPACE: configNs, POD_NAME: `op-${id}`, DEFAULT_ISSUER_NAME: "letsencrypt", RESYNC_SECONDS: "5" });
  });

  after(async () => {
    await op?.stop();
    await k.run(["delete", "tenant", tenant, "--ignore-not-found", "--wait=false"]);
    for (const a of identity?.applied ?? []) if (!a.namespace) await k.run(["delete", a.kind, a.name, "--ignore-not-found"]);
    for (const n of [system, pool, configNs]) await k.run(["delete", "namespace", n, "--wait=false"]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("authenticates as the chart's ServiceAccount, not as an administrator", async () => {
    const can = async (verb: string, res: string, namespace?: string) =>
      (await k.run(["auth", "can-i", verb, res, ...(namespace ? ["-n", namespace] : []), `--as=system:serviceaccount:${system}:${identity.serviceAccount}`])).stdout.trim();
    assert.equal(await can("create", "apikeys.crosslogic.ai", "default"), "yes");
    assert.equal(await can("create", "pods", "default"), "no", "no rights beyond what the chart lists");
    assert.equal(await can("create", "leases.coordination.k8s.io", "default"), "no", "leader election only in its own namespace");
    assert.equal(await can("create", "leases.coordination.k8s.io", system), "yes");
    assert.match(fs.readFileSync(identity.kubeconfig, "utf8"), /token: /);
  });

  it("reconciles a Tenant, Environment and ApiKey to Ready, and carries out revocation and deletion", async () => {
    await k.ok(["apply", "-f", "-"], `apiVersion: crosslogic.ai/v1alpha1\nkind: Tenant\nmetadata: {name: ${tenant}}\nspec: {members: [{kind: User, name: alice-${id}, role: admin}, {kind: User, name: rob-${id}, role: read-only}]}`);
    await waitFor("tenant namespace", () => exists(["namespace", ns]));
    await k.ok(["apply", "-f", "-"], [
      `apiVersion: crosslogic.ai/v1alpha1\nkind: Environment\nmetadata: {name: prod, namespace: ${ns}}\nspec: {tier: production, hostnames: [lp-${id}.api.example.com], routes: [{model: llama, nodePool: ${pool}, backend: {service: {name: vllm, namespace: ${pool}, port: 8000}}}]}`,
      `apiVersion: crosslogic.ai/v1alpha1\nkind: ApiKey\nmetadata: {name: bot, namespace: ${ns}}\nspec: {environment: prod}`,
    ].join("\n---\n"));
    await ready(["tenant", tenant]);
    await ready(["environment", "prod", "-n", ns]);
    await ready(["apikey", "bot", "-n", ns]);
    // Every kind of output, including the cross-namespace and cluster-scoped ones.
    for (const args of [["clusterrole", "crosslogic-tenant-admin"], ["rolebinding", "crosslogic-read-only", "-n", ns], ["networkpolicy", "crosslogic-default-deny", "-n", ns],
      ["clusterrolebinding", `crosslogic-tenant-${tenant}-viewer`], ["certificate", "prod-tls", "-n", ns], ["secret", "apikey-bot", "-n", ns]]) {
      assert.ok(await exists(args), `${args.join(" ")} exists`);
    }
    assert.equal((await k.json<{ items: unknown[] }>(["get", "networkpolicy", "-n", pool, "-l", `crosslogic.ai/tenant=${tenant}`])).items.length, 1, "the gateway-only policy in the pool namespace");
    const key = Buffer.from((await get(["secret", "apikey-bot", "-n", ns])).data!.key!, "base64").toString("utf8");
    assert.deepEqual(await configHashes(), [hashApiKey(key)]);
    assert.equal((await k.ok(["get", "lease", "-n", system, "-o", "name"])).trim().split("\n").length, 1, "leader election took its Lease");

    await k.ok(["patch", "apikey", "bot", "-n", ns, "--type=merge", "-p", '{"spec":{"revoked":true}}']);
    await waitFor("revoked key dropped from the gateway config", async () => (await configHashes()).length === 0);

    await k.ok(["delete", "tenant", tenant, "--wait=false"]);
    await waitFor("tenant finalized", async () => !(await exists(["tenant", tenant])), 60_000);
    assert.equal(await exists(["clusterrolebinding", `crosslogic-tenant-${tenant}-viewer`]), false);
    assert.equal(await exists(["secret", `gwcfg-${ns}.prod`, "-n", configNs]), false);
  });

  it("was refused nothing along the way", async () => {
    // The one refusal RBAC has nothing to do with: Events about objects in the tenant namespace
    // after its deletion began ("being terminated"). Every refusal is logged with its reason.
    const refusals = op.lines.filter((l) => /forbidden|unauthorized/i.test(l));
    assert.deepEqual(refusals.filter((l) => !/because it is being terminated/.test(l)), []);
    const metrics = await (await fetch(`http://127.0.0.1:${op.port}/metrics`)).text();
    const count = (code: string) => metrics.split("\n").filter((l) => l.startsWith("crosslogic_operator_api_requests_total{") && l.includes(`code="${code}"`))
      .reduce((n, l) => n + Number(l.split(" ").at(-1)), 0);
    assert.equal(count("401"), 0);
    assert.ok(count("403") <= refusals.length, `${count("403")} requests refused, ${refusals.length} explained:\n${refusals.join("\n")}`);
  });
});

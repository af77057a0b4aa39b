/**
 * How long N ApiKeys (default 1,000) take from creation to Ready on the local API server, with the
 * operator running as users run it. Writes bench/results/operator-apikeys.json.
 *
 *   node bench/operator/apikeys-ready.ts [--keys 1000]
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startControlPlane } from "@crosslogic/testenv";
import { installCrds, kube, startOperatorProcess, waitFor } from "../../operator/test/support/cluster.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const n = Number(process.argv[process.argv.indexOf("--keys") + 1] || 1000) || 1000;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-operator-"));
const cp = await startControlPlane({ dir });
const k = kube(cp.kubeconfig, path.join(cp.binDir, "kubectl"));
let op;
try {
  await installCrds(k);
  await k.ok(["create", "namespace", "crosslogic-system"]);
  op = await startOperatorProcess({ KUBECONFIG: cp.kubeconfig, LOG_LEVEL: "warn" });
  await k.ok(["apply", "-f", "-"], "apiVersion: crosslogic.ai/v1alpha1\nkind: Tenant\nmetadata: {name: bench}\nspec: {plan: enterprise}\n");
  await waitFor("tenant namespace", async () => (await k.run(["get", "ns", "tenant-bench"])).code === 0);
  await k.ok(["apply", "-f", "-"], "apiVersion: crosslogic.ai/v1alpha1\nkind: Environment\nmetadata: {name: prod, namespace: tenant-bench}\nspec: {tier: production, routes: [{model: m, backend: {url: 'http://127.0.0.1:9'}}]}\n");
  const docs = Array.from({ length: n }, (_, i) => `apiVersion: crosslogic.ai/v1alpha1\nkind: ApiKey\nmetadata: {name: key-${i}, namespace: tenant-bench}\nspec: {environment: prod}\n`).join("---\n");
  const t0 = performance.now();
  await k.ok(["create", "-f", "-"], docs);
  const createdMs = performance.now() - t0;
  const readyAt: number[] = [];
  await waitFor(`${n} ApiKeys Ready`, async () => {
    const items = (await k.json<{ items: Array<{ status?: { conditions?: Array<{ type: string; status: string }> } }> }>(["get", "apikeys", "-n", "tenant-bench"])).items;
    const ready = items.filter((i) => i.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True")).length;
    readyAt.push(ready);
    return ready === n;
  }, 600_000, 500);
  const allReadyMs = performance.now() - t0;
  // Every Secret of the Environment's gateway config (more than one past ~4,000 keys).
  const secrets = JSON.parse(await k.ok(["get", "secrets", "-n", "crosslogic-system", "-l", "crosslogic.ai/tenant=bench,crosslogic.ai/environment=prod,crosslogic.ai/gateway-config=true", "-o", "json"])) as { items: Array<{ data: Record<string, string> }> };
  const configs = secrets.items.map((s) => JSON.parse(Buffer.from(s.data["config.json"]!, "base64").toString("utf8")) as { keys: unknown[] });
  const result = {
    benchmark: "operator-apikeys-ready",
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, node: process.version },
    apiKeys: n,
    kubectlCreateSeconds: +(createdMs / 1000).toFixed(2),
    allReadySeconds: +(allReadyMs / 1000).toFixed(2),
    keysPerSecond: +(n / (allReadyMs / 1000)).toFixed(1),
    gatewayConfigKeys: configs.reduce((sum, d) => sum + d.keys.length, 0),
    gatewayConfigSecrets: configs.length,
    operatorWrites: await op.metric("crosslogic_operator_writes_total"),
    reconciles: await op.metric("crosslogic_operator_reconcile_total"),
    note: "Clock starts before `kubectl create` of all N objects (which is included); ends when every ApiKey has Ready=True. Local kube-apiserver + etcd and the operator share this 2-core machine.",
  };
  fs.mkdirSync(path.join(root, "bench/results"), { recursive: true });
  fs.writeFileSync(path.join(root, "bench/results/operator-apikeys.json"), `${JSON.stringify(result, null, 2)}\n`);
  console.log(JSON.stringify(result, null, 2));
} finally {
  await op?.stop();
  await cp.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}

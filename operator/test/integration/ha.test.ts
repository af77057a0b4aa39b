/**
 * High availability on a control plane of its own: two operator replicas with exactly one leader
 * and failover when the leader dies; then an API-server restart in the middle of churn, after
 * which everything converges with nothing lost or orphaned.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { gatewayConfigSecretName, hashApiKey, validateGatewayConfig } from "@crosslogic/crds";
import { startControlPlane, type ControlPlane } from "@crosslogic/testenv";
import { installCrds, kube, startOperatorProcess, waitFor, type Kube, type OperatorProcess } from "../support/cluster.ts";

const system = "crosslogic-system";
const tenantYaml = (name: string) => `apiVersion: crosslogic.ai/v1alpha1\nkind: Tenant\nmetadata: {name: ${name}}\nspec: {}\n`;
const envYaml = (ns: string) => `apiVersion: crosslogic.ai/v1alpha1\nkind: Environment\nmetadata: {name: prod, namespace: ${ns}}\nspec: {tier: staging, routes: [{model: m, backend: {url: "http://127.0.0.1:9"}}]}\n`;
const keyYaml = (ns: string, name: string) => `apiVersion: crosslogic.ai/v1alpha1\nkind: ApiKey\nmetadata: {name: ${name}, namespace: ${ns}}\nspec: {environment: prod}\n`;

describe("operator high availability", { timeout: 300_000 }, () => {
  let cp: ControlPlane;
  let k: Kube;
  let dir: string;
  const ops: OperatorProcess[] = [];
  const start = async (name: string) => {
    const op = await startOperatorProcess({ KUBECONFIG: cp.kubeconfig, SYSTEM_NAMESPACE: system, POD_NAME: name, LEASE_DURATION_SECONDS: "4", RESYNC_SECONDS: "30" });
    ops.push(op);
    return op;
  };
  let supervising = true;
  /** Restarts a replica whenever it exits, as the Deployment's kubelet would (an operator that loses its Lease exits 1). */
  const supervise = async (name: string): Promise<void> => {
    const op = await start(name);
    op.child.once("exit", () => { if (supervising) setTimeout(() => { supervise(name).catch(() => {}); }, 1000); });
  };
  const alive = (o: OperatorProcess) => o.child.exitCode === null && o.child.signalCode === null;
  const holder = async () => (await k.ok(["get", "lease", "crosslogic-operator", "-n", system, "-o", "jsonpath={.spec.holderIdentity}"])).trim();
  const leaderGauge = async (op: OperatorProcess) => op.metric("crosslogic_operator_leader");

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "operator-ha-"));
    cp = await startControlPlane({ dir, certManagerCrds: true });
    k = kube(cp.kubeconfig, path.join(cp.binDir, "kubectl"));
    await installCrds(k);
    await k.ok(["create", "namespace", system]);
  });

  after(async () => {
    supervising = false;
    for (const op of ops) await op.stop("SIGKILL");
    await cp?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("two replicas: exactly one leader; the standby takes over when the leader dies", async () => {
    const a = await start("replica-a");
    const b = await start("replica-b");
    const first = await waitFor("a leader", async () => (await holder()) || undefined);
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(await holder(), first, "leadership is stable");
    const [leader, standby] = first === "replica-a" ? [a, b] : [b, a];
    assert.equal(await leaderGauge(leader), 1);
    assert.equal(await leaderGauge(standby), 0);
    assert.equal((await fetch(`http://127.0.0.1:${standby.port}/readyz`)).status, 200, "a standby is ready (it serves by waiting)");
    await k.ok(["apply", "-f", "-"], tenantYaml("ha-one"));
    await waitFor("tenant reconciled by the leader", async () => (await k.ok(["get", "tenant", "ha-one", "-o", "jsonpath={.status.phase}"])) === "Active");

    await leader.stop("SIGKILL");
    const next = await waitFor("failover", async () => { const h = await holder(); return h && h !== first ? h : undefined; }, 30_000);
    assert.equal(next, first === "replica-a" ? "replica-b" : "replica-a");
    await waitFor("new leader's gauge", async () => (await leaderGauge(standby)) === 1);
    await k.ok(["apply", "-f", "-"], tenantYaml("ha-two"));
    await waitFor("tenant reconciled by the new leader", async () => (await k.ok(["get", "tenant", "ha-two", "-o", "jsonpath={.status.phase}"])) === "Active");
    assert.equal((await k.ok(["get", "lease", "crosslogic-operator", "-n", system, "-o", "jsonpath={.spec.leaseTransitions}"])).trim(), "1");
  });

  it("an API-server restart in the middle of churn converges with nothing lost or orphaned", async () => {
    const ns = "tenant-churn";
    await supervise("replica-c");
    await supervise("replica-d");
    await k.ok(["apply", "-f", "-"], tenantYaml("churn"));
    await waitFor("namespace", async () => (await k.run(["get", "ns", ns])).code === 0);
    await k.ok(["apply", "-f", "-"], envYaml(ns));
    const names = Array.from({ length: 40 }, (_, i) => `key-${i}`);
    const deleted = new Set(names.filter((_, i) => i % 5 === 0));
    const restart = (async () => { await new Promise((r) => setTimeout(r, 1500)); await cp.restartApiServer(3000); })();
    // Churn through the restart: create keys, delete some; kubectl retries while the server is down.
    for (const name of names) {
      await waitFor(`create ${name}`, async () => (await k.run(["apply", "-f", "-"], keyYaml(ns, name))).code === 0, 60_000, 300);
    }
    await restart;
    for (const name of deleted) await waitFor(`delete ${name}`, async () => (await k.run(["delete", "apikey", name, "-n", ns, "--wait=false"])).code === 0, 60_000, 300);
    const kept = names.filter((n) => !deleted.has(n));

    await waitFor("every remaining key Ready", async () => {
      const items = (await k.json<{ items: Array<{ metadata: { name: string }; status?: { conditions?: Array<{ type: string; status: string }> } }> }>(["get", "apikeys", "-n", ns])).items;
      return items.length === kept.length && items.every((i) => i.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"));
    }, 120_000, 1000).catch((err: Error) => {
      for (const o of ops) console.error(`--- ${o.child.pid} exit=${o.child.exitCode ?? o.child.signalCode}\n${o.lines.filter((l) => !l.includes('"log":"audit"')).slice(-25).join("\n")}`);
      throw err;
    });
    await waitFor("deleted keys' Secrets gone, no orphans", async () => {
      const secrets = (await k.ok(["get", "secrets", "-n", ns, "-l", "crosslogic.ai/api-key", "-o", "jsonpath={.items[*].metadata.name}"])).trim().split(/\s+/).filter(Boolean).sort();
      return JSON.stringify(secrets) === JSON.stringify(kept.map((n) => `apikey-${n}`).sort());
    }, 60_000, 1000);
    const published = async () => {
      const secret = JSON.parse(await k.ok(["get", "secret", gatewayConfigSecretName(ns, "prod"), "-n", system, "-o", "json"])) as { data: Record<string, string> };
      const doc = validateGatewayConfig(JSON.parse(Buffer.from(secret.data["config.json"]!, "base64").toString("utf8")));
      assert.ok(doc.ok);
      return doc;
    };
    // The Environment's pass that drops the deleted keys may come a moment after their Secrets go.
    await waitFor("the config to hold exactly the kept keys", async () => JSON.stringify((await published()).value.keys.map((e) => e.name).sort()) === JSON.stringify([...kept].sort()), 30_000, 250);
    const cfg = await published();
    for (const name of kept.slice(0, 5)) {
      const key = Buffer.from(JSON.parse(await k.ok(["get", "secret", `apikey-${name}`, "-n", ns, "-o", "json"])).data.key as string, "base64").toString("utf8");
      assert.ok(cfg.value.keys.some((e) => e.hash === hashApiKey(key)), `${name}'s current key is the published one`);
    }
    // No watch storm: each informer relisted only a handful of times.
    const leaderName = await holder();
    const leader = ops.filter(alive).find((o) => o.lines.some((l) => l.includes(`"identity":"${leaderName}"`)))!;
    const lists = await leader.metric("crosslogic_operator_informer_lists_total");
    assert.ok(lists < 11 * 5, `informer lists after one restart: ${lists}`);
  });
});

/**
 * The rendered chart (CRDs included once charts/crosslogic/crds/ holds them, hooks and `helm test`
 * resources too) accepted by a real API server: `kubectl apply --dry-run=server` against the local
 * control plane, for every values set, templated for the server's own version.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { parseAllDocuments, stringify } from "yaml";
import { testEnv } from "@crosslogic/testenv/test-env";
import { chartDir, helm, kindValues, templateArgs, valuesDir } from "../helm.ts";

const env = testEnv();
const suffix = randomBytes(3).toString("hex");
const namespace = `chart-${suffix}`;
const gpuNamespace = "gpu-a100"; // named by the values sets: shared, created if missing, never deleted

function kubectl(args: string[], input?: string): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(env.KUBECTL, args, { input, encoding: "utf8", env: { ...process.env, KUBECONFIG: env.KUBECONFIG }, maxBuffer: 64 << 20 });
  return { status: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}

function serverVersion(): string {
  const v = JSON.parse(execFileSync(env.KUBECTL, ["version", "-o", "json"], { encoding: "utf8", env: { ...process.env, KUBECONFIG: env.KUBECONFIG } })) as { serverVersion: { gitVersion: string } };
  return v.serverVersion.gitVersion.replace(/^v/, "");
}

const hasCrds = fs.existsSync(path.join(chartDir, "crds")) && fs.readdirSync(path.join(chartDir, "crds")).some((f) => f.endsWith(".yaml"));

// The chart's own Namespace for the gateway-config Secrets: a dry run does not create it, and the
// objects inside it need it to exist (helm install creates Namespaces first).
const configNamespace = `${namespace}-gateway-config`;

before(() => {
  for (const ns of [namespace, gpuNamespace, configNamespace]) {
    const r = kubectl(["create", "namespace", ns]);
    assert.ok(r.status === 0 || /AlreadyExists/.test(r.stderr), r.stderr);
  }
});

after(() => {
  for (const ns of [namespace, configNamespace]) kubectl(["delete", "namespace", ns, "--wait=false"]);
});

const sets: Record<string, string[]> = {
  defaults: [],
  "external-tls": [path.join(valuesDir, "external-tls.yaml")],
  "ingress-tls": [path.join(valuesDir, "ingress-tls.yaml")],
  kind: [kindValues],
};

test("the server accepts every object of the rendered chart (dry run)", async (t) => {
  const version = serverVersion();
  assert.match(version, /^1\.\d+\.\d+/, `server reports a real version (${version})`);
  if (!hasCrds) t.diagnostic("charts/crosslogic/crds/ has no CRD YAML yet (the operator work generates it): dry-run without CRDs");
  for (const [name, files] of Object.entries(sets)) {
    // A release name per set, so cluster-scoped names (ClusterRoles, ClusterIssuer) never collide with other tests.
    const r = helm(templateArgs({ release: `cl-${name}-${suffix}`, namespace, valuesFiles: files, kubeVersion: version, includeCrds: hasCrds }));
    assert.equal(r.status, 0, `${name}: helm template: ${r.stderr}`);
    // Pods (the `helm test` pod) are admitted only when their ServiceAccount exists: create the
    // ServiceAccounts for real in the throwaway namespace, then dry-run everything.
    const accounts = parseAllDocuments(r.stdout).map((d) => d.toJS() as { kind?: string } | null).filter((o) => o?.kind === "ServiceAccount");
    const created = kubectl(["apply", "-f", "-"], accounts.map((a) => stringify(a)).join("---\n"));
    assert.equal(created.status, 0, `${name}: ServiceAccounts: ${created.stderr}`);
    const applied = kubectl(["apply", "--dry-run=server", "-o", "name", "-f", "-"], r.stdout);
    assert.equal(applied.status, 0, `${name}: the API server refused:\n${applied.stderr}`);
    const kinds = new Set(applied.stdout.trim().split("\n").map((l) => l.split("/")[0]));
    for (const k of ["deployment.apps", "networkpolicy.networking.k8s.io", "clusterrole.rbac.authorization.k8s.io", "job.batch", "pod"]) {
      assert.ok(kinds.has(k), `${name}: ${k} among the accepted objects (${[...kinds].join(", ")})`);
    }
    if (hasCrds) assert.ok(kinds.has("customresourcedefinition.apiextensions.k8s.io"), `${name}: CRDs accepted`);
  }
});

test("the server refuses a broken manifest (the dry run is a real check)", () => {
  const r = helm(templateArgs({ release: `cl-broken-${suffix}`, namespace, kubeVersion: serverVersion() }));
  assert.equal(r.status, 0);
  const broken = r.stdout.replace("kind: HorizontalPodAutoscaler\n", "kind: HorizontalPodAutoscaler\nbogusField: 1\n");
  const applied = kubectl(["apply", "--dry-run=server", "--validate=strict", "-f", "-"], broken);
  assert.notEqual(applied.status, 0, "an unknown field must be refused");
  assert.match(applied.stderr, /bogusField/);
});

/**
 * The generated CRDs on a real API server, through kubectl: good objects are accepted with their
 * defaults, bad ones are refused with a message a platform engineer understands, and
 * `kubectl explain` teaches the fields.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { testEnv } from "@crosslogic/testenv/test-env";
import { waitForCrds } from "@crosslogic/testenv/kube";

const env = testEnv();
const crdDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../generated");
const suffix = randomBytes(3).toString("hex");
const ns = `crd-test-${suffix}`;

function kubectl(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(env.KUBECTL, [`--kubeconfig=${env.KUBECONFIG}`, ...args], (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

async function ok(args: string[], input?: string): Promise<string> {
  const r = await kubectl(args, input);
  assert.equal(r.code, 0, `kubectl ${args.join(" ")} failed: ${r.stderr}`);
  return r.stdout;
}

/** Applies a manifest that must be refused; returns kubectl's error output. */
async function refused(manifest: string): Promise<string> {
  const r = await kubectl(["apply", "-f", "-"], manifest);
  assert.notEqual(r.code, 0, `expected the API server to refuse:\n${manifest}\nbut it accepted: ${r.stdout}`);
  return r.stderr;
}

const tenant = (name: string, spec: string) => `apiVersion: crosslogic.ai/v1alpha1\nkind: Tenant\nmetadata: {name: ${name}}\nspec: ${spec}\n`;
const environment = (name: string, spec: string) => `apiVersion: crosslogic.ai/v1alpha1\nkind: Environment\nmetadata: {name: ${name}, namespace: ${ns}}\nspec: ${spec}\n`;
const apiKey = (name: string, spec: string) => `apiVersion: crosslogic.ai/v1alpha1\nkind: ApiKey\nmetadata: {name: ${name}, namespace: ${ns}}\nspec: ${spec}\n`;

describe("CRDs on the API server", () => {
  before(async () => {
    await ok(["apply", "--server-side", "--force-conflicts", "-f", crdDir]);
    await waitForCrds(ok, ["tenants.crosslogic.ai", "environments.crosslogic.ai", "apikeys.crosslogic.ai"]);
    await ok(["create", "namespace", ns]);
  });
  after(async () => {
    // No namespace controller runs locally: delete the objects themselves, not only their namespace.
    await kubectl(["delete", "apikeys,environments", "--all", "-n", ns, "--wait=false"]);
    await kubectl(["delete", "tenant", `t-${suffix}`, "--ignore-not-found", "--wait=false"]);
    await kubectl(["delete", "namespace", ns, "--wait=false"]);
  });

  it("accepts a valid Tenant and fills in the plan defaults", async () => {
    await ok(["apply", "-f", "-"], tenant(`t-${suffix}`, "{displayName: Acme, members: [{kind: User, name: alice@acme.com, role: admin}]}"));
    const stored = JSON.parse(await ok(["get", "tenant", `t-${suffix}`, "-o", "json"])) as { spec: Record<string, unknown> };
    assert.equal(stored.spec.plan, "free");
    assert.equal(stored.spec.suspended, false);
  });

  it("accepts a valid Environment and ApiKey with TLS, limit and concurrency defaults", async () => {
    await ok(["apply", "-f", "-"], environment("prod", "{tier: production, hostnames: [acme-prod.api.example.com], routes: [{model: llama-3-8b, nodePool: gpu-a100, backend: {service: {name: vllm, namespace: gpu-a100, port: 8000}}}, {model: bge-small, backend: {url: 'http://127.0.0.1:9000'}}]}"));
    const envObj = JSON.parse(await ok(["get", "environment", "prod", "-n", ns, "-o", "json"])) as { spec: { tls: Record<string, unknown>; limits: Record<string, unknown> } };
    assert.deepEqual(envObj.spec.tls, { duration: "2160h", renewBefore: "720h", privateKey: { algorithm: "ECDSA", size: 256 } });
    assert.deepEqual(envObj.spec.limits, { requestsPerMinute: 10000, tokensPerMinute: 0 });
    await ok(["apply", "-f", "-"], apiKey("ci-bot", "{environment: prod, expiresAt: '2030-01-01T00:00:00Z', models: [llama-3-8b]}"));
    const key = JSON.parse(await ok(["get", "apikey", "ci-bot", "-n", ns, "-o", "json"])) as { spec: Record<string, unknown> };
    assert.equal(key.spec.role, "developer");
    assert.equal(key.spec.revoked, false);
    assert.deepEqual(key.spec.limits, { concurrency: 10 });
  });

  const invalid: Array<[string, () => string, RegExp]> = [
    ["an unknown plan", () => tenant(`bad-${suffix}`, "{plan: platinum}"), /spec\.plan: Unsupported value: "platinum": supported values: "free", "pro", "enterprise"/],
    ["a tenant name too long for its namespace", () => tenant(`a${"b".repeat(60)}`, "{}"), /becomes namespace tenant-<name>/],
    ["a negative limit", () => tenant(`bad-${suffix}`, "{limits: {requestsPerMinute: -1}}"), /spec\.limits\.requestsPerMinute: Invalid value: -1: .*greater than or equal to 0/],
    ["a namespace on a User member", () => tenant(`bad-${suffix}`, "{members: [{kind: User, name: bob, namespace: x, role: admin}]}"), /namespace is only allowed for kind ServiceAccount/],
    ["an unknown member role", () => tenant(`bad-${suffix}`, "{members: [{kind: User, name: bob, role: owner}]}"), /role: Unsupported value: "owner"/],
    ["a plain-HTTP webhook", () => tenant(`bad-${suffix}`, "{webhooks: [{url: 'http://hooks.example.com', secretRef: {name: s, key: k}, events: [key.revoked]}]}"), /webhooks\[0\]\.url: Invalid value/],
    ["an unknown field", () => tenant(`bad-${suffix}`, "{colour: blue}"), /unknown field "spec\.colour"/],
    ["an unknown tier", () => environment("bad", "{tier: qa}"), /spec\.tier: Unsupported value: "qa"/],
    ["a certificate longer than 90 days", () => environment("bad", "{tier: staging, tls: {duration: 2400h}}"), /tls\.duration must be between 1h and 2160h \(90 days\)/],
    ["renewBefore not shorter than duration", () => environment("bad", "{tier: staging, tls: {duration: 720h, renewBefore: 720h}}"), /renewBefore must be at least 5m and shorter than tls\.duration/],
    ["an RSA key below 4096 bits", () => environment("bad", "{tier: staging, tls: {privateKey: {algorithm: RSA, size: 256}}}"), /4096 for RSA/],
    ["a route with both backends", () => environment("bad", "{tier: staging, routes: [{model: m, backend: {url: 'http://a.example', service: {name: s, namespace: ns1, port: 80}}}]}"), /backend needs exactly one of service or url/],
    ["a route with no backend", () => environment("bad", "{tier: staging, routes: [{model: m, backend: {}}]}"), /backend needs exactly one of service or url/],
    ["a service outside its node pool's namespace", () => environment("bad", "{tier: staging, routes: [{model: m, nodePool: gpu-a, backend: {service: {name: s, namespace: other, port: 80}}}]}"), /backend\.service\.namespace must equal nodePool/],
    ["two routes for one model", () => environment("bad", "{tier: staging, routes: [{model: m, backend: {url: 'http://a.example'}}, {model: m, backend: {url: 'http://b.example'}}]}"), /Duplicate value/],
    ["a bad hostname", () => environment("bad", "{tier: staging, hostnames: ['not a host']}"), /hostnames\[0\]/],
    ["a key with no environment", () => apiKey("bad", "{role: admin}"), /spec\.environment: Required value/],
    ["a malformed expiry", () => apiKey("bad", "{environment: prod, expiresAt: tomorrow}"), /spec\.expiresAt: Invalid value: "tomorrow"/],
    ["key concurrency 0", () => apiKey("bad", "{environment: prod, limits: {concurrency: 0}}"), /concurrency: Invalid value: 0/],
    ["an unknown key role", () => apiKey("bad", "{environment: prod, role: root}"), /spec\.role: Unsupported value: "root"/],
  ];
  for (const [name, manifest, message] of invalid) {
    it(`refuses ${name} with a clear message`, async () => {
      assert.match(await refused(manifest()), message);
    });
  }

  it("refuses changing an Environment's tier", async () => {
    const err = await refused(environment("prod", "{tier: staging, hostnames: [acme-prod.api.example.com]}"));
    assert.match(err, /tier is immutable/);
  });

  it("refuses moving an ApiKey to another environment", async () => {
    assert.match(await refused(apiKey("ci-bot", "{environment: staging, expiresAt: '2030-01-01T00:00:00Z', models: [llama-3-8b]}")), /environment is immutable/);
  });

  it("refuses un-revoking a revoked key", async () => {
    await ok(["apply", "-f", "-"], apiKey("revoked-once", "{environment: prod, revoked: true}"));
    assert.match(await refused(apiKey("revoked-once", "{environment: prod, revoked: false}")), /a revoked key cannot be un-revoked/);
  });

  it("lists the kinds under the crosslogic category and short names, with printer columns", async () => {
    const all = await ok(["get", "crosslogic", "-n", ns]);
    assert.match(all, /apikey\.crosslogic\.ai\/ci-bot/);
    assert.match(all, /environment\.crosslogic\.ai\/prod/);
    const keys = await ok(["get", "ak", "-n", ns]);
    assert.match(keys.split("\n")[0]!, /NAME\s+ENVIRONMENT\s+ROLE\s+PREFIX\s+PHASE\s+READY\s+AGE/);
    assert.match(await ok(["get", "tn", `t-${suffix}`]), /PLAN\s+PHASE\s+NAMESPACE\s+READY\s+AGE/);
  });

  it("teaches the API through kubectl explain", async () => {
    const explainKey = await ok(["explain", "apikey.spec"]);
    assert.match(explainKey, /role\s+<string>/);
    assert.match(explainKey, /read-only keys can list models\s+but never call inference endpoints/);
    assert.match(explainKey, /Default: developer/);
    assert.match(explainKey, /enum: admin, developer, read-only/);
    const tls = await ok(["explain", "environment.spec.tls.duration"]);
    assert.match(tls, /at most 90 days/);
    const tenantDoc = await ok(["explain", "tenant"]);
    assert.match(tenantDoc, /namespace\s+tenant-<name>/);
  });
});

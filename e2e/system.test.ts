/**
 * The whole product on the local control plane: the operator and the gateway as real processes
 * against the local API server, Redis and PostgreSQL; tenants, environments and keys applied with
 * kubectl; traffic through the official `openai` SDK. One route goes through a Service whose
 * EndpointSlice points at a model server in a network namespace this test creates; the others are
 * URL routes to loopback model servers.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import OpenAI from "openai";
import pg from "pg";
import { apiKeyPrefix } from "@crosslogic/crds";
import { createTestHost, type TestHost } from "@crosslogic/testenv/netns";
import { waitUntilReady, type ManagedProcess } from "@crosslogic/testenv/process";
import { repoRoot, startProduct, type Product } from "@crosslogic/testenv/product";
import { testEnv } from "@crosslogic/testenv/test-env";
import { b64, kube, loopbackAgent, sdkFor, startLoopbackModelServer, statusOf, waitFor } from "./support.ts";

const env = testEnv();
const k = kube(env.KUBECONFIG, env.KUBECTL);
const id = randomBytes(3).toString("hex");
const system = `e2e-system-${id}`;
const pool = `e2e-pool-${id}`;
const [tenantA, tenantB] = [`e2e-a-${id}`, `e2e-b-${id}`];
const [nsA, nsB] = [`tenant-${tenantA}`, `tenant-${tenantB}`];
const [hostA, hostB] = [`a-${id}.e2e.test`, `b-${id}.e2e.test`];
const MODEL = "llama-e2e"; // A: Service route (network namespace); B: URL route (loopback)
const OTHER = "bge-small"; // A only: URL route to the environment's shared model server (MODEL_URL)
const logDir = fs.mkdtempSync(path.join(os.tmpdir(), `e2e-${id}-`));
const agent = loopbackAgent();
const chat = (model = MODEL) => ({ model, messages: [{ role: "user" as const, content: "Say hello" }], max_tokens: 16 });

const yaml = (objs: object[]) => objs.map((o) => JSON.stringify(o)).join("\n---\n");
const cr = (kind: string, name: string, namespace: string | undefined, spec: object) =>
  ({ apiVersion: "crosslogic.ai/v1alpha1", kind, metadata: { name, ...(namespace ? { namespace } : {}) }, spec });

async function keyFrom(ns: string, apiKey: string): Promise<string> {
  return waitFor(`the key of ApiKey ${ns}/${apiKey}`, async () => {
    const ak = await k.json<{ status?: { phase?: string; secretName?: string } }>(["get", "apikey", apiKey, "-n", ns]);
    if (ak.status?.phase !== "Active" || !ak.status.secretName) return undefined;
    return b64((await k.json<{ data: { key: string } }>(["get", "secret", ak.status.secretName, "-n", ns])).data.key);
  }, 60_000);
}

describe("full system: operator + gateway + kubectl + openai SDK", { timeout: 180_000 }, () => {
  let product: Product;
  let host: TestHost | undefined;
  let poolServer: ManagedProcess | undefined;
  let serverB: { url: string; process: ManagedProcess } | undefined;
  let db: pg.Client;
  let keyA = "";
  let keyB = "";
  let keyLimited = "";
  let a: OpenAI;

  before(async () => {
    // A model server on a non-loopback address, behind a Service and a hand-made EndpointSlice.
    host = createTestHost(10 + (process.pid % 20));
    poolServer = host.start("pool model server", process.execPath, [path.join(repoRoot, "model-server/src/main.ts"), "--host", host.ip, "--port", "8000", "--name", `pool-${id}`, "--models", MODEL], path.join(logDir, "model-pool.log"));
    await waitUntilReady(poolServer, async () => (await fetch(`http://${host!.ip}:8000/health`, { signal: AbortSignal.timeout(500) })).ok, 15_000);
    serverB = await startLoopbackModelServer(`b-${id}`, [MODEL], logDir);

    product = await startProduct({
      kubeconfig: env.KUBECONFIG, kubectl: env.KUBECTL, databaseUrl: env.DATABASE_URL, redisUrl: env.REDIS_URL,
      adminToken: randomBytes(32).toString("base64url"), systemNamespace: system, logDir, redisKeyPrefix: `e2e-${id}:`,
      // Usage reaches PostgreSQL quickly enough for the test to see it.
      gatewayEnv: { USAGE_FLUSH_INTERVAL_MS: "200" },
    });
    db = new pg.Client({ connectionString: env.DATABASE_URL });
    await db.connect();

    await k.ok(["create", "namespace", pool]);
    await k.ok(["apply", "-f", "-"], yaml([
      { apiVersion: "v1", kind: "Service", metadata: { name: "vllm", namespace: pool }, spec: { selector: { app: "vllm" }, ports: [{ name: "http", port: 8000, targetPort: 8000 }] } },
      {
        apiVersion: "discovery.k8s.io/v1", kind: "EndpointSlice", metadata: { name: "vllm-1", namespace: pool, labels: { "kubernetes.io/service-name": "vllm" } },
        addressType: "IPv4", ports: [{ name: "http", port: 8000, protocol: "TCP" }], endpoints: [{ addresses: [host.ip], conditions: { ready: true } }],
      },
    ]));
    await k.ok(["apply", "-f", "-"], yaml([
      cr("Tenant", tenantA, undefined, { displayName: "E2E A", plan: "pro", members: [{ kind: "User", name: `alice-${id}`, role: "admin" }] }),
      cr("Tenant", tenantB, undefined, { displayName: "E2E B", plan: "pro", members: [{ kind: "User", name: `bob-${id}`, role: "admin" }] }),
    ]));
    await waitFor("the tenant namespaces", async () => (await k.run(["get", "namespace", nsA, nsB])).code === 0);
    await k.ok(["apply", "-f", "-"], yaml([
      cr("Environment", "prod", nsA, {
        tier: "production", hostnames: [hostA],
        routes: [{ model: MODEL, nodePool: pool, backend: { service: { name: "vllm", namespace: pool, port: 8000 } } }, { model: OTHER, backend: { url: env.MODEL_URL } }],
      }),
      cr("ApiKey", "app", nsA, { environment: "prod" }),
      cr("ApiKey", "limited", nsA, { environment: "prod", limits: { requestsPerMinute: 2 } }),
      // Same environment and model names in tenant B: only the namespace tells them apart.
      cr("Environment", "prod", nsB, { tier: "production", hostnames: [hostB], routes: [{ model: MODEL, backend: { url: serverB.url } }] }),
      cr("ApiKey", "app", nsB, { environment: "prod" }),
    ]));
    [keyA, keyB, keyLimited] = await Promise.all([keyFrom(nsA, "app"), keyFrom(nsB, "app"), keyFrom(nsA, "limited")]);
    a = sdkFor(product.gatewayUrl, hostA, keyA, agent);
    // The gateway has the keys once the operator's config Secrets reached it.
    await waitFor("the gateway to accept tenant A's key", async () => (await statusOf(a.models.list())) === 200, 30_000, 250);
  });

  after(async () => {
    await db?.end().catch(() => {});
    // Deleted while the operator still runs, so it can release its finalizers.
    await k.run(["delete", "apikeys,environments", "--all", "-n", nsA, "--wait=false"]);
    await k.run(["delete", "apikeys,environments", "--all", "-n", nsB, "--wait=false"]);
    await k.run(["delete", "tenant", tenantA, tenantB, "--timeout=20s"]);
    await product?.stop();
    for (const n of [system, pool]) await k.run(["delete", "namespace", n, "--wait=false"]);
    await poolServer?.stop();
    host?.destroy();
    await serverB?.process.stop();
    await agent.close();
    fs.rmSync(logDir, { recursive: true, force: true });
  });

  it("keys are minted into Secrets in the tenant namespace, in the live format", () => {
    for (const key of [keyA, keyB, keyLimited]) assert.match(key, /^clsk_live_[0-9a-f]{64}$/);
    assert.equal(new Set([keyA, keyB, keyLimited]).size, 3);
  });

  it("chat completion, plain and streamed, through the Service route to the network-namespace model server", async () => {
    const res = await a.chat.completions.create(chat());
    assert.equal(res.object, "chat.completion");
    assert.equal(res.system_fingerprint, `pool-${id}`, "served by the model server behind the Service");
    assert.ok(res.choices[0]?.message.content);
    assert.ok((res.usage?.completion_tokens ?? 0) > 0);

    const stream = await a.chat.completions.create({ ...chat(), stream: true });
    let text = "";
    let fingerprint = "";
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      fingerprint = chunk.system_fingerprint ?? fingerprint;
    }
    assert.ok(text.length > 0, "streamed content arrived");
    assert.equal(fingerprint, `pool-${id}`);
  });

  it("a URL route in the same environment answers too", async () => {
    const res = await a.chat.completions.create(chat(OTHER));
    assert.ok(res.choices[0]?.message.content);
    assert.notEqual(res.system_fingerprint, `pool-${id}`);
  });

  it("an Environment whose keys take more than one config Secret: the operator spreads them, the gateway serves keys from each", async () => {
    // 70 keys, each allowed MODEL and 127 long model names (~17 KB in the config): ~1.2 MB, over a Secret's 1 MiB.
    const hostWide = `wide-${id}.e2e.test`;
    const models = [MODEL, ...Array.from({ length: 127 }, (_, i) => `${"m".repeat(120)}-${i}`)];
    await k.ok(["apply", "-f", "-"], yaml([
      cr("Environment", "wide", nsB, { tier: "production", hostnames: [hostWide], routes: [{ model: MODEL, backend: { url: serverB!.url } }] }),
      ...Array.from({ length: 70 }, (_, i) => cr("ApiKey", `wide-${i}`, nsB, { environment: "wide", models })),
    ]));
    // (Not Ready as a whole here: its hostname's certificate has no issuer in this cluster.)
    const status = await waitFor("the Environment's gateway config ready over two Secrets", async () => {
      const e = await k.json<{ status?: { keys?: number; gatewayConfigSecrets?: number; gatewayConfigSecretName?: string; conditions?: Array<{ type: string; status: string }> } }>(["get", "environment", "wide", "-n", nsB]);
      return e.status?.keys === 70 && e.status.gatewayConfigSecrets === 2 && e.status.conditions?.some((c) => c.type === "GatewayConfigReady" && c.status === "True") ? e.status : undefined;
    }, 90_000, 500);
    const namesIn = async (secret: string) => (JSON.parse(b64((await k.json<{ data: Record<string, string> }>(["get", "secret", secret, "-n", system])).data["config.json"]!)) as { keys: Array<{ name: string }> }).keys.map((x) => x.name);
    const [first, second] = [await namesIn(status.gatewayConfigSecretName!), await namesIn(`${status.gatewayConfigSecretName!}.1`)];
    assert.equal(first.length + second.length, 70);
    for (const name of [first[0]!, second[0]!, second.at(-1)!]) {
      const sdk = sdkFor(product.gatewayUrl, hostWide, await keyFrom(nsB, name), agent);
      const reply = await waitFor(`${name} answered by the gateway`, async () => sdk.chat.completions.create(chat()).catch(() => undefined), 15_000, 250);
      assert.ok(reply.choices[0]?.message.content, `${name}: a completion`);
    }
  });

  it("usage rows (plain and streamed) appear in PostgreSQL, with the key prefix and never the prompt", async () => {
    const prefix = apiKeyPrefix(keyA);
    const rows = await waitFor("usage rows", async () => {
      const r = await db.query<{ model: string; streamed: boolean; status: number; completionTokens: number; tenant: string; environment: string }>(
        `select * from "UsageRecord" where "keyPrefix" = $1 and model = $2`, [prefix, MODEL]);
      return r.rows.some((x) => x.streamed) && r.rows.some((x) => !x.streamed) ? r.rows : undefined;
    }, 15_000, 250);
    for (const r of rows) {
      assert.equal(r.tenant, tenantA);
      assert.equal(r.environment, `${nsA}/prod`);
      assert.equal(r.status, 200);
      assert.ok(r.completionTokens > 0, "streamed tokens are metered too");
      assert.ok(!JSON.stringify(r).includes("Say hello"));
    }
  });

  it("the key's rate limit answers 429 with Retry-After and X-RateLimit-* headers", async () => {
    const limited = sdkFor(product.gatewayUrl, hostA, keyLimited, agent);
    for (let i = 0; i < 2; i++) {
      const { response } = await limited.chat.completions.create(chat()).withResponse();
      assert.equal(response.headers.get("x-ratelimit-limit"), "2");
      assert.equal(response.headers.get("x-ratelimit-remaining"), String(1 - i));
    }
    const refused = await limited.chat.completions.create(chat()).then(() => undefined, (e: unknown) => e);
    assert.ok(refused instanceof OpenAI.RateLimitError, `expected a 429, got ${String(refused)}`);
    const h = refused.headers!;
    assert.ok(Number(h.get("retry-after")) >= 1 && Number(h.get("retry-after")) <= 60, `Retry-After ${h.get("retry-after")}`);
    assert.equal(h.get("x-ratelimit-limit"), "2");
    assert.equal(h.get("x-ratelimit-remaining"), "0");
    assert.ok(Number(h.get("x-ratelimit-reset")) * 1000 > Date.now() - 1000, "X-RateLimit-Reset is a future epoch second");
  });

  it("a second tenant can never use the first one's key, environment or backend", async () => {
    const b = sdkFor(product.gatewayUrl, hostB, keyB, agent);
    // B on its own environment: its own backend, even for the same model name.
    const own = await b.chat.completions.create(chat());
    assert.equal(own.system_fingerprint, `b-${id}`);
    // B's key on A's environment (hostname), and A's key on B's: refused like an unknown key.
    assert.equal(await statusOf(sdkFor(product.gatewayUrl, hostA, keyB, agent).chat.completions.create(chat())), 401);
    assert.equal(await statusOf(sdkFor(product.gatewayUrl, hostB, keyA, agent).chat.completions.create(chat())), 401);
    // A's models do not exist in B's environment: the gateway says so without forwarding anything.
    const missing = await b.chat.completions.create(chat(OTHER)).then(() => undefined, (e: unknown) => e);
    assert.ok(missing instanceof OpenAI.NotFoundError);
    assert.equal(missing.code, "model_not_found");
    assert.match(missing.message, /does not exist in this environment/);
    // B's admin cannot read A's key Secrets (or anything else in A's namespace).
    const can = await k.run(["auth", "can-i", "get", "secrets", "-n", nsA, `--as=bob-${id}`]);
    assert.equal(can.stdout.trim(), "no");
    assert.equal((await k.run(["auth", "can-i", "get", "secrets", "-n", nsB, `--as=bob-${id}`])).stdout.trim(), "yes");
    // B's traffic is metered to B, never to A.
    const fromB = await waitFor("B's usage rows", async () => {
      const r = await db.query<{ tenant: string; environment: string }>(`select tenant, environment from "UsageRecord" where "keyPrefix" = $1`, [apiKeyPrefix(keyB)]);
      return r.rows.length ? r.rows : undefined;
    }, 15_000, 250);
    assert.deepEqual([...new Set(fromB.map((r) => `${r.tenant} ${r.environment}`))], [`${tenantB} ${nsB}/prod`]);
  });

  it("a revoked key is refused within a second of kubectl patch; a suspended tenant is refused until resumed", async (t) => {
    const second = sdkFor(product.gatewayUrl, hostB, keyB, agent);
    assert.equal(await statusOf(second.chat.completions.create(chat())), 200);
    await k.ok(["patch", "apikey", "app", "-n", nsB, "--type=merge", "-p", JSON.stringify({ spec: { revoked: true } })]);
    const patched = Date.now();
    // One request at a time until the first refusal (each refusal counts against this client address).
    await waitFor("the revoked key to be refused", async () => (await statusOf(second.models.list())) === 401, 5000, 50);
    const revokedAfterMs = Date.now() - patched;
    t.diagnostic(`revocation: refused ${revokedAfterMs} ms after kubectl patch returned`);
    assert.ok(revokedAfterMs < 1000, `revocation took ${revokedAfterMs} ms`);
    // The broadcast goes out before the status is written: the gateway may refuse first.
    await waitFor("the ApiKey's phase Revoked", async () => (await k.json<{ status: { phase: string } }>(["get", "apikey", "app", "-n", nsB])).status.phase === "Revoked", 10_000, 100);

    await k.ok(["patch", "tenant", tenantA, "--type=merge", "-p", JSON.stringify({ spec: { suspended: true } })]);
    await waitFor("the suspended tenant to be refused", async () => (await statusOf(a.models.list())) === 403, 10_000, 100);
    assert.equal(await statusOf(a.chat.completions.create(chat())), 403, "inference refused while suspended");
    await waitFor("Tenant phase Suspended", async () => (await k.json<{ status?: { phase?: string } }>(["get", "tenant", tenantA])).status?.phase === "Suspended");

    await k.ok(["patch", "tenant", tenantA, "--type=merge", "-p", JSON.stringify({ spec: { suspended: false } })]);
    await waitFor("Tenant phase Active", async () => (await k.json<{ status?: { phase?: string } }>(["get", "tenant", tenantA])).status?.phase === "Active");
    await waitFor("the resumed tenant to be served", async () => (await statusOf(a.models.list())) === 200, 10_000, 300);
    const res = await a.chat.completions.create(chat());
    assert.equal(res.system_fingerprint, `pool-${id}`);
  });
});

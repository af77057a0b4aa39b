import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { backoffDelay } from "@crosslogic/kube/backoff";
import { contains, needsApply, withAppliedHash } from "../../src/kube/apply.ts";
import { mergeConditions } from "../../src/kube/conditions.ts";
import { WorkQueue } from "../../src/kube/workqueue.ts";
import { PublishPacer } from "../../src/controllers/runtime.ts";
import { ConfigError, loadConfig } from "../../src/config.ts";
import { generateApiKey, withDefaults, API_VERSION, type ApiKey, type ApiKeySpec } from "@crosslogic/crds";
import { apiKeyStatus, decideKeyAction, PUBLICATION_GRACE_MS, publicationPendingMs } from "../../src/controllers/api-key/decide.ts";
import { keySecretContent, readKeyMaterial } from "../../src/controllers/api-key/key-material.ts";
import { nodeAuditEvents, poolCapacity, type NodeLike } from "../../src/controllers/node-pools.ts";

describe("work queue", () => {
  it("deduplicates waiting keys and never hands one key to two workers", async () => {
    const q = new WorkQueue();
    q.add("a"); q.add("a"); q.add("b");
    assert.equal(q.length, 2);
    const first = await q.get();
    assert.equal(first, "a");
    q.add("a");                      // re-added while processing: queued again only after done()
    assert.equal(await q.get(), "b");
    let got: string | undefined;
    void q.get().then((k) => { got = k; });
    await new Promise((r) => setImmediate(r));
    assert.equal(got, undefined, "a is still being processed");
    q.done("a");
    await new Promise((r) => setImmediate(r));
    assert.equal(got, "a");
    q.shutDown();
    assert.equal(await q.get(), undefined);
  });
  it("takes a change before every resync pass queued ahead of it", async () => {
    const q = new WorkQueue();
    for (let i = 0; i < 10_000; i++) q.add(`ns/k${i}`, true);   // a resync of 10,000 keys
    q.add("ns/new");                                           // a key created meanwhile
    assert.equal(await q.get(), "ns/new");
    assert.equal(await q.get(), "ns/k0", "then the resync, in order");
    q.add("ns/k5");                                            // a change to a key the resync holds: moved up
    assert.equal(await q.get(), "ns/k5");
    assert.equal(await q.get(), "ns/k1");
    q.add("ns/k1", true);                                      // re-added low while processing: once more after done()
    q.done("ns/k1");
    const order: string[] = [];
    for (let k = await q.get(); k !== undefined && order.length < 10_000; k = q.length ? await q.get() : undefined) order.push(k);
    assert.equal(order.length, 9_998, "each waiting key once (k5 was taken already, k1 again)");
    assert.equal(new Set(order).size, order.length, "no key twice");
    assert.equal(order.at(-1), "ns/k1");
    assert.equal(q.length, 0);
    q.shutDown();
  });
  it("demotes what was queued before the controllers started", async () => {
    const q = new WorkQueue();
    q.add("a"); q.add("b");
    q.demoteAll();
    q.add("c", true);
    q.add("d");
    assert.deepEqual([await q.get(), await q.get(), await q.get(), await q.get()], ["d", "a", "b", "c"]);
    assert.equal(q.length, 0);
    q.shutDown();
  });
  it("keeps only the earliest delayed add", async () => {
    const q = new WorkQueue();
    q.addAfter("k", 10_000);
    q.addAfter("k", 5);
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(q.length, 1);
    q.shutDown();
  });
});

describe("publish pacer", () => {
  it("lets the first write after a quiet spell go at once and holds the rest of a burst to the window's end", () => {
    const p = new PublishPacer(500);
    assert.equal(p.delay("ns/prod", 1_000), 0, "never written: now");
    p.wrote("ns/prod", 1_000);
    assert.equal(p.delay("ns/prod", 1_100), 400, "100 ms after a write: wait for the window");
    assert.equal(p.delay("ns/dev", 1_100), 0, "other environments are not held back");
    assert.equal(p.delay("ns/prod", 1_500), 0, "window over: now");
  });
  it("stays bounded with many environments", () => {
    const p = new PublishPacer(500);
    for (let i = 0; i < 5_000; i++) p.wrote(`ns/e${i}`, i * 1_000);
    assert.equal(p.delay("ns/e4999", 4_999_100), 400, "the latest write still counts");
    assert.equal(p.delay("ns/e0", 4_999_100), 0);
    assert.ok(p.size <= 1025, `${p.size} entries`);
  });
});

describe("backoff", () => {
  for (const [attempt, lo, hi] of [[1, 50, 100], [2, 100, 200], [5, 800, 1600], [30, 5000, 10000]] as const) {
    it(`attempt ${attempt} waits between ${lo} and ${hi} ms`, () => {
      for (const r of [0, 0.5, 0.999]) {
        const d = backoffDelay(attempt, { baseMs: 100, maxMs: 10_000 }, () => r);
        assert.ok(d >= lo && d <= hi, `${d}`);
      }
    });
  }
});

describe("apply only when something would change", () => {
  const desired = withAppliedHash<{ apiVersion: string; kind: string; metadata: { name: string; labels: Record<string, string>; annotations?: Record<string, string> }; data: Record<string, string> }>({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "x", labels: { a: "1" } }, data: { k: "v" } });
  const cases: Array<[string, unknown, boolean]> = [
    ["missing object", undefined, true],
    ["identical plus server fields", { ...desired, metadata: { ...desired.metadata, uid: "u", resourceVersion: "9" } }, false],
    ["owned field edited", { ...desired, data: { k: "edited" } }, true],
    ["hash annotation from an older desired state", { ...desired, metadata: { ...desired.metadata, annotations: { "crosslogic.ai/applied-hash": "old" } } }, true],
  ];
  for (const [name, observed, want] of cases) it(name, () => assert.equal(needsApply(observed as never, desired), want));
  it("arrays compare element-wise", () => {
    assert.equal(contains([1, 2], [1, 2]), true);
    assert.equal(contains([1, 2, 3], [1, 2]), false);
  });
});

describe("conditions", () => {
  it("keep their transition time while the status holds, and move it when it flips", () => {
    const t0 = new Date("2026-01-01T00:00:00Z");
    const first = mergeConditions(undefined, [{ type: "Ready", status: "True", reason: "R", message: "m" }], 1, t0);
    const same = mergeConditions(first, [{ type: "Ready", status: "True", reason: "R", message: "m" }], 1, new Date("2026-01-02T00:00:00Z"));
    assert.deepEqual(same, first);
    const flipped = mergeConditions(first, [{ type: "Ready", status: "False", reason: "R", message: "m" }], 2, new Date("2026-01-02T00:00:00Z"));
    assert.equal(flipped[0]!.lastTransitionTime, "2026-01-02T00:00:00Z");
    assert.equal(flipped[0]!.observedGeneration, 2);
  });
});

describe("config", () => {
  it("defaults", () => {
    const c = loadConfig({ KUBECONFIG: "/k" });
    assert.equal(c.systemNamespace, "crosslogic-system");
    assert.equal(c.httpPort, 8081);
    assert.equal(c.leaderElection, true);
    assert.equal(c.keyRotationGraceSeconds, 86_400);
    assert.ok(Object.isFrozen(c));
  });
  it("lists every problem at once", () => {
    assert.throws(() => loadConfig({ HTTP_PORT: "abc", LEADER_ELECTION: "maybe", REDIS_URL: "http://x" }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.problems.length, 4, err.message);
      return true;
    });
  });
});

const key = (spec: Partial<ApiKeySpec> = {}, status?: ApiKey["status"]): ApiKey => ({ apiVersion: API_VERSION, kind: "ApiKey", metadata: { name: "k", namespace: "tenant-a", generation: 1 }, spec: withDefaults<ApiKeySpec>("ApiKey", { environment: "prod", ...spec }), ...(status ? { status } : {}) });

describe("ApiKey decisions", () => {
  const now = new Date("2026-06-01T00:00:00Z");
  const k1 = generateApiKey("test");
  const good = readKeyMaterial({ metadata: { annotations: keySecretContent(k1, { rotationRequest: "r1", previous: [] }).annotations }, data: keySecretContent(k1, { previous: [] }).data });
  const tampered = readKeyMaterial({ metadata: { annotations: keySecretContent(k1, { previous: [] }).annotations }, data: { key: Buffer.from(generateApiKey("test")).toString("base64") } });
  const cases: Array<[string, ApiKey, boolean, typeof good, string]> = [
    ["no Secret → create", key(), false, readKeyMaterial(undefined), "create"],
    ["Secret with our key → nothing (restarts and resyncs never regenerate)", key({ rotationRequest: "r1" }), true, good, "none"],
    ["key replaced by hand → regenerate", key(), true, tampered, "regenerate"],
    ["new rotation request → rotate", key({ rotationRequest: "r2" }), true, good, "rotate"],
    ["revoked → never touch the Secret", key({ revoked: true }), false, readKeyMaterial(undefined), "none"],
  ];
  for (const [name, k, exists, m, want] of cases) it(name, () => assert.equal(decideKeyAction(k, exists, m, now).kind, want));
  it("a freshly issued key's status waits for publication, up to the grace period", () => {
    const t = now.getTime();
    assert.equal(publicationPendingMs(key(), good, false, t - 1000, now), PUBLICATION_GRACE_MS - 1000, "issued 1 s ago, not yet published: hold the write");
    assert.equal(publicationPendingMs(key(), good, true, t - 1000, now), 0, "published: write Ready now");
    assert.equal(publicationPendingMs(key(), good, false, t - PUBLICATION_GRACE_MS, now), 0, "still unpublished after the grace period: say it is waiting");
    assert.equal(publicationPendingMs(key({ revoked: true }), good, false, t, now), 0, "revocations are never held");
    assert.equal(publicationPendingMs(key(), readKeyMaterial(undefined), false, t, now), 0, "no key issued: nothing to wait for");
    assert.equal(publicationPendingMs(key({ expiresAt: "2026-01-01T00:00:00Z" }), good, false, t, now), 0, "expired: say so now");
  });
  it("status: Active and Ready once published; Expired after expiresAt; Revoked", () => {
    const s = apiKeyStatus(key(), { environmentFound: true, secretName: "apikey-k", material: good, published: true }, now);
    assert.equal(s.phase, "Active");
    assert.equal(s.conditions?.[0]?.status, "True");
    assert.equal(apiKeyStatus(key({ expiresAt: "2026-01-01T00:00:00Z" }), { environmentFound: true, secretName: "s", material: good, published: true }, now).phase, "Expired");
    const r = apiKeyStatus(key({ revoked: true }), { environmentFound: true, secretName: "s", material: good, published: false }, now);
    assert.equal(r.phase, "Revoked");
    assert.equal(r.conditions?.[0]?.reason, "KeyRevoked");
  });
});

describe("node pools", () => {
  const node = (name: string, pool: string | undefined, ready: boolean, gpus: string): NodeLike => ({
    metadata: { name, labels: pool ? { "crosslogic.ai/node-pool": pool } : {} as Record<string, string> },
    status: { allocatable: { "nvidia.com/gpu": gpus }, conditions: [{ type: "Ready", status: ready ? "True" : "False" }] },
  });
  it("capacity counts ready nodes' allocatable GPUs per pool", () => {
    assert.deepEqual(poolCapacity(["a", "b", "a"], [node("1", "a", true, "8"), node("2", "a", false, "8"), node("3", "c", true, "4")]), [
      { name: "a", nodes: 2, readyNodes: 1, gpus: 8 }, { name: "b", nodes: 0, readyNodes: 0, gpus: 0 },
    ]);
  });
  it("audit: launch, termination, and pool changes", () => {
    assert.deepEqual(nodeAuditEvents({ type: "add", obj: node("1", "a", true, "8") }).map((e) => e.action), ["node_launched"]);
    assert.deepEqual(nodeAuditEvents({ type: "delete", obj: node("1", "a", true, "8") }).map((e) => e.action), ["node_terminated"]);
    assert.deepEqual(nodeAuditEvents({ type: "update", obj: node("1", "a", true, "8"), old: node("1", "a", false, "8") }), []);
    assert.deepEqual(nodeAuditEvents({ type: "update", obj: node("1", "b", true, "8"), old: node("1", "a", true, "8") }).map((e) => e.action), ["node_terminated", "node_launched"]);
  });
});

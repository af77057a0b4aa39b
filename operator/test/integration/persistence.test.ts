/**
 * The operator with DATABASE_URL against real PostgreSQL: every audit line it logs is also in the
 * AuditEvent table (including those logged just before a graceful shutdown), and key and tenant
 * lifecycle changes put exactly one outbox row per subscribed webhook, which a restarted operator
 * and its resyncs do not duplicate.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { createAuditStore, createDatabase, migrate, type Database } from "@crosslogic/data";
import { createTestDatabase } from "@crosslogic/testenv";
import { testEnv } from "@crosslogic/testenv/test-env";
import { installCrds, kube, startOperatorProcess, waitFor, type OperatorProcess } from "../support/cluster.ts";

const env = testEnv();
const k = kube(env.KUBECONFIG, env.KUBECTL);
const id = randomBytes(3).toString("hex");
const tenant = `db-${id}`;
const ns = `tenant-${tenant}`;
const system = `cl-db-${id}`;
const allHook = `https://hooks-${id}.example.com/all`;
const revokedHook = `https://hooks-${id}.example.com/revoked`;

type Row = { eventId: string; eventType: string; url: string; body: string; tenant: string };

describe("operator persistence: audit events and webhook notifications", { timeout: 240_000 }, () => {
  let tdb: { url: string; drop(): Promise<void> };
  let db: Database;
  let op: OperatorProcess;
  const operatorEnv = () => ({
    KUBECONFIG: env.KUBECONFIG, SYSTEM_NAMESPACE: system, POD_NAME: `op-${id}`, RESYNC_SECONDS: "2", LEASE_DURATION_SECONDS: "4",
    // Batches wait a minute here: only the shutdown flush can bring the last events to the database.
    DATABASE_URL: tdb.url, KEY_EXPIRY_NOTICE_SECONDS: "3600", AUDIT_FLUSH_INTERVAL_MS: "60000",
  });
  const rows = async () => (await db.prisma.webhookDelivery.findMany({ where: { tenant }, orderBy: { createdAt: "asc" } })) as Row[];
  const rowsOf = async (type: string) => (await rows()).filter((r) => r.eventType === type);
  const statusOf = async (kind: string, name: string, path: string) => (await k.ok(["get", kind, name, ...(kind === "tenant" ? [] : ["-n", ns]), "-o", `jsonpath=${path}`])).trim();

  before(async () => {
    tdb = await createTestDatabase(env.DATABASE_URL, "operator");
    await migrate(tdb.url);
    db = createDatabase(tdb.url);
    await installCrds(k);
    await k.ok(["create", "namespace", system]);
    op = await startOperatorProcess(operatorEnv());
    const soon = new Date(Date.now() + 30 * 60_000).toISOString().replace(/\.\d{3}Z$/, "Z");
    await k.ok(["apply", "-f", "-"], [
      `apiVersion: crosslogic.ai/v1alpha1\nkind: Tenant\nmetadata: {name: ${tenant}}\nspec:\n  webhooks:\n  - {url: "${allHook}", secretRef: {name: hook, key: secret}, events: [key.created, key.rotated, key.revoked, key.expiring, tenant.suspended, tenant.resumed]}\n  - {url: "${revokedHook}", secretRef: {name: hook, key: secret}, events: [key.revoked]}`,
    ].join("\n"));
    await waitFor("tenant namespace", async () => (await k.run(["get", "namespace", ns])).code === 0);
    await k.ok(["apply", "-f", "-"], [
      `apiVersion: crosslogic.ai/v1alpha1\nkind: Environment\nmetadata: {name: prod, namespace: ${ns}}\nspec: {tier: production, routes: [{model: m, backend: {url: "http://127.0.0.1:9"}}]}`,
      `apiVersion: crosslogic.ai/v1alpha1\nkind: ApiKey\nmetadata: {name: ci, namespace: ${ns}}\nspec: {environment: prod}`,
      `apiVersion: crosslogic.ai/v1alpha1\nkind: ApiKey\nmetadata: {name: temp, namespace: ${ns}}\nspec: {environment: prod, expiresAt: "${soon}"}`,
    ].join("\n---\n"));
  });

  after(async () => {
    await op?.stop();
    await k.run(["delete", "apikeys,environments", "--all", "-n", ns, "--wait=false"]);
    await k.run(["delete", "tenant", tenant, "--wait=false"]);
    await k.run(["delete", "namespace", system, "--wait=false"]);
    await db?.close();
    await tdb?.drop();
  });

  it("key.created for each key and key.expiring for the key inside the notice window, one row each", async () => {
    await waitFor("two keys Active", async () => (await statusOf("apikey", "ci", "{.status.phase}")) === "Active" && (await statusOf("apikey", "temp", "{.status.phase}")) === "Active");
    await waitFor("created and expiring rows", async () => (await rowsOf("key.created")).length === 2 && (await rowsOf("key.expiring")).length === 1);
    const created = await rowsOf("key.created");
    assert.deepEqual(created.map((r) => r.url), [allHook, allHook], "only the endpoint subscribed to key.created");
    const body = JSON.parse(created.find((r) => r.body.includes('"ci"'))!.body) as { id: string; type: string; tenant: string; data: Record<string, unknown> };
    assert.equal(body.type, "key.created");
    assert.equal(body.tenant, tenant);
    assert.equal(body.data.prefix, await statusOf("apikey", "ci", "{.status.prefix}"));
    const plaintext = Buffer.from(await k.ok(["get", "secret", "apikey-ci", "-n", ns, "-o", "jsonpath={.data.key}"]), "base64").toString("utf8");
    assert.ok(!(await rows()).some((r) => r.body.includes(plaintext)), "the plaintext key is never in a notification");
  });

  it("rotation, revocation, suspension and resumption: one row per change and subscribed endpoint", async () => {
    await k.ok(["patch", "apikey", "ci", "-n", ns, "--type=merge", "-p", '{"spec":{"rotationRequest":"r1"}}']);
    await waitFor("rotated row", async () => (await rowsOf("key.rotated")).length === 1);
    await k.ok(["patch", "apikey", "ci", "-n", ns, "--type=merge", "-p", '{"spec":{"revoked":true}}']);
    await waitFor("revoked rows", async () => (await rowsOf("key.revoked")).length === 2);
    assert.deepEqual((await rowsOf("key.revoked")).map((r) => r.url).sort(), [allHook, revokedHook].sort());
    await k.ok(["patch", "tenant", tenant, "--type=merge", "-p", '{"spec":{"suspended":true}}']);
    await waitFor("suspended row", async () => (await rowsOf("tenant.suspended")).length === 1);
    await waitFor("phase Suspended", async () => (await statusOf("tenant", tenant, "{.status.phase}")) === "Suspended");
    await k.ok(["patch", "tenant", tenant, "--type=merge", "-p", '{"spec":{"suspended":false}}']);
    await waitFor("resumed row", async () => (await rowsOf("tenant.resumed")).length === 1);
    const ids = (await rows()).map((r) => `${r.eventId} ${r.url}`);
    assert.equal(new Set(ids).size, ids.length);
  });

  it("audit events logged just before a graceful shutdown are in the database", async () => {
    await k.ok(["apply", "-f", "-"], `apiVersion: crosslogic.ai/v1alpha1\nkind: ApiKey\nmetadata: {name: late, namespace: ${ns}}\nspec: {environment: prod}\n`);
    await waitFor("late key audited", async () => op.audit("api_key_created").some((a) => (a.details as { name: string }).name === "late"), 30_000, 20);
    assert.equal(await op.stop(), 0);
    const logged = op.lines.flatMap((l) => {
      try { const o = JSON.parse(l) as Record<string, unknown>; return o.log === "audit" ? [o] : []; } catch { return []; }
    });
    const stored = await createAuditStore(db).query({ tenant });
    const tenantLines = logged.filter((o) => o.tenant_id === tenant);
    assert.ok(tenantLines.length >= 8, `audit lines: ${tenantLines.map((o) => o.action).join(", ")}`);
    assert.deepEqual(stored.map((e) => `${e.timestamp} ${e.action}`).sort(), tenantLines.map((o) => `${String(o.timestamp)} ${String(o.action)}`).sort());
    for (const action of ["tenant_created", "api_key_created", "api_key_rotated", "api_key_revoked", "tenant_suspended", "tenant_resumed"]) {
      assert.ok(stored.some((e) => e.action === action), `${action} persisted`);
    }
    const late = stored.find((e) => e.action === "api_key_created" && e.details.name === "late");
    assert.ok(late, "the event logged right before SIGTERM was flushed");
    assert.equal(late.actor_id, "operator");
  });

  it("a restarted operator and its resyncs enqueue nothing again", async () => {
    op = await startOperatorProcess(operatorEnv());
    await waitFor("restarted operator reconciled", async () => (await op.metric("crosslogic_operator_reconcile_total")) >= 10);
    await waitFor("late key.created row", async () => (await rowsOf("key.created")).length === 3);
    await new Promise((r) => setTimeout(r, 5000)); // two resync periods
    const count: Record<string, number> = {};
    for (const r of await rows()) count[r.eventType] = (count[r.eventType] ?? 0) + 1;
    assert.deepEqual(count, { "key.created": 3, "key.expiring": 1, "key.rotated": 1, "key.revoked": 2, "tenant.suspended": 1, "tenant.resumed": 1 });
    assert.equal(await op.metric("crosslogic_operator_audit_events_dropped_total"), 0);
  });
});

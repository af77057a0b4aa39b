/**
 * Stripe → billing → Tenant, against real PostgreSQL and a real API server with the generated CRDs:
 * the signature matrix, duplicates, replays and reordering give exactly-once effects; persistent
 * payment failure and cancellation suspend the Tenant (spec.suspended, field manager
 * crosslogic-billing) after the grace period, and payment restores it; every change is audited.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import type http from "node:http";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import * as k8s from "@kubernetes/client-node";
import Stripe from "stripe";
import { createAuditStore, createDatabase, migrate, type Database } from "@crosslogic/data";
import { createTestDatabase } from "@crosslogic/testenv";
import { testEnv } from "@crosslogic/testenv/test-env";
import { waitForCrds } from "@crosslogic/testenv/kube";
import { createApp } from "../../src/app.ts";
import { silentLogger } from "../../src/log.ts";
import { reconcileAll } from "../../src/reconcile.ts";
import { FIELD_MANAGER, kubeTenantDirectory } from "../../src/tenants.ts";

const env = testEnv();
const suffix = randomBytes(3).toString("hex");
const tenant = `bill-${suffix}`;
const customer = `cus_${suffix}`;
const secret = `whsec_${randomBytes(16).toString("hex")}`;
const stripe = new Stripe("sk_test_unused");
const GRACE_MS = 3600_000;
const T = Math.floor(Date.UTC(2026, 5, 1) / 1000);
const crd = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../crds/generated/tenants.crosslogic.ai.yaml");
const kubectl = (...args: string[]) => execFileSync(env.KUBECTL, [`--kubeconfig=${env.KUBECONFIG}`, ...args], { stdio: ["ignore", "pipe", "pipe"] }).toString();

let clock = new Date(T * 1000);
let tdb: { url: string; drop(): Promise<void> };
let db: Database;
let server: http.Server;
let base: string;
let custom: k8s.CustomObjectsApi;
let deps: Parameters<typeof reconcileAll>[0];

function event(id: string, type: string, created: number, object: Record<string, unknown>): string {
  return JSON.stringify({ id, object: "event", api_version: "2025-01-01", type, created, livemode: false, data: { object: { customer, ...object } } });
}

async function send(body: string, header: string | null): Promise<{ status: number; json: { status?: string; error?: { code: string } } }> {
  const res = await fetch(`${base}/stripe/webhook`, { method: "POST", headers: { "content-type": "application/json", ...(header === null ? {} : { "stripe-signature": header }) }, body });
  return { status: res.status, json: await res.json() as never };
}

function signed(body: string, timestamp = Math.floor(Date.now() / 1000)): string {
  return stripe.webhooks.generateTestHeaderString({ payload: body, secret, timestamp });
}

async function suspended(): Promise<{ suspended: boolean | undefined; managers: string[] }> {
  const t = await custom.getClusterCustomObject({ group: "crosslogic.ai", version: "v1alpha1", plural: "tenants", name: tenant }) as { spec: { suspended?: boolean }; metadata: { managedFields?: Array<{ manager: string; fieldsV1?: unknown }> } };
  const managers = (t.metadata.managedFields ?? []).filter((f) => JSON.stringify(f.fieldsV1 ?? {}).includes("f:suspended")).map((f) => f.manager);
  return { suspended: t.spec.suspended, managers };
}

const audits = async (action: string) => (await createAuditStore(db).query({ tenant, action: action as never })).length;

describe("Stripe webhooks drive tenant billing state", () => {
  before(async () => {
    kubectl("apply", "--server-side", "--force-conflicts", "-f", crd);
    await waitForCrds(async (args) => kubectl(...args), ["tenants.crosslogic.ai"]);
    tdb = await createTestDatabase(env.DATABASE_URL, "billing");
    await migrate(tdb.url);
    db = createDatabase(tdb.url);
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(env.KUBECONFIG);
    custom = kc.makeApiClient(k8s.CustomObjectsApi);
    await custom.createClusterCustomObject({ group: "crosslogic.ai", version: "v1alpha1", plural: "tenants", body: {
      apiVersion: "crosslogic.ai/v1alpha1", kind: "Tenant", metadata: { name: tenant }, spec: { displayName: "Billing test", billing: { stripeCustomerId: customer } },
    } });
    deps = { db, tenants: kubeTenantDirectory(kc), log: silentLogger(), graceMs: GRACE_MS, now: () => clock };
    server = createApp({ ...deps, stripe, webhookSecret: secret }).listen(0, "127.0.0.1");
    await new Promise((r) => server.once("listening", r));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(async () => {
    server?.close();
    await custom?.deleteClusterCustomObject({ group: "crosslogic.ai", version: "v1alpha1", plural: "tenants", name: tenant }).catch(() => {});
    await db?.close();
    await tdb?.drop();
  });

  it("refuses missing, malformed, tampered and stale signatures, changing nothing", async () => {
    const body = event(`evt_bad_${suffix}`, "invoice.payment_failed", T, { id: "in_bad", object: "invoice" });
    const cases: Array<[string, string, string | null]> = [
      ["missing header", body, null],
      ["malformed header", body, "garbage"],
      ["wrong secret", body, stripe.webhooks.generateTestHeaderString({ payload: body, secret: "whsec_other" })],
      ["tampered body", body.replace("invoice.payment_failed", "invoice.paid"), signed(body)],
      // 305 s, not 301: the header's timestamp is whole seconds and the server reads the clock a
      // moment later, so 301 s in the future can be exactly 300 s (inside) by the time it checks.
      ["stale timestamp (305 s)", body, signed(body, Math.floor(Date.now() / 1000) - 305)],
      ["future timestamp (305 s)", body, signed(body, Math.floor(Date.now() / 1000) + 305)],
    ];
    for (const [name, b, header] of cases) {
      const res = await send(b, header);
      assert.equal(res.status, 400, name);
    }
    assert.equal(await db.prisma.stripeEvent.count(), 0);
    assert.equal(await db.prisma.billingAccount.count(), 0);
    // Inside the tolerance is accepted.
    const body2 = event(`evt_ok_${suffix}`, "customer.subscription.created", T - 100, { id: "sub_1", object: "subscription", status: "active" });
    assert.equal((await send(body2, signed(body2, Math.floor(Date.now() / 1000) - 290))).json.status, "processed");
  });

  it("processes a payment failure once under replays and concurrent duplicates; suspends only after the grace period", async () => {
    const body = event(`evt_fail_${suffix}`, "invoice.payment_failed", T, { id: "in_1", object: "invoice" });
    const header = signed(body);
    assert.equal((await send(body, header)).json.status, "processed");
    // Replay of the very same signed request, and a burst of concurrent duplicates.
    const again = await Promise.all([send(body, header), ...Array.from({ length: 5 }, () => send(body, signed(body)))]);
    assert.deepEqual(again.map((r) => [r.status, r.json.status]), Array.from({ length: 6 }, () => [200, "duplicate"]));
    assert.equal(await audits("payment_failed"), 1);
    assert.equal(await db.prisma.webhookDelivery.count(), 0, "the tenant has no webhooks configured");

    clock = new Date((T + 60) * 1000);
    await reconcileAll(deps);
    assert.equal((await suspended()).suspended, false, "inside the grace period the tenant keeps working");

    clock = new Date(T * 1000 + GRACE_MS + 1000);
    assert.deepEqual(await reconcileAll(deps), { [tenant]: "suspended" });
    assert.deepEqual(await suspended(), { suspended: true, managers: [FIELD_MANAGER] });
    assert.deepEqual(await reconcileAll(deps), { [tenant]: "unchanged" });
    assert.equal(await audits("tenant_suspended"), 1);
    const [audit] = await createAuditStore(db).query({ tenant, action: "tenant_suspended" });
    assert.equal(audit!.actor_id, "billing");
    assert.equal(audit!.details.reason, "payment_failed");
  });

  it("ignores an older event delivered late, and restores the tenant on payment", async () => {
    const late = event(`evt_old_paid_${suffix}`, "invoice.paid", T - 50, { id: "in_0", object: "invoice" });
    assert.equal((await send(late, signed(late))).json.status, "stale");
    assert.equal((await suspended()).suspended, true);

    const paid = event(`evt_paid_${suffix}`, "invoice.paid", T + 4000, { id: "in_1", object: "invoice" });
    assert.equal((await send(paid, signed(paid))).json.status, "processed");
    assert.equal((await suspended()).suspended, false);
    assert.equal(await audits("tenant_resumed"), 1);
    // The failure of the same invoice arriving after its payment changes nothing.
    const failLate = event(`evt_fail_late_${suffix}`, "invoice.payment_failed", T + 3999, { id: "in_1", object: "invoice" });
    assert.equal((await send(failLate, signed(failLate))).json.status, "stale");
    clock = new Date((T + 4000) * 1000 + 2 * GRACE_MS);
    await reconcileAll(deps);
    assert.equal((await suspended()).suspended, false);
  });

  it("a cancelled subscription suspends after the grace period even when an older update arrives later", async () => {
    const cancel = event(`evt_cancel_${suffix}`, "customer.subscription.deleted", T + 5000, { id: "sub_1", object: "subscription", status: "canceled", canceled_at: T + 5000 });
    const olderUpdate = event(`evt_upd_${suffix}`, "customer.subscription.updated", T + 4990, { id: "sub_1", object: "subscription", status: "active" });
    clock = new Date((T + 5000) * 1000);
    assert.equal((await send(cancel, signed(cancel))).json.status, "processed");
    assert.equal((await send(olderUpdate, signed(olderUpdate))).json.status, "stale");
    clock = new Date((T + 5000) * 1000 + GRACE_MS - 1000);
    await reconcileAll(deps);
    assert.equal((await suspended()).suspended, false);
    clock = new Date((T + 5000) * 1000 + GRACE_MS);
    await reconcileAll(deps);
    assert.equal((await suspended()).suspended, true);
    assert.equal(await audits("tenant_suspended"), 2);
    assert.equal(await audits("tenant_resumed"), 1);
    assert.equal(await audits("subscription_cancelled"), 1);
  });

  it("logs every received event with its status, and ignores events of unknown customers", async () => {
    const stranger = JSON.stringify({ id: `evt_x_${suffix}`, object: "event", type: "invoice.paid", created: T, livemode: false, data: { object: { id: "in_x", customer: "cus_nobody" } } });
    assert.equal((await send(stranger, signed(stranger))).json.status, "ignored");
    const rows = await db.prisma.stripeEvent.findMany({ orderBy: { id: "asc" }, select: { id: true, status: true } });
    assert.deepEqual(Object.fromEntries(rows.map((r) => [r.id.replace(`_${suffix}`, ""), r.status])), {
      evt_ok: "processed", evt_fail: "processed", evt_old_paid: "stale", evt_paid: "processed", evt_fail_late: "stale",
      evt_cancel: "processed", evt_upd: "stale", evt_x: "ignored",
    });
  });
});

/**
 * Metered usage to Stripe through Stripe's own `stripe` library against stripe-mock, with a
 * recording proxy in between: one meter event per closed period and tenant, and a crash between
 * Stripe's answer and our bookkeeping repeats only the same idempotent call.
 */
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, it } from "node:test";
import Stripe from "stripe";
import type { UsageRecord } from "@crosslogic/crds/usage";
import { createDatabase, createUsageStore, migrate, type Database } from "@crosslogic/data";
import { createTestDatabase } from "@crosslogic/testenv";
import { startStripeMock, type StripeMock } from "@crosslogic/testenv/stripe-mock";
import { testEnv } from "@crosslogic/testenv/test-env";
import { silentLogger } from "../../src/log.ts";
import { createUsageReporter, idempotencyKey } from "../../src/usage-reporter.ts";

const HOUR = 3600_000;
const t0 = new Date("2026-05-01T00:00:00.000Z");
const tenant = `meter-${Math.random().toString(36).slice(2, 8)}`;

interface Call { path: string; key: string | undefined; body: string; status: number }

function usage(i: number, at: Date, tokens: number): UsageRecord {
  return { requestId: `${tenant}-${i}`, tenant, environment: `tenant-${tenant}/prod`, keyPrefix: "clsk_live_00000000", keyName: "k", model: "m",
    endpoint: "/v1/chat/completions", promptTokens: tokens - 1, completionTokens: 1, totalTokens: tokens, latencyMs: 3, status: 200, streamed: false, createdAt: at };
}

describe("metered usage reporting to Stripe", () => {
  let tdb: { url: string; drop(): Promise<void> };
  let db: Database;
  let mock: StripeMock;
  let proxy: http.Server;
  let stripe: Stripe;
  const calls: Call[] = [];

  before(async () => {
    mock = await startStripeMock();
    const upstream = new URL(mock.url);
    proxy = http.createServer((req, res) => {
      let body = "";
      req.on("data", (c) => { body += c; });
      req.on("end", () => {
        const up = http.request({ host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers }, (r) => {
          calls.push({ path: req.url!, key: req.headers["idempotency-key"] as string | undefined, body, status: r.statusCode ?? 0 });
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        });
        up.end(body);
      });
    });
    await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
    stripe = new Stripe("sk_test_123", { host: "127.0.0.1", port: (proxy.address() as { port: number }).port, protocol: "http", maxNetworkRetries: 0 });
    tdb = await createTestDatabase(testEnv().DATABASE_URL, "metering");
    await migrate(tdb.url);
    db = createDatabase(tdb.url);
  });
  after(async () => {
    proxy?.close();
    await mock?.stop();
    await db?.close();
    await tdb?.drop();
  });

  it("reports each closed period once, and a crash after Stripe answered repeats only the same idempotent call", async () => {
    await db.prisma.billingAccount.create({ data: { tenant, stripeCustomerId: "cus_meter1", createdAt: t0 } });
    await createUsageStore(db).insertBatch([
      usage(1, new Date(t0.getTime() + 10 * 60_000), 100), usage(2, new Date(t0.getTime() + 50 * 60_000), 50), // hour 0: 150
      // hour 1: nothing
      usage(3, new Date(t0.getTime() + 2 * HOUR + 1000), 7), // hour 2: 7
      usage(4, new Date(t0.getTime() + 3 * HOUR + 1000), 1000), // hour 3: not closed yet
    ]);
    const now = () => new Date(t0.getTime() + 3 * HOUR + 10 * 60_000); // 03:10, settle 5 min: hours 0-2 are closed
    const opts = { meterEventName: "crosslogic_tokens", periodMs: HOUR, settleMs: 5 * 60_000, now };
    const crashKey = idempotencyKey(tenant, t0);
    const crashing = createUsageReporter(db, stripe, silentLogger(), {
      ...opts, afterStripeCall: (key) => { if (key === crashKey) throw Object.assign(new Error("simulated crash"), { crash: true }); },
    });
    await assert.rejects(crashing.runOnce(), /simulated crash/);
    assert.equal(calls.length, 1, "Stripe accepted the first period before the crash");

    const restarted = createUsageReporter(db, stripe, silentLogger(), opts);
    assert.deepEqual(await restarted.runOnce(), { reported: 2, skippedEmpty: 0, failed: 0 });
    assert.deepEqual(await restarted.runOnce(), { reported: 0, skippedEmpty: 0, failed: 0 }, "nothing is reported twice");

    const rows = await db.prisma.usageReport.findMany({ where: { tenant }, orderBy: { periodStart: "asc" } });
    assert.deepEqual(rows.map((r) => [r.periodStart.toISOString(), r.quantity, r.status]), [
      ["2026-05-01T00:00:00.000Z", 150n, "reported"],
      ["2026-05-01T01:00:00.000Z", 0n, "empty"],
      ["2026-05-01T02:00:00.000Z", 7n, "reported"],
    ]);
    assert.ok(calls.every((c) => c.path === "/v1/billing/meter_events" && c.status === 200), JSON.stringify(calls));
    assert.deepEqual(calls.map((c) => c.key), [crashKey, crashKey, idempotencyKey(tenant, new Date(t0.getTime() + 2 * HOUR))],
      "the call repeated after the crash carries the same Idempotency-Key");
    const first = new URLSearchParams(calls[0]!.body), retry = new URLSearchParams(calls[1]!.body);
    assert.equal(first.get("identifier"), crashKey, "the meter event identifier is the same key (Stripe deduplicates it too)");
    assert.equal(retry.toString(), first.toString(), "the repeated call is byte-identical");
    assert.equal(first.get("payload[value]"), "150");
    assert.equal(first.get("payload[stripe_customer_id]"), "cus_meter1");
  });
});

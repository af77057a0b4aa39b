import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { describe, it } from "node:test";
import Stripe from "stripe";
import type { Database } from "@crosslogic/data";
import { createApp } from "../../src/app.ts";
import { silentLogger } from "../../src/log.ts";
import { createMetrics } from "../../src/metrics.ts";
import type { TenantDirectory } from "../../src/tenants.ts";

const tenants: TenantDirectory = { findByCustomer: async () => null, webhooks: async () => [], setSuspended: async () => true, secret: async () => "" };

async function serve(db: Database, fn: (base: string) => Promise<void>): Promise<void> {
  const app = createApp({ db, tenants, log: silentLogger(), graceMs: 1000, stripe: new Stripe("sk_test_unused"), webhookSecret: "whsec_unit", metrics: createMetrics() });
  const server = app.listen(0, "127.0.0.1");
  await new Promise((r) => server.once("listening", r));
  try { await fn(`http://127.0.0.1:${(server.address() as AddressInfo).port}`); } finally { server.close(); }
}

describe("billing health endpoints", () => {
  it("/healthz answers while the database is down; /readyz says 503 until it answers", async () => {
    let up = false;
    const db = { prisma: { $queryRaw: async () => { if (!up) throw new Error("connect ECONNREFUSED 127.0.0.1:5432"); return [{ "?column?": 1 }]; } } } as unknown as Database;
    await serve(db, async (base) => {
      assert.equal((await fetch(`${base}/healthz`)).status, 200);
      const down = await fetch(`${base}/readyz`);
      assert.equal(down.status, 503);
      assert.equal(((await down.json()) as { error: { code: string } }).error.code, "database_unavailable");
      up = true;
      assert.equal((await fetch(`${base}/readyz`)).status, 200);
    });
  });

  it("/readyz does not hang on a database that never answers", async () => {
    const db = { prisma: { $queryRaw: () => new Promise(() => {}) } } as unknown as Database;
    await serve(db, async (base) => {
      assert.equal((await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(10_000) })).status, 503);
    });
  });

  it("/metrics counts refused Stripe webhooks by reason", async () => {
    const db = { prisma: { $queryRaw: async () => [] } } as unknown as Database;
    await serve(db, async (base) => {
      await fetch(`${base}/stripe/webhook`, { method: "POST", body: "{}" });
      await fetch(`${base}/stripe/webhook`, { method: "POST", body: "{}", headers: { "stripe-signature": "t=1,v1=00" } });
      await fetch(`${base}/stripe/webhook`, { method: "POST", body: "{}", headers: { "stripe-signature": "t=1,v1=00" } });
      const text = await (await fetch(`${base}/metrics`)).text();
      assert.match(text, /crosslogic_billing_stripe_webhooks_total\{status="missing_signature"\} 1\n/);
      assert.match(text, /crosslogic_billing_stripe_webhooks_total\{status="invalid_signature"\} 2\n/);
    });
  });
});

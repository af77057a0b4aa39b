/**
 * Limit-threshold notifications derived from the audit events the gateway persists, against real
 * PostgreSQL: one notification per tenant/key/layer per window, idempotent across re-reads and a
 * reset cursor, nothing lost to commit order (an in-flight lower id), a rolled-back id skipped after
 * the gap timeout, and the notification delivered signed to a loopback HTTPS receiver.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { auditEvent } from "@crosslogic/crds/audit";
import { auditRow, createAuditStore, createDatabase, migrate, type Database } from "@crosslogic/data";
import { createTestDatabase } from "@crosslogic/testenv";
import { testEnv } from "@crosslogic/testenv/test-env";
import { createLimitNotifier, LIMIT_CURSOR } from "../../src/limit-notifications.ts";
import { silentLogger } from "../../src/log.ts";
import type { WebhookEndpoint } from "../../src/outbox.ts";
import { createSender } from "../../src/sender.ts";
import { verifySignatureHeader } from "../../src/signing.ts";

const SECRET = "limit-webhook-secret";
const MIN = 60_000;
const suffix = Math.random().toString(36).slice(2, 8);
const [acme, quiet] = [`acme-${suffix}`, `quiet-${suffix}`];
const [k1, k2] = ["clsk_live_a4f5b2c8", "clsk_live_77e0d1aa"];

describe("limit-threshold notifications", () => {
  let tdb: { url: string; drop(): Promise<void> };
  let db: Database;
  let clock = Date.now();
  const hooks: Record<string, WebhookEndpoint[]> = {};
  const lookups: string[] = [];
  const tenants = { webhooks: async (t: string) => { lookups.push(t); return hooks[t] ?? []; } };
  const notifier = (o: { gapTimeoutMs?: number } = {}) =>
    createLimitNotifier({ db, tenants, log: silentLogger() }, { windowMs: 10 * MIN, now: () => new Date(clock), ...o });
  const block = (tenant: string | null, key: string | null, layer: string, at: number, action: "rate_limit_block" | "auth_failed" = "rate_limit_block") =>
    auditEvent(action, { timestamp: new Date(at), request_id: `req_${Math.random().toString(36).slice(2)}`, actor_id: key, tenant_id: tenant, ip_address: "203.0.113.9", details: { layer } });
  const deliveries = (tenant: string) => db.prisma.webhookDelivery.findMany({ where: { tenant, eventType: "limit.threshold" }, orderBy: { createdAt: "asc" } });

  before(async () => {
    tdb = await createTestDatabase(testEnv().DATABASE_URL, "limit_ntf");
    await migrate(tdb.url);
    db = createDatabase(tdb.url);
  });
  after(async () => {
    await db.close();
    await tdb.drop();
  });

  it("notifies once per tenant, key and layer per window, only subscribed endpoints, and never twice", async () => {
    hooks[acme] = [
      { url: "https://hooks.acme.example/limits", secretRef: { name: "hooks", key: "secret" }, events: ["limit.threshold"] },
      { url: "https://hooks.acme.example/keys-only", secretRef: { name: "hooks", key: "secret" }, events: ["key.revoked"] },
    ];
    const t0 = clock - 30 * MIN;
    const store = createAuditStore(db);
    await store.insertBatch([
      block(acme, k1, "key", t0),
      block(acme, k1, "key", t0 + 2 * MIN), // same triple inside the window: suppressed
      block(acme, k1, "tenant", t0 + 3 * MIN), // another layer: notified
      block(acme, k2, "key", t0 + 4 * MIN), // another key: notified
      block(acme, k1, "key", t0 + 11 * MIN), // the window has passed: notified
      block(null, null, "address", t0 + 5 * MIN), // no tenant (refused before authentication): nothing
      block(acme, k1, "key", t0 + 6 * MIN, "auth_failed"), // not a limit event
      block(quiet, k1, "key", t0 + 7 * MIN), // no endpoint subscribed: recorded, nothing to send
      block(acme, k1, "key", clock - 2 * 3_600_000), // older than the backlog limit (1 h): skipped
    ]);
    const first = await notifier().runOnce();
    assert.deepEqual([first.notified, first.suppressed], [5, 1]);
    const rows = await deliveries(acme);
    assert.equal(rows.length, 4, "one delivery per notification, to the subscribed endpoint only");
    assert.ok(rows.every((r) => r.url === "https://hooks.acme.example/limits"));
    const bodies = rows.map((r) => JSON.parse(r.body) as { id: string; type: string; tenant: string; data: { layer: string; key_prefix: string; window_seconds: number } });
    assert.deepEqual(bodies.map((b) => [b.data.key_prefix, b.data.layer]).sort(), [[k2, "key"], [k1, "key"], [k1, "key"], [k1, "tenant"]]);
    assert.ok(bodies.every((b) => b.type === "limit.threshold" && b.tenant === acme && /^ntf_limit_\d+$/.test(b.id) && b.data.window_seconds === 600));
    assert.equal((await deliveries(quiet)).length, 0);

    // Re-running, and even resetting the cursor to re-read everything, enqueues nothing new.
    assert.equal((await notifier().runOnce()).notified, 0);
    await db.prisma.processingCursor.update({ where: { name: LIMIT_CURSOR }, data: { position: 0n } });
    assert.equal((await notifier().runOnce()).notified, 0);
    assert.equal((await deliveries(acme)).length, 4);
  });

  it("does not lose an event whose lower id commits after a higher one, and skips a rolled-back id after the gap timeout", async () => {
    const t = clock - 5 * MIN;
    const late = Promise.withResolvers<void>();
    const other = createDatabase(tdb.url);
    try {
      // A writer takes an id and holds its transaction open…
      let inFlight!: Promise<unknown>;
      const tookId = new Promise<void>((resolve) => {
        inFlight = other.prisma.$transaction(async (tx) => {
          await tx.auditEvent.createMany({ data: [auditRow(block(acme, k2, "environment", t))] });
          resolve();
          await late.promise;
        }, { timeout: 30_000 });
      });
      await tookId;
      // …while a later event (higher id) commits and is read.
      await createAuditStore(db).insertBatch([block(acme, k2, "global", t + 1000)]);
      const r1 = await notifier().runOnce();
      assert.equal(r1.notified, 1, "the visible event beyond the gap is notified at once");
      const cursor1 = await db.prisma.processingCursor.findUniqueOrThrow({ where: { name: LIMIT_CURSOR } });
      assert.ok(cursor1.gapSince, "the cursor waits at the gap");
      late.resolve();
      await inFlight;
      const r2 = await notifier().runOnce();
      assert.equal(r2.notified, 1, "the late event is notified when it commits");
      assert.deepEqual((await deliveries(acme)).map((d) => (JSON.parse(d.body) as { data: { layer: string } }).data.layer).slice(-2).sort(), ["environment", "global"]);

      // A rolled-back insert leaves a gap that never fills: the cursor moves past it after the timeout.
      await other.prisma.$transaction(async (tx) => {
        await tx.auditEvent.createMany({ data: [auditRow(block(acme, k2, "address", t))] });
        throw new Error("roll back");
      }).catch(() => {});
      await createAuditStore(db).insertBatch([block(acme, "clsk_live_00000001", "key", t + 2000)]);
      const n = notifier({ gapTimeoutMs: 5 * MIN });
      assert.equal((await n.runOnce()).notified, 1);
      const held = await db.prisma.processingCursor.findUniqueOrThrow({ where: { name: LIMIT_CURSOR } });
      const newest = await db.prisma.auditEvent.aggregate({ _max: { id: true } });
      assert.ok(held.position < newest._max.id!, "held before the gap");
      clock += 6 * MIN;
      assert.equal((await n.runOnce()).notified, 0, "nothing notified twice while moving on");
      const moved = await db.prisma.processingCursor.findUniqueOrThrow({ where: { name: LIMIT_CURSOR } });
      assert.equal(moved.position, newest._max.id, "moved past the dead gap");
      assert.equal(moved.gapSince, null);
    } finally {
      late.resolve();
      await other.close();
    }
  });

  it("is delivered signed to the tenant's HTTPS endpoint", async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "limit-recv-"));
    execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=localhost",
      "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", path.join(tmp, "key.pem"), "-out", path.join(tmp, "cert.pem")], { stdio: "ignore" });
    const got: { body: string; ok: boolean; event: string }[] = [];
    const server = https.createServer({ key: fs.readFileSync(path.join(tmp, "key.pem")), cert: fs.readFileSync(path.join(tmp, "cert.pem")) }, (req, res) => {
      let body = "";
      req.on("data", (c) => { body += c; });
      req.on("end", () => {
        got.push({ body, event: String(req.headers["x-webhook-event"]), ok: verifySignatureHeader(SECRET, body, String(req.headers["x-signature"]), Math.floor(Date.now() / 1000)) });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const tenant = `live-${suffix}`;
      hooks[tenant] = [{ url: `https://127.0.0.1:${(server.address() as { port: number }).port}/hook`, secretRef: { name: "hooks", key: "secret" }, events: ["limit.threshold"] }];
      await createAuditStore(db).insertBatch([block(tenant, k1, "key", clock - MIN)]);
      assert.equal((await notifier().runOnce()).notified, 1);
      await db.prisma.webhookDelivery.deleteMany({ where: { tenant: { not: tenant } } }); // the example.com ones of the tests above
      const sender = createSender(db, async () => SECRET, silentLogger(), { allowLoopback: true, ca: fs.readFileSync(path.join(tmp, "cert.pem")) });
      await sender.runOnce();
      assert.equal(got.length, 1);
      assert.ok(got[0]!.ok, "signature verifies");
      assert.equal(got[0]!.event, "limit.threshold");
      assert.deepEqual((JSON.parse(got[0]!.body) as { data: { key_prefix: string; layer: string } }).data.layer, "key");
    } finally {
      server.closeAllConnections();
      server.close();
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});

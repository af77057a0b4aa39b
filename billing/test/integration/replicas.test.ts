/**
 * Two billing replicas at once against one database (what a Deployment with replicas: 2 does): every
 * outbox notification reaches the receiver exactly once, and every closed usage period reaches Stripe
 * (stripe-mock, through a recording proxy) exactly once — one API call, not two deduplicated ones.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import type { UsageRecord } from "@crosslogic/crds/usage";
import { createDatabase, createUsageStore, migrate, type Database } from "@crosslogic/data";
import { createTestDatabase } from "@crosslogic/testenv";
import { startStripeMock, type StripeMock } from "@crosslogic/testenv/stripe-mock";
import { testEnv } from "@crosslogic/testenv/test-env";
import { enqueueNotification } from "../../src/outbox.ts";
import { idempotencyKey } from "../../src/usage-reporter.ts";

const here = path.dirname(fileURLToPath(import.meta.url));
const HOUR = 3_600_000;
const SECRET = "replica-webhook-secret";
const t0 = new Date("2026-06-01T00:00:00.000Z");
const suffix = Math.random().toString(36).slice(2, 8);
const tenants = [0, 1, 2].map((i) => `replica-${i}-${suffix}`);
const N = 60;

function usage(tenant: string, i: number, at: Date, tokens: number): UsageRecord {
  return { requestId: `${tenant}-${i}`, tenant, environment: `tenant-${tenant}/prod`, keyPrefix: "clsk_live_00000000", keyName: "k", model: "m",
    endpoint: "/v1/chat/completions", promptTokens: tokens - 1, completionTokens: 1, totalTokens: tokens, latencyMs: 3, status: 200, streamed: false, createdAt: at };
}

describe("two billing replicas", () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "replicas-"));
  let tdb: { url: string; drop(): Promise<void> };
  let db: Database;
  let mock: StripeMock;
  let proxy: http.Server;
  let receiver: https.Server;
  const meterCalls: string[] = [];
  const hits: string[] = [];

  before(async () => {
    execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=localhost",
      "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", path.join(tmp, "key.pem"), "-out", path.join(tmp, "cert.pem")], { stdio: "ignore" });
    receiver = https.createServer({ key: fs.readFileSync(path.join(tmp, "key.pem")), cert: fs.readFileSync(path.join(tmp, "cert.pem")) }, (req, res) => {
      req.resume();
      req.on("end", () => {
        hits.push(String(req.headers["x-webhook-id"]));
        setTimeout(() => res.writeHead(204).end(), 15); // a little latency widens any race between replicas
      });
    });
    await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
    mock = await startStripeMock();
    const upstream = new URL(mock.url);
    proxy = http.createServer((req, res) => {
      let body = "";
      req.on("data", (c) => { body += c; });
      req.on("end", () => {
        if (req.url === "/v1/billing/meter_events") meterCalls.push(String(req.headers["idempotency-key"]));
        // Stripe answering in ~40 ms keeps a reporting round long enough for the replicas to overlap.
        setTimeout(() => {
          const up = http.request({ host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers }, (r) => {
            res.writeHead(r.statusCode ?? 502, r.headers);
            r.pipe(res);
          });
          up.end(body);
        }, 40);
      });
    });
    await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
    tdb = await createTestDatabase(testEnv().DATABASE_URL, "replicas");
    await migrate(tdb.url);
    db = createDatabase(tdb.url);
  });
  after(async () => {
    receiver?.closeAllConnections();
    receiver?.close();
    proxy?.close();
    await mock?.stop();
    await db?.close();
    await tdb?.drop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("deliver every notification once and report every usage period once", async () => {
    const hook = { url: `https://127.0.0.1:${(receiver.address() as { port: number }).port}/hook`, secretRef: { name: "hooks", key: "secret" }, events: ["key.revoked"] };
    for (let i = 0; i < N; i++) await enqueueNotification(db.prisma, [hook], { tenant: tenants[i % 3]!, type: "key.revoked", id: `ntf_replica_${i}`, data: { i } });
    const expectedKeys: string[] = [];
    for (const [n, tenant] of tenants.entries()) {
      await db.prisma.billingAccount.create({ data: { tenant, stripeCustomerId: `cus_replica_${n}_${suffix}`, createdAt: t0 } });
      // Six closed hours per tenant, one of them empty.
      const records = [0, 1, 2, 4, 5].map((h) => usage(tenant, h, new Date(t0.getTime() + h * HOUR + 60_000), 10 + h));
      await createUsageStore(db).insertBatch(records);
      for (const h of [0, 1, 2, 4, 5]) expectedKeys.push(idempotencyKey(tenant, new Date(t0.getTime() + h * HOUR)));
    }
    const now = new Date(t0.getTime() + 6 * HOUR + 1000).toISOString();
    const start = () => {
      const child = spawn(process.execPath, [path.join(here, "fixtures/billing-child.ts"), tdb.url, path.join(tmp, "cert.pem"), SECRET,
        String((proxy.address() as { port: number }).port), now, "4000"], { stdio: ["pipe", "pipe", "inherit"] });
      let out = "";
      const ready = new Promise<void>((resolve) => child.stdout.on("data", (d) => { out += d; if (out.startsWith("ready\n")) resolve(); }));
      const done = new Promise<{ delivered: number; reported: number; rounds: number; errors: number }>((resolve, reject) => {
        child.once("exit", (code) => (code === 0 ? resolve(JSON.parse(out.slice("ready\n".length)) as never) : reject(new Error(`replica exited ${code}: ${out}`))));
      });
      return { child, ready, done };
    };
    const replicas = [start(), start()];
    await Promise.all(replicas.map((r) => r.ready));
    for (const r of replicas) r.child.stdin.end("go\n");
    const [a, b] = await Promise.all(replicas.map((r) => r.done)) as [Awaited<(typeof replicas)[0]["done"]>, Awaited<(typeof replicas)[0]["done"]>];

    // Both replicas really worked the same tables at the same time.
    assert.ok(a.rounds > 1 && b.rounds > 1 && a.delivered > 0 && b.delivered > 0, JSON.stringify({ a, b }));
    assert.equal(a.delivered + b.delivered, N, JSON.stringify({ a, b }));
    assert.equal(await db.prisma.webhookDelivery.count({ where: { status: "delivered", eventId: { startsWith: "ntf_replica_" } } }), N);
    assert.equal(hits.length, N, "the receiver got each notification once");
    assert.equal(new Set(hits).size, N);

    assert.equal(a.reported + b.reported, expectedKeys.length, JSON.stringify({ a, b }));
    assert.deepEqual([...meterCalls].sort(), [...expectedKeys].sort(), "one Stripe call per tenant and closed period, none repeated");
    const reports = await db.prisma.usageReport.findMany({ where: { tenant: { in: tenants } } });
    assert.equal(reports.filter((r) => r.status === "reported").length, expectedKeys.length);
    assert.equal(reports.filter((r) => r.status === "empty").length, tenants.length, "hour 3 of each tenant is empty");
  });
});

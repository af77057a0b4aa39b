/**
 * The billing process as deployed: `node prisma/src/cli.ts migrate` (what `make migrate` runs), then
 * `node billing/src/main.ts` with its environment (no STRIPE_SECRET_KEY: usage reporting off, said
 * once in the log); it serves signed Stripe webhooks, /readyz and /metrics, and stops cleanly on SIGTERM.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, it } from "node:test";
import { fileURLToPath } from "node:url";
import Stripe from "stripe";
import { createTestDatabase, freePort } from "@crosslogic/testenv";
import { testEnv } from "@crosslogic/testenv/test-env";
import { waitForCrds } from "@crosslogic/testenv/kube";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const env = testEnv();
let tdb: { url: string; drop(): Promise<void> };
before(async () => {
  execFileSync(env.KUBECTL, [`--kubeconfig=${env.KUBECONFIG}`, "apply", "--server-side", "--force-conflicts", "-f", path.join(root, "crds/generated/tenants.crosslogic.ai.yaml")], { stdio: "ignore" });
  await waitForCrds(async (args) => execFileSync(env.KUBECTL, [`--kubeconfig=${env.KUBECONFIG}`, ...args], { stdio: ["ignore", "pipe", "pipe"] }), ["tenants.crosslogic.ai"]);
  tdb = await createTestDatabase(env.DATABASE_URL, "billing_main");
});
after(async () => { await tdb.drop(); });

it("migrates, starts, answers Stripe, and stops on SIGTERM", async () => {
  const out = execFileSync(process.execPath, ["--no-warnings", "prisma/src/cli.ts", "migrate"], { cwd: root, env: { ...process.env, DATABASE_URL: tdb.url } }).toString();
  assert.match(out, /Applied migrations: \d+_init/);
  const again = execFileSync(process.execPath, ["--no-warnings", "prisma/src/cli.ts", "migrate"], { cwd: root, env: { ...process.env, DATABASE_URL: tdb.url } }).toString();
  assert.match(again, /No pending migrations/);

  const port = await freePort();
  const secret = "whsec_main_test";
  const child = spawn(process.execPath, ["billing/src/main.ts"], {
    cwd: root, stdio: ["ignore", "pipe", "pipe"],
    env: { PATH: process.env.PATH, PORT: String(port), DATABASE_URL: tdb.url, STRIPE_WEBHOOK_SECRET: secret,
      STRIPE_API_BASE: "http://127.0.0.1:9", KUBECONFIG: env.KUBECONFIG, BILLING_GRACE_PERIOD_SECONDS: "60", LOG_LEVEL: "warn" },
  });
  let logs = "";
  child.stdout.on("data", (d) => { logs += d; });
  child.stderr.on("data", (d) => { logs += d; });
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  try {
    let healthy = false;
    for (let i = 0; i < 100 && !healthy; i++) {
      healthy = await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false);
      if (!healthy) await sleep(100);
    }
    assert.ok(healthy, `billing did not become healthy:\n${logs}`);
    const body = JSON.stringify({ id: "evt_main_1", object: "event", type: "invoice.paid", created: Math.floor(Date.now() / 1000), livemode: false, data: { object: { id: "in_1", customer: "cus_nobodyhere" } } });
    const header = new Stripe("sk_test_123").webhooks.generateTestHeaderString({ payload: body, secret });
    const res = await fetch(`http://127.0.0.1:${port}/stripe/webhook`, { method: "POST", headers: { "stripe-signature": header, "content-type": "application/json" }, body });
    assert.deepEqual(await res.json(), { received: true, status: "ignored" }, logs);
    const unsigned = await fetch(`http://127.0.0.1:${port}/stripe/webhook`, { method: "POST", body });
    assert.equal(unsigned.status, 400);
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
    assert.deepEqual([ready.status, await ready.json()], [200, { ok: true }]);
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    for (const line of [
      'crosslogic_billing_stripe_webhooks_total{status="ignored"} 1',
      'crosslogic_billing_stripe_webhooks_total{status="missing_signature"} 1',
      'crosslogic_billing_outbox_depth{status="pending"} 0',
      'crosslogic_billing_notifications_total{result="dead_lettered"} 0',
      'crosslogic_billing_usage_reports_total{result="reported"} 0',
    ]) assert.ok(metrics.split("\n").includes(line), `${line} in /metrics`);
    assert.equal(logs.split("\n").filter((l) => l.includes("Usage reporting to Stripe disabled")).length, 1, logs);
  } finally {
    child.kill("SIGTERM");
  }
  assert.equal(await exited, 0, logs);
});

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, it } from "node:test";
import Stripe from "stripe";
import { isListening } from "../../src/ports.ts";
import { isAlive } from "../../src/process.ts";

const run = promisify(execFile);
const cli = fileURLToPath(new URL("../../src/cli.ts", import.meta.url));
const repoRoot = fileURLToPath(new URL("../../..", import.meta.url));

describe("dev-up / dev-down", () => {
  it("starts the whole product detached with the .dev files and a working curl, then stops every process and frees every port", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "devup-"));
    // A setting for the gateway passed through from the developer's environment (DEV_GATEWAY_*).
    const feed = path.join(dir, "..", `${path.basename(dir)}-feed.txt`);
    fs.writeFileSync(feed, "192.0.2.0/24\n198.51.100.0/24\n");
    const up = await run(process.execPath, [cli, "up", "--dir", dir], { timeout: 180_000, env: { ...process.env, DEV_GATEWAY_THREAT_FEEDS: feed } });
    let state: { processes: { name: string; pid: number }[]; ports: number[] } | undefined;
    try {
      const env = Object.fromEntries(fs.readFileSync(path.join(dir, "env"), "utf8").trim().split("\n").map((l) => l.split(/=(.*)/s).slice(0, 2)));
      for (const k of ["KUBECONFIG", "DATABASE_URL", "REDIS_URL", "MODEL_URL", "ADMIN_TOKEN", "STRIPE_WEBHOOK_SECRET", "GATEWAY_URL", "ADMIN_URL", "BILLING_URL"]) assert.ok(env[k], `${k} in .dev/env`);
      assert.equal(env.KUBECONFIG, path.join(dir, "kubeconfig"));
      assert.ok(fs.readdirSync(path.join(dir, "logs")).includes("kube-apiserver.log"));
      const metrics = await (await fetch(`${env.ADMIN_URL}/metrics`)).text();
      assert.match(metrics, /^gateway_threat_feed_ranges 2$/m, "DEV_GATEWAY_THREAT_FEEDS reached the gateway as THREAT_FEEDS");
      const { stdout } = await run(env.KUBECTL!, ["get", "--raw", "/readyz"], { env: { ...process.env, KUBECONFIG: env.KUBECONFIG } });
      assert.equal(stdout.trim(), "ok");
      const models = await (await fetch(`${env.MODEL_URL}/v1/models`)).json() as { data: unknown[] };
      assert.ok(models.data.length > 0);
      // The printed curl, run as a newcomer would paste it, gets a completion through the gateway.
      const curl = up.stdout.split("\n").map((l) => l.trim()).find((l) => l.startsWith("curl "));
      assert.ok(curl, `a curl command in the output:\n${up.stdout}`);
      assert.ok(curl.includes(env.GATEWAY_URL!) && /Bearer clsk_test_[0-9a-f]{64}/.test(curl), curl);
      const completion = JSON.parse((await run("bash", ["-c", curl])).stdout) as { object: string; choices: { message: { content: string } }[] };
      assert.equal(completion.object, "chat.completion");
      assert.ok(completion.choices[0]?.message.content);
      // So does the printed openai SDK snippet (from the repository root, where `openai` resolves).
      const lines = up.stdout.split("\n").map((l) => l.trim());
      const first = lines.findIndex((l) => l.startsWith("node --input-type=module"));
      const last = lines.findIndex((l, i) => i > first && l.endsWith("'"));
      assert.ok(first >= 0 && last > first, "an SDK snippet in the output");
      const sdk = await run("bash", ["-c", lines.slice(first, last + 1).join("\n")], { cwd: repoRoot });
      assert.ok(sdk.stdout.trim().length > 0, "the SDK snippet printed a completion");
      // The requests were metered into PostgreSQL: the admin API (ADMIN_URL, ADMIN_TOKEN from .dev/env) lists them.
      let usage: unknown[] = [];
      for (let i = 0; i < 40 && usage.length < 2; i++) {
        await new Promise((r) => setTimeout(r, 250));
        const res = await fetch(`${env.ADMIN_URL}/admin/usage?tenant=demo`, { headers: { "x-admin-token": env.ADMIN_TOKEN! } });
        assert.equal(res.status, 200);
        usage = ((await res.json()) as { data: unknown[] }).data;
      }
      assert.equal(usage.length, 2, "the curl and the SDK call are in the usage records");
      // Billing (BILLING_URL, in the summary too) accepts a Stripe test event signed by Stripe's own
      // library with STRIPE_WEBHOOK_SECRET from .dev/env, and refuses the same event unsigned.
      assert.ok(up.stdout.includes(env.BILLING_URL!), `billing in the summary:\n${up.stdout}`);
      const payload = JSON.stringify({
        id: `evt_devup_${Date.now()}`, object: "event", type: "invoice.paid", created: Math.floor(Date.now() / 1000), livemode: false,
        data: { object: { id: "in_devup", object: "invoice", customer: "cus_devup_unknown" } },
      });
      const signature = new Stripe("sk_test_unused").webhooks.generateTestHeaderString({ payload, secret: env.STRIPE_WEBHOOK_SECRET! });
      const post = (headers: Record<string, string>) => fetch(`${env.BILLING_URL}/stripe/webhook`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: payload });
      const signed = await post({ "stripe-signature": signature });
      assert.equal(signed.status, 200);
      assert.deepEqual(await signed.json(), { received: true, status: "ignored" }, "accepted (no tenant has that customer)");
      const unsigned = await post({});
      assert.equal(unsigned.status, 400);
      const forged = await post({ "stripe-signature": new Stripe("sk_test_unused").webhooks.generateTestHeaderString({ payload, secret: "whsec_not_the_secret" }) });
      assert.equal(forged.status, 400);
      assert.equal((await fetch(`${env.BILLING_URL}/readyz`)).status, 200);
      state = JSON.parse(fs.readFileSync(path.join(dir, "state.json"), "utf8"));
      for (const name of ["operator", "gateway", "billing"]) assert.ok(state!.processes.some((p) => p.name === name), `${name} in state.json`);
      // A second `up` is idempotent: it reports the running environment instead of starting another.
      const again = await run(process.execPath, [cli, "up", "--dir", dir]);
      assert.match(again.stderr, /already up/);
    } finally {
      await run(process.execPath, [cli, "down", "--dir", dir], { timeout: 60_000 });
    }
    assert.ok(state);
    for (const p of state.processes) assert.equal(isAlive(p.pid), false, `${p.name} (pid ${p.pid}) still running`);
    for (const port of state.ports) assert.equal(await isListening(port), false, `port ${port} still open`);
    assert.equal(fs.existsSync(path.join(dir, "state.json")), false);
    const second = await run(process.execPath, [cli, "down", "--dir", dir]);
    assert.match(second.stderr, /nothing was running/);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(feed, { force: true });
  });
});

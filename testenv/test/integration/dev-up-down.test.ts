import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, it } from "node:test";
import { isListening } from "../../src/ports.ts";
import { isAlive } from "../../src/process.ts";

const run = promisify(execFile);
const cli = fileURLToPath(new URL("../../src/cli.ts", import.meta.url));

describe("dev-up / dev-down", () => {
  it("starts a detached environment with the .dev files, then stops every process and frees every port", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "devup-"));
    await run(process.execPath, [cli, "up", "--dir", dir], { timeout: 180_000 });
    let state: { processes: { name: string; pid: number }[]; ports: number[] } | undefined;
    try {
      const env = Object.fromEntries(fs.readFileSync(path.join(dir, "env"), "utf8").trim().split("\n").map((l) => l.split(/=(.*)/s).slice(0, 2)));
      for (const k of ["KUBECONFIG", "DATABASE_URL", "REDIS_URL", "MODEL_URL", "ADMIN_TOKEN", "STRIPE_WEBHOOK_SECRET"]) assert.ok(env[k], `${k} in .dev/env`);
      assert.equal(env.KUBECONFIG, path.join(dir, "kubeconfig"));
      assert.ok(fs.readdirSync(path.join(dir, "logs")).includes("kube-apiserver.log"));
      const { stdout } = await run(env.KUBECTL!, ["get", "--raw", "/readyz"], { env: { ...process.env, KUBECONFIG: env.KUBECONFIG } });
      assert.equal(stdout.trim(), "ok");
      const models = await (await fetch(`${env.MODEL_URL}/v1/models`)).json() as { data: unknown[] };
      assert.ok(models.data.length > 0);
      state = JSON.parse(fs.readFileSync(path.join(dir, "state.json"), "utf8"));
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
  });
});

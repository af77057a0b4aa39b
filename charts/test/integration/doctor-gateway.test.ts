/**
 * scripts/doctor.ts against the real gateway process (gateway/src/main.ts) on loopback, with the
 * shared Redis and PostgreSQL: the items it can check from outside pass, and a gateway whose admin
 * token is weak refuses to start at all (so the doctor never sees one).
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "@crosslogic/testenv";
import { testEnv } from "@crosslogic/testenv/test-env";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const env = testEnv();
const children: ChildProcess[] = [];
after(() => { for (const c of children) c.kill("SIGTERM"); });

async function startGateway(extra: Record<string, string>): Promise<{ gateway: string; admin: string; child: ChildProcess; output: () => string }> {
  const [port, adminPort] = [await freePort(), await freePort()];
  const configDir = fs.mkdtempSync(path.join(os.tmpdir(), "doctor-gw-"));
  const child = spawn(process.execPath, [path.join(root, "gateway/src/main.ts")], {
    env: {
      PATH: process.env.PATH ?? "", PORT: String(port), ADMIN_PORT: String(adminPort), HOST: "127.0.0.1", ADMIN_HOST: "127.0.0.1",
      REDIS_URL: env.REDIS_URL, CONFIG_SOURCE: "directory", CONFIG_DIR: configDir, GLOBAL_REQUESTS_PER_MINUTE: "100000", LOG_LEVEL: "warn", ...extra,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let out = "";
  child.stdout!.on("data", (d: Buffer) => { out = (out + d.toString()).slice(-20_000); });
  child.stderr!.on("data", (d: Buffer) => { out = (out + d.toString()).slice(-20_000); });
  const admin = `http://127.0.0.1:${adminPort}`;
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) break;
    try { if ((await fetch(`${admin}/healthz`)).ok) break; } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { gateway: `http://127.0.0.1:${port}`, admin, child, output: () => out };
}

function doctor(args: string[], secrets: Record<string, string>): Promise<{ status: number; out: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(root, "scripts/doctor.ts"), ...args], { encoding: "utf8", env: { PATH: process.env.PATH ?? "", ...secrets } },
      (err, stdout, stderr) => resolve({ status: err ? Number(err.code ?? 1) : 0, out: stdout + stderr }));
  });
}

test("against the real gateway: headers, admin API (internal only, token enforced), audit and metrics pass", async (t) => {
  if (!fs.existsSync(path.join(root, "gateway/src/main.ts"))) return t.skip("gateway/src/main.ts does not exist yet");
  const token = randomBytes(36).toString("base64url");
  const gw = await startGateway({ ADMIN_TOKEN: token });
  assert.equal(gw.child.exitCode, null, `gateway started: ${gw.output()}`);
  const r = await doctor(["--gateway", gw.gateway, "--admin-url", gw.admin, "--skip", "tls", "--json"], { ADMIN_TOKEN: token });
  const results = Object.fromEntries((JSON.parse(r.out.slice(r.out.indexOf("{"))) as { results: { id: string; status: string; details: string[] }[] }).results.map((x) => [x.id, x]));
  for (const id of ["headers", "admin-token", "audit-logging"]) assert.equal(results[id]!.status, "pass", `${id}: ${results[id]!.details.join(" | ")}\n${gw.output()}`);
  assert.equal(results.monitoring!.status, "unverifiable", results.monitoring!.details.join(" | "));
  assert.match(results.monitoring!.details[0]!, /Prometheus metrics served/);
  assert.equal(results["backup-encryption"]!.status, "unverifiable");
  assert.equal(r.status, 0, r.out);
});

test("the real gateway refuses to start with a short admin token", async (t) => {
  if (!fs.existsSync(path.join(root, "gateway/src/main.ts"))) return t.skip("gateway/src/main.ts does not exist yet");
  const gw = await startGateway({ ADMIN_TOKEN: "changeme" });
  await new Promise<void>((resolve) => { if (gw.child.exitCode !== null) resolve(); else gw.child.once("exit", () => resolve()); });
  assert.notEqual(gw.child.exitCode, 0);
  assert.match(gw.output(), /ADMIN_TOKEN/);
});

/** Two gateway processes (`node gateway/src/main.ts`) sharing one Redis: limits hold across replicas, revocation reaches both. */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { Redis } from "ioredis";
import { REVOCATION_CHANNEL } from "@crosslogic/crds";
import { startModelServer, type ModelServer } from "@crosslogic/model-server";
import { freePort } from "@crosslogic/testenv";
import { testEnv } from "@crosslogic/testenv/test-env";
import { ADMIN_TOKEN, makeDoc, makeKey, suffix } from "../fixtures.ts";
import { eventually } from "../harness.ts";

const env = testEnv();
const L = 20;

describe("two gateway replicas", () => {
  let model: ModelServer;
  const procs: ChildProcess[] = [];
  const urls: string[] = [];
  const limited = makeKey({ limits: { requestsPerMinute: L, tokensPerMinute: 0, concurrency: 1000 } });
  const victim = makeKey();
  const prefix = `gwrep:${suffix()}:`;
  let dir: string;

  before(async () => {
    model = await startModelServer({});
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "gw-rep-"));
    fs.writeFileSync(path.join(dir, "a.json"), JSON.stringify(makeDoc({ keys: [limited, victim], modelUrl: model.url })));
    for (let i = 0; i < 2; i++) {
      const port = await freePort();
      const child = spawn(process.execPath, ["gateway/src/main.ts"], {
        env: { ...process.env, PORT: String(port), ADMIN_PORT: String(await freePort()), HOST: "127.0.0.1", ADMIN_HOST: "127.0.0.1", ADMIN_TOKEN, REDIS_URL: env.REDIS_URL,
          CONFIG_SOURCE: "directory", CONFIG_DIR: dir, REDIS_KEY_PREFIX: prefix, LOG_LEVEL: "warn", DATABASE_URL: "", VIOLATION_DELAY_AFTER: "100000", VIOLATION_BLOCK_AFTER: "100000" },
        stdio: ["ignore", "ignore", "inherit"],
      });
      procs.push(child);
      urls.push(`http://127.0.0.1:${port}`);
    }
    for (const u of urls) await eventually(() => fetch(`${u}/v1/models`).then(() => true, () => false), 20_000, 100);
  });

  after(async () => {
    for (const p of procs) p.kill("SIGTERM");
    await Promise.all(procs.map((p) => new Promise((r) => (p.exitCode !== null ? r(null) : p.once("exit", r)))));
    await model.close();
    fs.rmSync(dir, { recursive: true, force: true });
    const r = new Redis(env.REDIS_URL);
    const keys = await r.keys(`${prefix}*`);
    if (keys.length) await r.del(...keys);
    r.disconnect();
  });

  it(`admit at most L=${L} of 10·L parallel requests`, async () => {
    const results = await Promise.all(Array.from({ length: 10 * L }, (_, i) => fetch(`${urls[i % 2]}/v1/completions`, {
      method: "POST", headers: { authorization: `Bearer ${limited.key}`, "content-type": "application/json" }, body: '{"model":"llama-3-8b","prompt":"x","max_tokens":1}',
    }).then(async (r) => { await r.arrayBuffer(); return r.status; })));
    const admitted = results.filter((s) => s === 200).length;
    assert.ok(admitted <= L, `admitted ${admitted}`);
    assert.ok(admitted >= L - 1, `admitted ${admitted}: the limit is also reachable`);
    assert.equal(results.filter((s) => s === 429).length, 10 * L - admitted);
  });

  it("apply a revocation at both replicas within a second", async () => {
    for (const u of urls) assert.equal((await fetch(`${u}/v1/models`, { headers: { authorization: `Bearer ${victim.key}` } })).status, 200);
    const pub = new Redis(env.REDIS_URL);
    const t0 = Date.now();
    await pub.publish(REVOCATION_CHANNEL, JSON.stringify({ type: "key_revoked", hash: victim.entry.hash, prefix: victim.entry.prefix }));
    pub.disconnect();
    for (const u of urls) await eventually(async () => (await fetch(`${u}/v1/models`, { headers: { authorization: `Bearer ${victim.key}` } })).status === 401, 1000, 10);
    assert.ok(Date.now() - t0 < 1000, `${Date.now() - t0} ms`);
  });
});

/**
 * A real PostgreSQL outage mid-run: the gateway's own PostgreSQL (started here with
 * `startPostgres`) is stopped while requests keep coming, then started again on the same data.
 * Every answered request's usage record reaches the table exactly once: none lost, none doubled.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { migrate } from "@crosslogic/data";
import { startModelServer, type ModelServer } from "@crosslogic/model-server";
import { startPostgres, type Service } from "@crosslogic/testenv";
import { testEnv } from "@crosslogic/testenv/test-env";
import { makeDoc, makeKey } from "../fixtures.ts";
import { eventually, sleep, startHarness, type Harness } from "../harness.ts";

const env = testEnv();

describe("usage metering across a PostgreSQL outage", () => {
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), "gw-pg-logs-"));
  let postgres: Service;
  let model: ModelServer;
  let h: Harness;
  const k = makeKey({ limits: { requestsPerMinute: 100_000, tokensPerMinute: 0, concurrency: 50 } });

  before(async () => {
    postgres = await startPostgres({ logDir });
    await migrate(postgres.url);
    model = await startModelServer({ name: "gw-pg" });
    h = await startHarness({
      REDIS_URL: env.REDIS_URL, DATABASE_URL: postgres.url, USAGE_BATCH_SIZE: "7", USAGE_FLUSH_INTERVAL_MS: "50",
      VIOLATION_DELAY_AFTER: "100000", VIOLATION_BLOCK_AFTER: "100000",
    }, { a: makeDoc({ keys: [k], modelUrl: model.url }) });
  });
  after(async () => {
    await h?.stop();
    await model?.close();
    await postgres?.stop();
    fs.rmSync(logDir, { recursive: true, force: true });
  });

  it("writes every record exactly once after PostgreSQL comes back", async () => {
    const ids: string[] = [];
    const statuses: number[] = [];
    let running = true;
    const traffic = (async () => {
      for (let i = 0; running && i < 2000; i++) {
        const r = await fetch(`${h.gw.url}/v1/completions`, { method: "POST", headers: { authorization: `Bearer ${k.key}`, "content-type": "application/json" }, body: '{"model":"llama-3-8b","prompt":"x","max_tokens":3}' });
        await r.arrayBuffer();
        statuses.push(r.status);
        if (r.status === 200) ids.push(r.headers.get("x-request-id")!);
        await sleep(10);
      }
    })();
    const rows = async (): Promise<Array<{ requestId: string; completionTokens: number }>> => {
      const c = new pg.Client({ connectionString: postgres.url });
      await c.connect();
      try { return (await c.query(`select "requestId", "completionTokens" from "UsageRecord"`)).rows; } finally { await c.end(); }
    };
    await eventually(async () => (await rows()).length >= 20, 10_000);
    // Outage: PostgreSQL stops (its data stays) while requests keep coming.
    await postgres.process.stop(10_000);
    const failuresBefore = await flushFailures();
    await eventually(async () => (await flushFailures()) > failuresBefore, 10_000);
    await sleep(1500);
    const duringOutage = ids.length;
    // Back on the same port and data.
    postgres = await startPostgres({ logDir, dir: postgres.dir, port: postgres.port });
    await sleep(1500);
    running = false;
    await traffic;
    assert.ok(ids.length > duringOutage, "requests answered after the restart");
    assert.ok(statuses.every((s) => s === 200), `every request answered while the database was down (${[...new Set(statuses)].join(",")})`);
    const all = await eventually(async () => { const r = await rows(); return r.length >= ids.length ? r : undefined; }, 30_000, 200);
    await sleep(500);
    const final = await rows();
    const got = final.map((r) => r.requestId);
    assert.equal(new Set(got).size, got.length, "no duplicates");
    assert.deepEqual(new Set(got), new Set(ids), "exactly the answered requests, none lost");
    assert.equal(final.length, all.length, "nothing written twice later");
    assert.ok(final.every((r) => r.completionTokens === 3));
  });

  async function flushFailures(): Promise<number> {
    const text = await (await fetch(`${h.gw.adminUrl}/metrics`)).text();
    return Number(/^gateway_usage_flush_failures_total (\S+)$/m.exec(text)?.[1] ?? 0);
  }
});

/** Usage metering: nothing lost or duplicated across a sink outage, a full buffer, or a shutdown with the sink down. */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import type { UsageRecord } from "@crosslogic/crds";
import { MemoryUsageSink, UsageMeter } from "../../src/metering.ts";

const rec = (i: number): UsageRecord => ({
  requestId: `req_${i}`, tenant: "t", environment: "ns/e", keyPrefix: "clsk_test_00000000", keyName: "k", model: "m", endpoint: "/v1/completions",
  promptTokens: 1, completionTokens: 2, totalTokens: 3, latencyMs: 1, status: 200, streamed: false, createdAt: new Date(1_700_000_000_000 + i),
});
const quiet = { flushed: () => undefined, flushFailed: () => undefined, buffered: () => undefined };

describe("usage meter", () => {
  it("keeps records through an outage and writes each exactly once", async () => {
    const sink = new MemoryUsageSink();
    let calls = 0;
    const flaky = { insertBatch: async (r: UsageRecord[]) => { calls++; if (calls % 2 === 1) { await sink.insertBatch(r); throw new Error("lost ack"); } return sink.insertBatch(r); } };
    const m = new UsageMeter(flaky, { maxBuffered: 1000, batchSize: 7, intervalMs: 10_000 }, quiet);
    for (let i = 0; i < 50; i++) m.record(rec(i));
    for (let i = 0; i < 40 && m.size > 0; i++) { await m.flush(); await m.close(Date.now() + 50); }
    assert.equal(m.size, 0);
    assert.equal(sink.records.size, 50);
  });
  it("reports full when the buffer is at its bound", () => {
    const sink = new MemoryUsageSink();
    sink.failing = true;
    const m = new UsageMeter(sink, { maxBuffered: 10, batchSize: 100, intervalMs: 10_000 }, quiet);
    for (let i = 0; i < 10; i++) m.record(rec(i));
    assert.equal(m.full, true);
  });
  it("spools what it cannot write at shutdown and re-sends it at the next start", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gw-spool-"));
    try {
      const sink = new MemoryUsageSink();
      sink.failing = true;
      const first = new UsageMeter(sink, { maxBuffered: 100, batchSize: 5, intervalMs: 10_000, spoolDir: dir }, quiet);
      for (let i = 0; i < 12; i++) first.record(rec(i));
      assert.equal(await first.close(Date.now() + 100), 12);
      sink.failing = false;
      const second = new UsageMeter(sink, { maxBuffered: 100, batchSize: 5, intervalMs: 10_000, spoolDir: dir }, quiet);
      second.start();
      second.record(rec(100));
      assert.equal(await second.close(Date.now() + 2000), 0);
      assert.equal(sink.records.size, 13);
      assert.equal(sink.records.get("req_3")!.createdAt.getTime(), rec(3).createdAt.getTime());
      assert.deepEqual(fs.readdirSync(dir), []);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * Redis work per admitted request (TARGETS.md: one script call to admit, at most one to settle):
 * the gateway's own Limiter against a fresh Redis, every layer enabled (global, tenant,
 * environment, key, address, generation, token buckets at three levels, a concurrency lease), in
 * batches as a loaded gateway sends them (all admissions of one event-loop turn in one call), in
 * two shapes: `busy` — eight keys each sending from one address, as a loaded client does (the
 * Limiter pre-admits: one script entry grants a pool of tickets) — and `one-by-one` — every
 * request from a new address, so no pool ever forms (the cost of traffic spread thin, or of small
 * limits, which are never pre-admitted). Reports script calls and Redis CPU per request from Redis's own INFO. Redis CPU per request is
 * what bounds the whole platform's request rate: every gateway replica's admissions run on the
 * Redis that holds the {gw} slot. Writes bench/results/redis-cost.json.
 *
 *   node bench/gateway/redis-cost.ts [--requests 40000] [--batches 1,16,64]
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { Redis } from "ioredis";
import { startRedis } from "@crosslogic/testenv";
import { Limiter, type KeyLimits } from "../../gateway/src/limits/limiter.ts";

const { values } = parseArgs({ options: { requests: { type: "string", default: "40000" }, batches: { type: "string", default: "1,16,64" } } });
const N = Number(values.requests);
const root = path.resolve(import.meta.dirname, "../..");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "redis-cost-"));
const server = await startRedis({ logDir: tmp, dir: tmp });
const redis = new Redis(server.url, { enableAutoPipelining: false });
const big = 1e9;
const limiter = new Limiter(redis, {
  globalRpm: big, clientRpm: big, clientGenerationRpm: big, leaseTtlMs: 30_000, violationWindowMs: 60_000, delayAfter: 10, blockAfter: 100,
  maxDelayMs: 5000, blockMs: 60_000, failurePolicy: "fail-closed", keyPrefix: "bench:",
}, { redisFailure() { throw new Error("Redis failed during the benchmark"); } });
const key = (i: number): KeyLimits => ({
  hash: `h${i % 8}`, tenant: "t1", environment: "e1", tenantRpm: big, environmentRpm: big, rpm: big,
  tenantTpm: big, environmentTpm: big, tpm: big, concurrency: 1000, reserve: 256, leaseId: `l${i}`,
});
const stats = async () => {
  const [cpu, commands] = [await redis.info("cpu"), await redis.info("commandstats")];
  const num = (re: RegExp, text: string) => Number(re.exec(text)?.[1] ?? 0);
  return {
    cpuSeconds: num(/used_cpu_user:([\d.]+)/, cpu) + num(/used_cpu_sys:([\d.]+)/, cpu),
    scriptCalls: num(/cmdstat_evalsha:calls=(\d+)/, commands) + num(/cmdstat_eval:calls=(\d+)/, commands),
    scriptUsec: num(/cmdstat_evalsha:calls=\d+,usec=(\d+)/, commands) + num(/cmdstat_eval:calls=\d+,usec=(\d+)/, commands),
  };
};

const results = [];
try {
  for (const shape of ["busy", "one-by-one"] as const) for (const batch of values.batches.split(",").map(Number)) {
    await redis.config("RESETSTAT");
    const before = await stats();
    for (let i = 0; i < N; i += batch) {
      const decisions = await Promise.all(Array.from({ length: batch }, (_, j) => limiter.admit({ client: shape === "busy" ? "10.0.0.1" : `10.${i + j}`, generation: true, key: key(i + j) })));
      if (!decisions.every((d) => d.admitted && d.lease)) throw new Error("a request was refused: the benchmark's limits are meant never to bind");
      await Promise.all(decisions.map((d) => limiter.settle(d.lease!, 100)));
    }
    const after = await stats();
    const r = {
      shape, batch, requests: N,
      scriptCallsPerRequest: +((after.scriptCalls - before.scriptCalls) / N).toFixed(3),
      scriptMicrosPerRequest: +((after.scriptUsec - before.scriptUsec) / N).toFixed(1),
      redisCpuMicrosPerRequest: +(((after.cpuSeconds - before.cpuSeconds) * 1e6) / N).toFixed(1),
    };
    results.push({ ...r, requestsPerRedisCoreSecond: Math.round(1e6 / r.redisCpuMicrosPerRequest) });
    process.stderr.write(`[redis-cost] ${JSON.stringify(results.at(-1))}\n`);
  }
  const out = {
    date: new Date().toISOString(), host: { cpus: os.cpus().length, node: process.version, redis: (await redis.info("server")).match(/redis_version:(\S+)/)?.[1] },
    method: "the gateway's Limiter, every layer on, admit then settle (100 tokens used of 256 reserved), N admissions per event-loop turn; busy: 8 keys from one address (pre-admitted), one-by-one: a new address per request (no pre-admission); Redis INFO cpu and commandstats",
    results,
  };
  fs.mkdirSync(path.join(root, "bench/results"), { recursive: true });
  fs.writeFileSync(path.join(root, "bench/results/redis-cost.json"), `${JSON.stringify(out, null, 2)}\n`);
} finally {
  limiter.close();
  redis.disconnect();
  await server.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
}

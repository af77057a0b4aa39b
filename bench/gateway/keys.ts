/**
 * Gateway memory and reload stalls with 100,000 keys (TARGETS.md: RSS ≤ 200 MB; a config reload
 * without event-loop stalls > 10 ms). The gateway runs as its own process (`node
 * gateway/src/main.ts`, directory config source); its RSS is read from /proc, and the longest
 * event-loop stall from its own `nodejs_eventloop_lag_max_seconds` (prom-client's
 * monitorEventLoopDelay, reset on every scrape) around each reload. Two shapes: 100 environments of
 * 1,000 keys, and one environment of 100,000 keys. Writes bench/results/gateway-keys.json.
 *
 *   node bench/gateway/keys.ts [--keys 100000]
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { GATEWAY_CONFIG_API_VERSION, type GatewayConfig } from "@crosslogic/crds";
import { freePort } from "@crosslogic/testenv";

const { values } = parseArgs({ options: { keys: { type: "string", default: "100000" } } });
const KEYS = Number(values.keys);
const root = path.resolve(import.meta.dirname, "../..");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "gw-keys-"));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (m: string) => process.stderr.write(`[keys] ${m}\n`);
const procs: ChildProcess[] = [];
const ADMIN_TOKEN = "bench-admin-token-0123456789abcdef0123";

function doc(env: number, n: number, generation: number): GatewayConfig {
  const keys = Array.from({ length: n }, (_, i) => {
    const hex = createHash("sha256").update(`${env}/${i}`).digest("hex");
    return {
      hash: hex, prefix: `clsk_live_${hex.slice(0, 8)}`, name: `key-${env}-${i}-g${generation}`, role: "developer" as const,
      ...(i % 4 === 0 ? { expiresAt: "2030-01-01T00:00:00Z" } : {}), ...(i % 5 === 0 ? { models: ["llama-3-8b"] } : {}),
      limits: { requestsPerMinute: 1000, tokensPerMinute: 100_000, concurrency: 10 },
    };
  });
  return {
    apiVersion: GATEWAY_CONFIG_API_VERSION, kind: "GatewayConfig",
    tenant: { name: `tenant-${env}`, plan: "pro", suspended: false, limits: { requestsPerMinute: 50_000, tokensPerMinute: 0 } },
    environment: { name: "prod", namespace: `tenant-${env}`, tier: "production", hostnames: [`e${env}.example.test`], limits: { requestsPerMinute: 10_000, tokensPerMinute: 0 }, cors: { allowedOrigins: [] } },
    routes: [{ model: "llama-3-8b", backend: { url: "http://127.0.0.1:9" } }],
    keys,
  };
}

function writeDocs(dir: string, envs: number, perEnv: number, generation: number): void {
  for (let e = 0; e < envs; e++) {
    const file = path.join(dir, `env-${e}.json`);
    fs.writeFileSync(`${file}.tmp`, JSON.stringify(doc(e, perEnv, generation)));
    fs.renameSync(`${file}.tmp`, file);
  }
}

async function metrics(adminUrl: string): Promise<string> {
  return (await fetch(`${adminUrl}/metrics`)).text();
}
const metric = (text: string, name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "m").exec(text)?.[1] ?? NaN);

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
  return Math.round(Number(m?.[1] ?? 0) / 1024);
}

async function run(envs: number, perEnv: number, redisUrl: string): Promise<Record<string, number>> {
  const dir = fs.mkdtempSync(path.join(tmp, "cfg-"));
  writeDocs(dir, envs, perEnv, 0);
  const port = await freePort();
  const admin = await freePort();
  const t0 = performance.now();
  const child = spawn(process.execPath, [path.join(root, "gateway/src/main.ts")], {
    env: { ...process.env, PORT: String(port), ADMIN_PORT: String(admin), HOST: "127.0.0.1", ADMIN_HOST: "127.0.0.1", ADMIN_TOKEN, REDIS_URL: redisUrl, CONFIG_SOURCE: "directory", CONFIG_DIR: dir, LOG_LEVEL: "warn", DATABASE_URL: "", KUBECONFIG: "" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  child.stderr!.on("data", (d: Buffer) => { if (process.env.BENCH_VERBOSE) process.stderr.write(d); });
  procs.push(child);
  const adminUrl = `http://127.0.0.1:${admin}`;
  const total = envs * perEnv;
  for (let i = 0; ; i++) {
    try { if (metric(await metrics(adminUrl), "gateway_keys_loaded") === total) break; } catch { /* not up yet */ }
    if (i > 1200) throw new Error("keys did not load");
    await sleep(100);
  }
  const loadMs = performance.now() - t0;
  await sleep(3000); // let the heap settle after the initial load
  const rss = rssMb(child.pid!);
  // Reload: every document changes (new key names); the longest stall in between.
  await metrics(adminUrl); // resets the event-loop delay histogram
  const before = metric(await metrics(adminUrl), "gateway_config_reloads_total");
  const stalls: number[] = [];
  const t1 = performance.now();
  writeDocs(dir, envs, perEnv, 1);
  for (let i = 0; ; i++) {
    const text = await metrics(adminUrl);
    stalls.push(metric(text, "nodejs_eventloop_lag_max_seconds"));
    if (metric(text, "gateway_config_reloads_total") >= before + envs) break;
    if (i > 1200) throw new Error("reload did not finish");
    await sleep(50);
  }
  const reloadMs = performance.now() - t1;
  // The scrape that saw the reload finish may predate the last document's swap: one more interval.
  await sleep(200);
  // Polled scrapes reset the histogram: the max over the whole reload is the max over every scrape since.
  const after = await metrics(adminUrl);
  stalls.push(metric(after, "nodejs_eventloop_lag_max_seconds"));
  const rssAfter = rssMb(child.pid!);
  child.kill("SIGTERM");
  await new Promise((r) => child.once("exit", r));
  fs.rmSync(dir, { recursive: true, force: true });
  return { environments: envs, keys: total, load_ms: Math.round(loadMs), rss_mb: rss, rss_after_reload_mb: rssAfter, reload_ms: Math.round(reloadMs), max_stall_ms: +(Math.max(...stalls) * 1000).toFixed(1) };
}

async function main(): Promise<void> {
  const redisPort = await freePort();
  const redis = spawn("redis-server", ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" });
  procs.push(redis);
  await sleep(300);
  const redisUrl = `redis://127.0.0.1:${redisPort}`;
  const shapes: Array<[number, number]> = [[100, KEYS / 100], [1, KEYS]];
  const results = [];
  for (const [envs, per] of shapes) {
    log(`${envs} environment(s) × ${per} keys`);
    const r = await run(envs, per, redisUrl);
    log(JSON.stringify(r));
    results.push(r);
  }
  const out = {
    date: new Date().toISOString(), host: { cpus: os.cpus().length, node: process.version, load: os.loadavg().map((l) => +l.toFixed(2)) },
    method: "gateway as its own process (directory source); RSS from /proc after load and after a full reload; longest event-loop stall from nodejs_eventloop_lag_max_seconds sampled across the reload",
    results, targets: { rss_mb: "<= 200", max_stall_ms: "<= 10" },
    id: randomBytes(4).toString("hex"),
  };
  fs.mkdirSync(path.join(root, "bench/results"), { recursive: true });
  fs.writeFileSync(path.join(root, "bench/results/gateway-keys.json"), JSON.stringify(out, null, 2) + "\n");
  log("wrote bench/results/gateway-keys.json");
}

try {
  await main();
} finally {
  for (const p of procs) if (p.exitCode === null) p.kill("SIGTERM");
  fs.rmSync(tmp, { recursive: true, force: true });
}

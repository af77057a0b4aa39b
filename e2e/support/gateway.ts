/**
 * Helpers for the adversarial, fault-injection and leak-scan suites: the gateway as a real process
 * (`node gateway/src/main.ts`, config from a directory of gateway-config documents), documents and
 * keys built from the shared contract (`@crosslogic/crds`), and response checks every answer must pass.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { apiKeyPrefix, generateApiKey, GATEWAY_CONFIG_API_VERSION, hashApiKey, type GatewayConfig, type GatewayKeyEntry } from "@crosslogic/crds";
import { freePort } from "@crosslogic/testenv";
import { killGroup, startProcess, waitUntilReady, type ManagedProcess } from "@crosslogic/testenv/process";
import { repoRoot } from "@crosslogic/testenv/product";
import { GATEWAY_NODE_ARGS } from "../../gateway/src/node-args.ts";

export const suffix = (n = 4) => randomBytes(n).toString("hex");
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The seed's security headers (seed 001), exact values. */
export const SEED_HEADERS: Readonly<Record<string, string>> = {
  "strict-transport-security": "max-age=31536000; includeSubDomains; preload",
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
  "x-xss-protection": "1; mode=block",
  "content-security-policy": "default-src 'self'; frame-ancestors 'none'",
  "referrer-policy": "strict-origin-when-cross-origin",
  "permissions-policy": "geolocation=(), microphone=(), camera=()",
  "cache-control": "no-store, no-cache, must-revalidate",
};

export interface TestKey { key: string; entry: GatewayKeyEntry }

export function makeKey(o: Partial<GatewayKeyEntry> & { env?: "live" | "test" } = {}): TestKey {
  const { env = "test", ...rest } = o;
  const key = generateApiKey(env);
  return {
    key,
    entry: { hash: hashApiKey(key), prefix: apiKeyPrefix(key), name: `key-${suffix()}`, role: "developer", limits: { requestsPerMinute: 0, tokensPerMinute: 0, concurrency: 100 }, ...rest },
  };
}

export function makeDoc(o: {
  tenant: string; env?: string; tier?: "development" | "staging" | "production"; hostnames?: string[]; keys: TestKey[];
  modelUrl: string; models?: string[]; origins?: string[]; suspended?: boolean;
}): GatewayConfig {
  return {
    apiVersion: GATEWAY_CONFIG_API_VERSION, kind: "GatewayConfig",
    tenant: { name: o.tenant, plan: "pro", suspended: o.suspended ?? false, limits: { requestsPerMinute: 0, tokensPerMinute: 0 } },
    environment: {
      name: o.env ?? "dev", namespace: `tenant-${o.tenant}`, tier: o.tier ?? "development", hostnames: o.hostnames ?? [],
      limits: { requestsPerMinute: 0, tokensPerMinute: 0 }, cors: { allowedOrigins: o.origins ?? [] },
    },
    routes: (o.models ?? ["llama-3-8b", "bge-small"]).map((model) => ({ model, backend: { url: o.modelUrl } })),
    keys: o.keys.map((k) => k.entry),
  };
}

/** Writes a document atomically (the gateway's directory watcher never sees half a file). */
export function writeDoc(dir: string, name: string, doc: GatewayConfig): void {
  const file = path.join(dir, `${name}.json`);
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(doc));
  fs.renameSync(`${file}.tmp`, file);
}

export interface GatewayProcess {
  readonly url: string;
  readonly adminUrl: string;
  readonly port: number;
  readonly adminPort: number;
  readonly process: ManagedProcess;
  readonly logFile: string;
  /** A signal to the whole process group (SIGKILL, SIGSTOP…). */
  signal(sig: NodeJS.Signals): void;
  stop(): Promise<void>;
}

export interface GatewayProcessOptions {
  name: string;
  logDir: string;
  configDir: string;
  redisUrl: string;
  adminToken: string;
  redisKeyPrefix: string;
  databaseUrl?: string;
  env?: Record<string, string>;
  /** Node flags before the entry point (e.g. `--import` of a preload). */
  nodeArgs?: string[];
  /** Wait for /readyz (needs Redis); otherwise only for the public port to accept. */
  waitReady?: boolean;
}

/**
 * The gateway as users run it: `node gateway/src/main.ts`, its stdout/stderr in `<logDir>/<name>.log`.
 * A port taken between asking for it and binding it (another process) means a new pair of ports.
 */
export async function startGatewayProcess(o: GatewayProcessOptions): Promise<GatewayProcess> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(o);
    } catch (err) {
      if (attempt >= 3 || !/EADDRINUSE/.test((err as Error).message)) throw err;
    }
  }
}

/**
 * Several gateways at once. If one fails to start, the others are stopped before the error is
 * thrown: a started gateway nobody holds would keep the test process alive.
 */
export async function startGatewayProcesses(...all: GatewayProcessOptions[]): Promise<GatewayProcess[]> {
  const results = await Promise.allSettled(all.map((o) => startGatewayProcess(o)));
  const failed = results.find((r) => r.status === "rejected");
  if (!failed) return results.map((r) => (r as PromiseFulfilledResult<GatewayProcess>).value);
  for (const r of results) if (r.status === "fulfilled") await r.value.stop();
  throw failed.reason;
}

async function startOnce(o: GatewayProcessOptions): Promise<GatewayProcess> {
  const [port, adminPort] = [await freePort(), await freePort()];
  const logFile = path.join(o.logDir, `${o.name}.log`);
  const proc = startProcess({
    name: o.name, command: process.execPath, logFile,
    args: [...GATEWAY_NODE_ARGS, ...(o.nodeArgs ?? []), path.join(repoRoot, "gateway/src/main.ts")],
    env: {
      PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/", LOG_LEVEL: "info",
      HOST: "127.0.0.1", PORT: String(port), ADMIN_HOST: "127.0.0.1", ADMIN_PORT: String(adminPort), ADMIN_TOKEN: o.adminToken,
      REDIS_URL: o.redisUrl, REDIS_KEY_PREFIX: o.redisKeyPrefix, CONFIG_SOURCE: "directory", CONFIG_DIR: o.configDir,
      SHUTDOWN_TIMEOUT_MS: "3000", ...(o.databaseUrl ? { DATABASE_URL: o.databaseUrl } : {}), ...o.env,
    },
  });
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  await waitUntilReady(proc, async () => {
    const res = await fetch(`${adminUrl}/${o.waitReady === false ? "healthz" : "readyz"}`, { signal: AbortSignal.timeout(1000) });
    await res.body?.cancel();
    return res.ok;
  }, 30_000);
  return {
    url: `http://127.0.0.1:${port}`, adminUrl, port, adminPort, process: proc, logFile,
    signal: (sig) => { killGroup(proc.pid, sig); },
    stop: () => proc.stop(5000),
  };
}

/** Polls until `fn` returns a truthy value. */
export async function until<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, ms = 10_000, step = 100): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) { last = e; }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await sleep(step);
  }
}

/** Text that must never reach a client: stack frames, file paths, SQL/Prisma/Redis/undici internals. */
export const INTERNALS = [
  /\bat [\w.<>$]+ \(/, /\bat (file|node):/, /\/work\//, /\/src\/[\w-]+\.ts/, /node_modules/, /\.lua\b/,
  /\bERR\b|WRONGTYPE|NOSCRIPT|ECONNREFUSED|ETIMEDOUT|EPIPE/, /ioredis|undici|prisma|Prisma|PrismaClient/i,
  /\bselect\b.+\bfrom\b|\binsert into\b|syntax error at|relation "|violates .*constraint|pg_/i,
  /TypeError|ReferenceError|SyntaxError: |RangeError/,
];

export function leakedInternals(text: string): string | undefined {
  for (const re of INTERNALS) { const m = re.exec(text); if (m) return m[0]; }
  return undefined;
}

/** Problems with one response: 5xx, missing/wrong security headers, non-JSON body, internals in the body. */
export function responseProblems(status: number, headers: Record<string, string | string[] | undefined>, body: string, opts: { allow5xx?: boolean; json?: boolean } = {}): string[] {
  const p: string[] = [];
  if (status >= 500 && !opts.allow5xx) p.push(`status ${status}`);
  for (const [name, value] of Object.entries(SEED_HEADERS)) {
    if (headers[name] !== value) p.push(`header ${name}=${JSON.stringify(headers[name])}`);
  }
  const type = String(headers["content-type"] ?? "");
  if (opts.json !== false && status === 200 && type.startsWith("text/event-stream")) {
    // A request that asked for `stream: true` and was served: SSE frames, each a JSON chunk, then [DONE].
    const frames = body.split("\n\n").filter(Boolean);
    if (frames.at(-1) !== "data: [DONE]") p.push(`stream does not end with [DONE]: ${JSON.stringify(body.slice(-80))}`);
    for (const f of frames.slice(0, -1)) {
      try { if (!f.startsWith("data: ")) throw new Error(); JSON.parse(f.slice(6)); } catch { p.push(`SSE frame is not a JSON data frame: ${JSON.stringify(f.slice(0, 80))}`); break; }
    }
  } else if (opts.json !== false && status !== 204) {
    if (!type.startsWith("application/json")) p.push(`content-type ${JSON.stringify(type)}`);
    try { JSON.parse(body); } catch { p.push(`body is not JSON: ${JSON.stringify(body.slice(0, 80))}`); }
  }
  const leak = leakedInternals(body);
  if (leak) p.push(`internal text in body: ${JSON.stringify(leak)}`);
  return p;
}

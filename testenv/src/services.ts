import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import pg from "pg";
import { StartError } from "./errors.ts";
import { assertPortFree, freePort } from "./ports.ts";
import { startProcess, waitUntilReady, type ManagedProcess } from "./process.ts";

export interface Service {
  readonly url: string;
  readonly port: number;
  /** Data directory, removed by stop(). */
  readonly dir: string;
  readonly process: ManagedProcess;
  stop(): Promise<void>;
}

interface ServiceOptions {
  /** Data directory (created; removed on stop). PostgreSQL's must be reachable by the postgres user. */
  dir?: string;
  logDir: string;
  port?: number;
  detached?: boolean;
}

function which(cmd: string, dirs: string[] = []): string | undefined {
  for (const d of [...dirs, ...(process.env.PATH ?? "").split(":")]) {
    const p = path.join(d, cmd);
    if (fs.existsSync(p)) return p;
  }
  return undefined;
}

function postgresBinDir(): string {
  const base = "/usr/lib/postgresql";
  const versions = fs.existsSync(base) ? fs.readdirSync(base).filter((v) => fs.existsSync(path.join(base, v, "bin", "postgres"))) : [];
  const newest = versions.sort((a, b) => Number(b) - Number(a))[0];
  if (newest) return path.join(base, newest, "bin");
  const postgres = which("postgres");
  if (postgres) return path.dirname(fs.realpathSync(postgres));
  throw new StartError("PostgreSQL is not installed: run `make deps` (installs Debian's postgresql package)");
}

/** PostgreSQL refuses to run as root: when we are root, run it as the `postgres` (or `nobody`) user. */
function serviceUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  for (const name of ["postgres", "nobody"]) {
    try {
      const uid = Number(execFileSync("id", ["-u", name]).toString().trim());
      const gid = Number(execFileSync("id", ["-g", name]).toString().trim());
      return { uid, gid };
    } catch { /* try the next */ }
  }
  throw new StartError("running as root, and neither a `postgres` nor a `nobody` user exists to run PostgreSQL as");
}

/** Starts a throwaway PostgreSQL on a loopback port, with database `crosslogic`. */
export async function startPostgres(opts: ServiceOptions): Promise<Service> {
  const bin = postgresBinDir();
  const port = opts.port ?? (await freePort());
  await assertPortFree(port, "PostgreSQL");
  const user = serviceUser();
  // Inside a world-traversable temp dir, so the unprivileged postgres user can reach it.
  const dir = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), "crosslogic-pg-"));
  fs.mkdirSync(dir, { recursive: true });
  fs.chmodSync(dir, 0o711);
  const data = path.join(dir, "data");
  if (user) fs.chownSync(dir, user.uid, user.gid);
  // A data directory that already holds a cluster (a PostgreSQL stopped with `process.stop()`) is
  // started again as it is: a restart keeps the data.
  const existing = fs.existsSync(path.join(data, "PG_VERSION"));
  if (!existing) try {
    execFileSync(path.join(bin, "initdb"), ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions"], {
      stdio: ["ignore", "ignore", "pipe"], ...(user ?? {}),
    });
  } catch (err) {
    throw new StartError(`PostgreSQL initdb failed: ${(err as { stderr?: Buffer }).stderr?.toString().trim() ?? String(err)}`);
  }
  const logFile = path.join(opts.logDir, "postgres.log");
  fs.writeFileSync(logFile, "", { flag: "a" });
  if (user) fs.chownSync(logFile, user.uid, user.gid);
  const proc = startProcess({
    name: "PostgreSQL", command: path.join(bin, "postgres"), logFile, detached: opts.detached, stopSignal: "SIGINT", ...(user ?? {}),
    args: ["-D", data, "-p", String(port), "-k", dir, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
      "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=200"],
  });
  const admin = `postgresql://postgres@127.0.0.1:${port}/postgres`;
  await waitUntilReady(proc, async () => {
    const client = new pg.Client({ connectionString: admin, connectionTimeoutMillis: 1000 });
    try { await client.connect(); await client.query("select 1"); return true; } finally { await client.end().catch(() => {}); }
  }, 30_000);
  if (!existing) await withClient(admin, (c) => c.query("create database crosslogic"));
  return {
    url: `postgresql://postgres@127.0.0.1:${port}/crosslogic`, port, dir, process: proc,
    async stop() { await proc.stop(10_000); fs.rmSync(dir, { recursive: true, force: true }); },
  };
}

/** Starts a throwaway Redis (no persistence) on a loopback port. */
export async function startRedis(opts: ServiceOptions): Promise<Service> {
  const server = which("redis-server", ["/usr/bin", "/usr/local/bin"]);
  if (!server) throw new StartError("Redis is not installed: run `make deps` (installs Debian's redis-server package)");
  const port = opts.port ?? (await freePort());
  await assertPortFree(port, "Redis");
  const dir = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), "crosslogic-redis-"));
  fs.mkdirSync(dir, { recursive: true });
  const proc = startProcess({
    name: "Redis", command: server, logFile: path.join(opts.logDir, "redis.log"), detached: opts.detached,
    args: ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no"],
  });
  const url = `redis://127.0.0.1:${port}`;
  await waitUntilReady(proc, async () => {
    const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    redis.on("error", () => {}); // not up yet: the poll tries again
    try { await redis.connect(); return (await redis.ping()) === "PONG"; } finally { redis.disconnect(); }
  }, 15_000);
  return {
    url, port, dir, process: proc,
    async stop() { await proc.stop(); fs.rmSync(dir, { recursive: true, force: true }); },
  };
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try { return await fn(client); } finally { await client.end(); }
}

/**
 * Gives a test its own empty database on the shared server and returns its URL; the returned
 * drop() removes it. Names are unique per call.
 */
export async function createTestDatabase(serverUrl: string, label = "test"): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `${label.toLowerCase().replace(/[^a-z0-9_]/g, "_").slice(0, 30)}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  const admin = new URL(serverUrl);
  admin.pathname = "/postgres";
  await withClient(admin.toString(), (c) => c.query(`create database "${name}"`));
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: () => withClient(admin.toString(), (c) => c.query(`drop database if exists "${name}" with (force)`)).then(() => undefined),
  };
}

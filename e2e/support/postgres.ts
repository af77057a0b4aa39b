/**
 * PostgreSQL brought back after an outage: the same data directory and port as a `startPostgres`
 * service whose process was stopped (testenv's startPostgres always initialises a new cluster).
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import pg from "pg";
import type { Service } from "@crosslogic/testenv";
import { startProcess, waitUntilReady, type ManagedProcess } from "@crosslogic/testenv/process";

function binDir(): string {
  const base = "/usr/lib/postgresql";
  const v = fs.readdirSync(base).filter((d) => fs.existsSync(path.join(base, d, "bin", "postgres"))).sort((a, b) => Number(b) - Number(a))[0];
  if (!v) throw new Error("PostgreSQL is not installed");
  return path.join(base, v, "bin");
}

function user(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  for (const name of ["postgres", "nobody"]) {
    try { return { uid: Number(execFileSync("id", ["-u", name]).toString().trim()), gid: Number(execFileSync("id", ["-g", name]).toString().trim()) }; } catch { /* next */ }
  }
  return undefined;
}

/** Starts PostgreSQL again on `svc`'s data directory and port; stop it with the returned process. */
export async function restartPostgres(svc: Service, logDir: string): Promise<ManagedProcess> {
  const u = user();
  const logFile = path.join(logDir, "postgres-restarted.log");
  fs.writeFileSync(logFile, "", { flag: "a" });
  if (u) fs.chownSync(logFile, u.uid, u.gid);
  const proc = startProcess({
    name: "PostgreSQL (restarted)", command: path.join(binDir(), "postgres"), logFile, stopSignal: "SIGINT", ...(u ?? {}),
    args: ["-D", path.join(svc.dir, "data"), "-p", String(svc.port), "-k", svc.dir, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
      "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=200"],
  });
  await waitUntilReady(proc, async () => {
    const c = new pg.Client({ connectionString: svc.url, connectionTimeoutMillis: 1000 });
    try { await c.connect(); await c.query("select 1"); return true; } finally { await c.end().catch(() => {}); }
  }, 30_000);
  return proc;
}

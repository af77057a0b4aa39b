import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { StartError } from "./errors.ts";

export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  readonly stopSignal: NodeJS.Signals;
  /** stopSignal (default SIGTERM), then SIGKILL after `graceMs`; resolves once the process has exited. */
  stop(graceMs?: number): Promise<void>;
  exited(): boolean;
}

export interface StartOptions {
  name: string;
  command: string;
  args: string[];
  logFile: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Leave running after this Node process exits (make dev-up). */
  detached?: boolean;
  uid?: number;
  gid?: number;
  /** Signal asking for a prompt, clean exit (PostgreSQL wants SIGINT: SIGTERM waits for clients). */
  stopSignal?: NodeJS.Signals;
}

/** Starts a long-running child with stdout and stderr appended to a log file. */
export function startProcess(opts: StartOptions): ManagedProcess {
  if (!fs.existsSync(opts.command) && !opts.command.match(/^[\w.-]+$/)) {
    throw new StartError(`${opts.name}: executable ${opts.command} does not exist`);
  }
  const log = fs.openSync(opts.logFile, "a");
  let child: ChildProcess;
  try {
    child = spawn(opts.command, opts.args, {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: ["ignore", log, log],
      detached: true, // own process group, so stop() reaches its children too
      ...(opts.uid !== undefined ? { uid: opts.uid, gid: opts.gid } : {}),
    });
  } finally {
    fs.closeSync(log);
  }
  if (child.pid === undefined) throw new StartError(`${opts.name}: could not start ${opts.command}`);
  if (opts.detached) child.unref();
  let done = false;
  const exit = new Promise<void>((resolve) => child.once("exit", () => { done = true; resolve(); }));
  child.once("error", () => { done = true; });
  return {
    name: opts.name,
    pid: child.pid,
    logFile: opts.logFile,
    stopSignal: opts.stopSignal ?? "SIGTERM",
    exited: () => done,
    async stop(graceMs = 5000) {
      if (done) return;
      killGroup(child.pid!, opts.stopSignal ?? "SIGTERM");
      const timer = sleep(graceMs).then(() => "timeout" as const);
      if ((await Promise.race([exit, timer])) === "timeout") {
        killGroup(child.pid!, "SIGKILL");
        await exit;
      }
    },
  };
}

/** Signals a whole process group; a group that is already gone is not an error. */
export function killGroup(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    try { process.kill(pid, signal); return true; } catch { return false; }
  }
}

export function isAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

/** The last lines of a log, to explain why a process died. */
export function tail(file: string, lines = 15): string {
  try {
    return fs.readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

/**
 * Polls `ready` until it resolves true. Fails fast with the log's tail when the process exits,
 * and with a clear timeout message otherwise.
 */
export async function waitUntilReady(proc: ManagedProcess, ready: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 50; ; delay = Math.min(delay * 1.5, 500)) {
    if (proc.exited()) {
      throw new StartError(`${proc.name} exited during start-up; last lines of ${proc.logFile}:\n${tail(proc.logFile)}`);
    }
    if (await ready().catch(() => false)) return;
    if (Date.now() > deadline) {
      await proc.stop(1000);
      throw new StartError(`${proc.name} was not ready after ${timeoutMs / 1000}s; last lines of ${proc.logFile}:\n${tail(proc.logFile)}`);
    }
    await sleep(delay);
  }
}

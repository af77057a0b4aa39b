/**
 * A test host: a Linux network namespace joined to this one by a veth pair, with its own
 * non-loopback address. EndpointSlices refuse loopback addresses, so a Service-backed route needs a
 * backend on an address like this. Needs root (or CAP_NET_ADMIN) and iproute2; traffic stays
 * inside this machine.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { StartError } from "./errors.ts";
import { startProcess, type ManagedProcess } from "./process.ts";

export interface TestHost {
  readonly name: string;
  /** The host's address inside its namespace. */
  readonly ip: string;
  /** This side's address on the veth pair. */
  readonly gatewayIp: string;
  /** Starts a long-running process inside the namespace. */
  start(name: string, command: string, args: string[], logFile: string): ManagedProcess;
  destroy(): void;
}

function ip(args: string[]): void {
  try {
    execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] });
  } catch (err) {
    const e = err as { code?: string; stderr?: Buffer };
    if (e.code === "ENOENT") throw new StartError("iproute2 (`ip`) is not installed: run `make deps`");
    throw new StartError(`ip ${args.join(" ")} failed: ${e.stderr?.toString().trim() ?? String(err)} (network namespaces need root)`);
  }
}

let counter = 0;

/**
 * Creates a namespace with address 10.251.<n>.2/30 (this side: .1). `index` picks <n>; distinct
 * hosts in one run need distinct indexes (default: a per-process counter offset by the pid).
 */
export function createTestHost(index = (process.pid % 200) + counter++): TestHost {
  const n = index % 250;
  const name = `clx${process.pid % 10000}-${n}`;
  const host = `clh${process.pid % 10000}-${n}`.slice(0, 15);
  const peer = `cln${process.pid % 10000}-${n}`.slice(0, 15);
  const gatewayIp = `10.251.${n}.1`;
  const hostIp = `10.251.${n}.2`;
  const destroy = () => {
    try { execFileSync("ip", ["link", "del", host], { stdio: "ignore" }); } catch { /* already gone */ }
    try { execFileSync("ip", ["netns", "del", name], { stdio: "ignore" }); } catch { /* already gone */ }
  };
  destroy();
  try {
    ip(["netns", "add", name]);
    ip(["link", "add", host, "type", "veth", "peer", "name", peer]);
    ip(["link", "set", peer, "netns", name]);
    ip(["addr", "add", `${gatewayIp}/30`, "dev", host]);
    ip(["link", "set", host, "up"]);
    ip(["netns", "exec", name, "ip", "addr", "add", `${hostIp}/30`, "dev", peer]);
    ip(["netns", "exec", name, "ip", "link", "set", peer, "up"]);
    ip(["netns", "exec", name, "ip", "link", "set", "lo", "up"]);
  } catch (err) {
    destroy();
    throw err;
  }
  return {
    name, ip: hostIp, gatewayIp,
    start(procName, command, args, logFile) {
      fs.mkdirSync(path.dirname(logFile), { recursive: true });
      return startProcess({ name: procName, command: "ip", args: ["netns", "exec", name, command, ...args], logFile });
    },
    destroy,
  };
}

/** Whether this process may create network namespaces (root with iproute2). */
export function canCreateTestHosts(): boolean {
  return process.getuid?.() === 0 && ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip"].some((p) => fs.existsSync(p));
}

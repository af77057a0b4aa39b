/**
 * stripe-mock (Stripe's official API mock, spec embedded, offline) on a free loopback port, built
 * once from its Go module by testenv/scripts/build-stripe-mock.sh.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { StartError } from "./errors.ts";
import { freePort, isListening } from "./ports.ts";
import { startProcess, waitUntilReady, type ManagedProcess } from "./process.ts";

export interface StripeMock {
  /** e.g. http://127.0.0.1:12111 (STRIPE_API_BASE). */
  readonly url: string;
  readonly port: number;
  readonly process: ManagedProcess;
  stop(): Promise<void>;
}

const script = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../scripts/build-stripe-mock.sh");

/** Path of the stripe-mock binary, building it on first use. */
export function ensureStripeMock(): string {
  try {
    return execFileSync("bash", [script], { stdio: ["ignore", "pipe", "inherit"] }).toString().trim();
  } catch {
    throw new StartError("building stripe-mock failed (see above); it needs Go and the Go module proxy");
  }
}

export async function startStripeMock(opts: { logDir?: string } = {}): Promise<StripeMock> {
  const bin = ensureStripeMock();
  const port = await freePort();
  const logDir = opts.logDir ?? fs.mkdtempSync(path.join(os.tmpdir(), "crosslogic-stripe-mock-"));
  const proc = startProcess({
    name: "stripe-mock", command: bin, logFile: path.join(logDir, "stripe-mock.log"),
    args: ["-http-addr", `127.0.0.1:${port}`],
  });
  await waitUntilReady(proc, () => isListening(port), 30_000);
  return { url: `http://127.0.0.1:${port}`, port, process: proc, stop: () => proc.stop() };
}

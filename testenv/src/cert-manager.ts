/**
 * cert-manager's real certificate controllers, out of cluster, against the local API server (whose
 * cert-manager CRDs the control plane installs). Built once from its Go module by
 * testenv/scripts/build-cert-manager.sh.
 */
import { execFileSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { StartError } from "./errors.ts";
import { startProcess, waitUntilReady, type ManagedProcess } from "./process.ts";

const script = fileURLToPath(new URL("../scripts/build-cert-manager.sh", import.meta.url));

/** Path of the controller binary, building it on first use (a few minutes, once). */
export function ensureCertManagerController(): string {
  try {
    return execFileSync("bash", [script], { stdio: ["ignore", "pipe", "inherit"] }).toString().trim();
  } catch {
    throw new StartError("building cert-manager's controller failed (see above); it needs Go and the Go module proxy");
  }
}

/** Starts the controllers; resolves once they report running. */
export async function startCertManager(opts: { kubeconfig: string; logDir: string; clusterResourceNamespace?: string }): Promise<ManagedProcess> {
  const bin = ensureCertManagerController();
  const logFile = path.join(opts.logDir, "cert-manager.log");
  const proc = startProcess({
    name: "cert-manager controller", command: bin, logFile,
    args: ["--kubeconfig", opts.kubeconfig, "--cluster-resource-namespace", opts.clusterResourceNamespace ?? "cert-manager"],
  });
  const { readFile } = await import("node:fs/promises");
  await waitUntilReady(proc, async () => (await readFile(logFile, "utf8")).includes("cert-manager-controller: running"), 30_000);
  return proc;
}

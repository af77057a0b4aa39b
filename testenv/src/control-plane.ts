import { execFile, execFileSync } from "node:child_process";
import fs from "node:fs";
import https from "node:https";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import YAML from "yaml";
import { writeControlPlaneCerts, type ControlPlaneCerts } from "./certs.ts";
import { StartError } from "./errors.ts";
import { waitForCrds } from "./kube.ts";
import { assertPortFree, freePort } from "./ports.ts";
import { startProcess, waitUntilReady, type ManagedProcess } from "./process.ts";

const execFileAsync = promisify(execFile);
const buildScript = fileURLToPath(new URL("../scripts/build-control-plane.sh", import.meta.url));

export interface ControlPlaneOptions {
  /** Working directory for data, certificates and logs (created; removed by stop() unless keepData). */
  dir: string;
  logDir?: string;
  /** Fixed ports (default: free ones). */
  etcdPort?: number;
  apiServerPort?: number;
  detached?: boolean;
  /** Install cert-manager's CRDs (default true). */
  certManagerCrds?: boolean;
  /** Extra kube-apiserver flags. */
  apiServerArgs?: string[];
}

export interface ControlPlane {
  readonly server: string;
  readonly kubeconfig: string;
  readonly binDir: string;
  readonly processes: ManagedProcess[];
  /** Runs the version-matched kubectl against this control plane; throws with its stderr on failure. */
  kubectl(args: string[], input?: string): Promise<string>;
  /** Stops and starts kube-apiserver alone (etcd keeps the data): an API-server restart. */
  restartApiServer(downtimeMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** Builds (once, cached by version) and returns the directory holding etcd, kube-apiserver, kubectl. */
export function ensureControlPlaneBinaries(): string {
  try {
    return execFileSync("bash", [buildScript], { stdio: ["ignore", "pipe", "inherit"] }).toString().trim();
  } catch {
    throw new StartError("building the local control plane binaries failed (see the build output above)");
  }
}

function getJson(url: string, certs: ControlPlaneCerts): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, {
      ca: fs.readFileSync(certs.caCert), cert: fs.readFileSync(certs.adminCert), key: fs.readFileSync(certs.adminKey), timeout: 2000,
    }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => { body += c; });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
  });
}

/**
 * Starts etcd and kube-apiserver on loopback with throwaway certificates and an admin identity
 * (client certificate in system:masters), writes a kubeconfig, and installs cert-manager's CRDs.
 * There is no controller-manager, scheduler or kubelet: objects are stored and validated, no pods run.
 */
export async function startControlPlane(opts: ControlPlaneOptions): Promise<ControlPlane> {
  const binDir = ensureControlPlaneBinaries();
  const logDir = opts.logDir ?? path.join(opts.dir, "logs");
  fs.mkdirSync(logDir, { recursive: true });
  const etcdPort = opts.etcdPort ?? (await freePort());
  const peerPort = await freePort();
  const apiPort = opts.apiServerPort ?? (await freePort());
  await assertPortFree(etcdPort, "etcd");
  await assertPortFree(apiPort, "kube-apiserver");

  const certs = writeControlPlaneCerts(path.join(opts.dir, "certs"));
  const server = `https://127.0.0.1:${apiPort}`;
  const processes: ManagedProcess[] = [];
  const stopAll = async () => { for (const p of [...processes].reverse()) await p.stop(); };

  try {
    const etcd = startProcess({
      name: "etcd", command: path.join(binDir, "etcd"), logFile: path.join(logDir, "etcd.log"), detached: opts.detached,
      args: [
        "--name=default", `--data-dir=${path.join(opts.dir, "etcd")}`,
        `--listen-client-urls=http://127.0.0.1:${etcdPort}`, `--advertise-client-urls=http://127.0.0.1:${etcdPort}`,
        `--listen-peer-urls=http://127.0.0.1:${peerPort}`, `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
        `--initial-cluster=default=http://127.0.0.1:${peerPort}`, "--unsafe-no-fsync", "--log-level=warn",
      ],
    });
    processes.push(etcd);
    await waitUntilReady(etcd, async () => {
      const res = await fetch(`http://127.0.0.1:${etcdPort}/health`, { signal: AbortSignal.timeout(1000) });
      return res.ok && ((await res.json()) as { health?: string }).health === "true";
    }, 30_000);

    const apiArgs = [
      `--etcd-servers=http://127.0.0.1:${etcdPort}`, `--cert-dir=${path.join(opts.dir, "certs")}`,
      `--tls-cert-file=${certs.serverCert}`, `--tls-private-key-file=${certs.serverKey}`, `--client-ca-file=${certs.caCert}`,
      `--secure-port=${apiPort}`, "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
      "--service-cluster-ip-range=10.96.0.0/16", "--authorization-mode=RBAC", "--allow-privileged=true",
      `--service-account-key-file=${certs.serviceAccountPub}`, `--service-account-signing-key-file=${certs.serviceAccountKey}`,
      "--service-account-issuer=https://kubernetes.default.svc.cluster.local", "--endpoint-reconciler-type=none",
      ...(opts.apiServerArgs ?? []),
    ];
    const startApi = () => startProcess({
      name: "kube-apiserver", command: path.join(binDir, "kube-apiserver"), args: apiArgs,
      logFile: path.join(logDir, "kube-apiserver.log"), detached: opts.detached,
    });
    const waitApi = (p: ManagedProcess) => waitUntilReady(p, async () => {
      const ready = await getJson(`${server}/readyz`, certs);
      if (ready.status !== 200 || ready.body !== "ok") return false;
      return (await getJson(`${server}/api/v1/namespaces/default`, certs)).status === 200;
    }, 90_000);
    let api = startApi();
    processes.push(api);
    await waitApi(api);

    const kubeconfig = path.join(opts.dir, "kubeconfig");
    fs.writeFileSync(kubeconfig, YAML.stringify({
      apiVersion: "v1", kind: "Config", "current-context": "crosslogic-local", preferences: {},
      clusters: [{ name: "crosslogic-local", cluster: { server, "certificate-authority-data": b64(certs.caCert) } }],
      users: [{ name: "crosslogic-admin", user: { "client-certificate-data": b64(certs.adminCert), "client-key-data": b64(certs.adminKey) } }],
      contexts: [{ name: "crosslogic-local", context: { cluster: "crosslogic-local", user: "crosslogic-admin", namespace: "default" } }],
    }), { mode: 0o600 });

    const kubectl = async (args: string[], input?: string): Promise<string> => {
      const child = execFileAsync(path.join(binDir, "kubectl"), [`--kubeconfig=${kubeconfig}`, ...args], { maxBuffer: 64 << 20 });
      if (input !== undefined) { child.child.stdin?.end(input); }
      try {
        return (await child).stdout;
      } catch (err) {
        const e = err as { stderr?: string; message: string };
        throw new Error(`kubectl ${args.join(" ")} failed: ${e.stderr?.trim() || e.message}`, { cause: err });
      }
    };

    if (opts.certManagerCrds !== false) {
      await kubectl(["apply", "--server-side", "-f", path.join(binDir, "cert-manager-crds")]);
      await waitForCrds(kubectl, ["certificates.cert-manager.io", "issuers.cert-manager.io", "clusterissuers.cert-manager.io"]);
    }

    return {
      server, kubeconfig, binDir, processes, kubectl,
      async restartApiServer(downtimeMs = 0) {
        await api.stop();
        if (downtimeMs) await new Promise((r) => setTimeout(r, downtimeMs));
        const next = startApi();
        processes[processes.indexOf(api)] = next;
        api = next;
        await waitApi(api);
      },
      async stop() {
        await stopAll();
        fs.rmSync(path.join(opts.dir, "etcd"), { recursive: true, force: true });
      },
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

function b64(file: string): string {
  return fs.readFileSync(file).toString("base64");
}

/**
 * Test helpers for the operator against a real API server: kubectl, the operator as a child process
 * (exactly as users run it), a counting HTTP proxy in front of the API server, and polling.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";
import { freePort } from "@crosslogic/testenv";
import { kube, waitFor, waitForCrds, type Kube } from "@crosslogic/testenv/kube";

export { kube, waitFor, type Kube };

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
export const CRD_DIR = path.join(root, "crds/generated");

export async function installCrds(k: Kube): Promise<void> {
  await k.ok(["apply", "--server-side", "--force-conflicts", "-f", CRD_DIR]);
  await waitForCrds(k.ok, ["tenants.crosslogic.ai", "environments.crosslogic.ai", "apikeys.crosslogic.ai"]);
}

export interface OperatorProcess {
  readonly port: number;
  readonly lines: string[];
  readonly child: ChildProcess;
  audit(action: string): Array<Record<string, unknown>>;
  metric(name: string): Promise<number>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export async function startOperatorProcess(env: Record<string, string>): Promise<OperatorProcess> {
  const port = await freePort();
  const lines: string[] = [];
  const child = spawn(process.execPath, [path.join(root, "operator/src/main.ts")], {
    env: { PATH: process.env.PATH ?? "", HTTP_HOST: "127.0.0.1", HTTP_PORT: String(port), LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let buf = "";
  const onData = (c: Buffer) => {
    buf += c.toString("utf8");
    let i: number;
    while ((i = buf.indexOf("\n")) >= 0) { lines.push(buf.slice(0, i)); buf = buf.slice(i + 1); }
  };
  child.stdout.on("data", onData);
  child.stderr.on("data", onData);
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  await waitFor("the operator's health endpoint", async () => {
    if (child.exitCode !== null) throw new Error(`operator exited with ${child.exitCode}:\n${lines.join("\n")}`);
    const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(1000) });
    return res.ok;
  }, 20_000);
  return {
    port, lines, child,
    audit: (action) => lines.flatMap((l) => {
      try {
        const o = JSON.parse(l) as Record<string, unknown>;
        return o.log === "audit" && o.action === action ? [o] : [];
      } catch { return []; }
    }),
    async metric(name) {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      return text.split("\n").filter((l) => l.startsWith(name)).reduce((sum, l) => sum + Number(l.split(" ").at(-1)), 0);
    },
    async stop(signal = "SIGTERM") {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
}

export interface CountingProxy {
  kubeconfig: string;
  requests: Array<{ method: string; path: string; userAgent: string }>;
  writes(): Array<{ method: string; path: string }>;
  close(): Promise<void>;
}

/**
 * A plain-HTTP proxy on loopback that forwards to the API server with the admin credentials of
 * `kubeconfig` and records every request (method, path). The operator is pointed at it through a
 * kubeconfig of its own, so the test sees exactly the requests the operator makes.
 */
export async function startCountingProxy(kubeconfig: string): Promise<CountingProxy> {
  const cfg = YAML.parse(fs.readFileSync(kubeconfig, "utf8")) as {
    clusters: Array<{ cluster: { server: string; "certificate-authority-data": string } }>;
    users: Array<{ user: { "client-certificate-data": string; "client-key-data": string } }>;
  };
  const target = new URL(cfg.clusters[0]!.cluster.server);
  const b64 = (s: string) => Buffer.from(s, "base64");
  const agent = new https.Agent({
    keepAlive: true, ca: b64(cfg.clusters[0]!.cluster["certificate-authority-data"]),
    cert: b64(cfg.users[0]!.user["client-certificate-data"]), key: b64(cfg.users[0]!.user["client-key-data"]),
  });
  const requests: CountingProxy["requests"] = [];
  const server = http.createServer((req, res) => {
    requests.push({ method: req.method ?? "", path: req.url ?? "", userAgent: String(req.headers["user-agent"] ?? "") });
    const up = https.request({ hostname: target.hostname, port: target.port, path: req.url, method: req.method, headers: { ...req.headers, host: target.host }, agent }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    up.on("error", () => { if (!res.headersSent) res.writeHead(502); res.end(); });
    req.pipe(up);
    res.on("close", () => up.destroy());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "counting-proxy-"));
  const proxyConfig = path.join(dir, "kubeconfig");
  fs.writeFileSync(proxyConfig, YAML.stringify({
    apiVersion: "v1", kind: "Config", "current-context": "proxy",
    clusters: [{ name: "proxy", cluster: { server: `http://127.0.0.1:${port}`, "insecure-skip-tls-verify": true } }],
    users: [{ name: "proxy", user: {} }],
    contexts: [{ name: "proxy", context: { cluster: "proxy", user: "proxy" } }],
  }));
  return {
    kubeconfig: proxyConfig, requests,
    writes: () => requests.filter((r) => !["GET", "HEAD", "OPTIONS"].includes(r.method)),
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      agent.destroy();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

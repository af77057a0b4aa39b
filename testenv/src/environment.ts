import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startControlPlane, type ControlPlane } from "./control-plane.ts";
import { freePort, isListening } from "./ports.ts";
import { isAlive, killGroup, startProcess, waitUntilReady, type ManagedProcess } from "./process.ts";
import { startPostgres, startRedis, type Service } from "./services.ts";

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));

export interface LocalEnvironment {
  /** Variables a client needs (the contents of .dev/env). */
  vars: Record<string, string>;
  controlPlane: ControlPlane;
  postgres: Service;
  redis: Service;
  modelServer: ManagedProcess;
  stop(): Promise<void>;
}

export interface EnvironmentOptions {
  dir: string;
  detached?: boolean;
  log?: (msg: string) => void;
}

/** The persisted record of a detached environment, so `down` can stop exactly what `up` started. */
interface State {
  processes: { name: string; pid: number; signal: NodeJS.Signals }[];
  ports: number[];
  dirs: string[];
}

/** Starts the local control plane, PostgreSQL, Redis and the sample model server. */
export async function startEnvironment(opts: EnvironmentOptions): Promise<LocalEnvironment> {
  const log = opts.log ?? (() => {});
  const logDir = path.join(opts.dir, "logs");
  fs.mkdirSync(logDir, { recursive: true });
  const started: { stop(): Promise<void> }[] = [];
  const stopAll = async () => { for (const s of started.reverse()) await s.stop().catch(() => {}); };
  try {
    log("starting the local Kubernetes control plane (etcd + kube-apiserver)…");
    const controlPlane = await startControlPlane({ dir: path.join(opts.dir, "control-plane"), logDir, detached: opts.detached });
    started.push(controlPlane);
    log(`  API server ${controlPlane.server}`);
    log("starting PostgreSQL…");
    const postgres = await startPostgres({ logDir, detached: opts.detached });
    started.push(postgres);
    log(`  ${postgres.url}`);
    log("starting Redis…");
    const redis = await startRedis({ logDir, detached: opts.detached });
    started.push(redis);
    log(`  ${redis.url}`);
    log("starting the sample model server…");
    const modelPort = await freePort();
    const modelServer = startProcess({
      name: "model server", command: process.execPath, detached: opts.detached, logFile: path.join(logDir, "model-server.log"),
      args: [path.join(repoRoot, "model-server/src/main.ts"), "--port", String(modelPort), "--tokens-per-second", "50"],
    });
    started.push(modelServer);
    await waitUntilReady(modelServer, () => isListening(modelPort), 15_000);
    log(`  http://127.0.0.1:${modelPort}`);

    const kubeconfig = path.join(opts.dir, "kubeconfig");
    fs.copyFileSync(controlPlane.kubeconfig, kubeconfig);
    fs.chmodSync(kubeconfig, 0o600);
    const vars: Record<string, string> = {
      KUBECONFIG: kubeconfig,
      KUBECTL: path.join(controlPlane.binDir, "kubectl"),
      DATABASE_URL: postgres.url,
      REDIS_URL: redis.url,
      MODEL_URL: `http://127.0.0.1:${modelPort}`,
      ADMIN_TOKEN: randomBytes(32).toString("base64url"),
      STRIPE_WEBHOOK_SECRET: `whsec_${randomBytes(24).toString("base64url")}`,
    };
    const state: State = {
      processes: [...controlPlane.processes, postgres.process, redis.process, modelServer].map((p) => ({ name: p.name, pid: p.pid, signal: p.stopSignal })),
      ports: [new URL(controlPlane.server).port, postgres.port, redis.port, modelPort].map(Number),
      dirs: [postgres.dir, redis.dir, path.join(opts.dir, "control-plane", "etcd")],
    };
    fs.writeFileSync(path.join(opts.dir, "state.json"), JSON.stringify(state, null, 2));
    writeEnvFile(path.join(opts.dir, "env"), vars);
    return { vars, controlPlane, postgres, redis, modelServer, stop: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** Writes KEY=value lines that both `source` and Make's `include` accept. */
export function writeEnvFile(file: string, vars: Record<string, string>): void {
  const body = Object.entries(vars).map(([k, v]) => `${k}=${v}`).join("\n") + "\n";
  fs.writeFileSync(file, body, { mode: 0o600 });
}

/** Stops a detached environment from its state file; returns the names of what it stopped. */
export async function stopDetached(dir: string): Promise<string[]> {
  const file = path.join(dir, "state.json");
  if (!fs.existsSync(file)) return [];
  const state = JSON.parse(fs.readFileSync(file, "utf8")) as State;
  const stopped: string[] = [];
  for (const p of [...state.processes].reverse()) {
    if (!isAlive(p.pid)) continue;
    killGroup(p.pid, p.signal);
    const deadline = Date.now() + 10_000;
    while (isAlive(p.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    if (isAlive(p.pid)) killGroup(p.pid, "SIGKILL");
    stopped.push(p.name);
  }
  for (const port of state.ports) {
    for (let i = 0; i < 50 && (await isListening(port)); i++) await new Promise((r) => setTimeout(r, 100));
  }
  for (const d of state.dirs) fs.rmSync(d, { recursive: true, force: true });
  fs.rmSync(file);
  return stopped;
}

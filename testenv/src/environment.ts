import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";
import { DEFAULT_SYSTEM_NAMESPACE } from "@crosslogic/crds";
import { startControlPlane, type ControlPlane } from "./control-plane.ts";
import { StartError } from "./errors.ts";
import { freePort, isListening } from "./ports.ts";
import { isAlive, killGroup, startProcess, waitUntilReady, type ManagedProcess } from "./process.ts";
import { devOverrides, kubectl, startProduct, type Product } from "./product.ts";
import { startPostgres, startRedis, type Service } from "./services.ts";

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
export const SAMPLES_FILE = path.join(repoRoot, "config/samples/quickstart.yaml");

export interface LocalEnvironment {
  /** Variables a client needs (the contents of .dev/env). */
  vars: Record<string, string>;
  controlPlane: ControlPlane;
  postgres: Service;
  redis: Service;
  modelServer: ManagedProcess;
  /** The operator and the gateway (when started with `product`). */
  product?: Product;
  /** The sample tenant and its freshly minted key (when started with `product`). */
  sample?: Sample;
  stop(): Promise<void>;
}

/** The sample tenant `make dev` applies (config/samples/quickstart.yaml) and its key. */
export interface Sample {
  tenant: string;
  environment: string;
  apiKey: string;
  model: string;
  key: string;
}

export interface EnvironmentOptions {
  dir: string;
  detached?: boolean;
  /** Also run the product (migrated database, operator, gateway) and apply the sample tenant (make dev). */
  product?: boolean;
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
    const processes = [...controlPlane.processes, postgres.process, redis.process, modelServer];
    const ports = [new URL(controlPlane.server).port, postgres.port, redis.port, modelPort].map(Number);
    let product: Product | undefined;
    let sample: Sample | undefined;
    if (opts.product) {
      product = await startProduct({
        kubeconfig, kubectl: vars.KUBECTL!, databaseUrl: postgres.url, redisUrl: redis.url, adminToken: vars.ADMIN_TOKEN!,
        systemNamespace: DEFAULT_SYSTEM_NAMESPACE, logDir, detached: opts.detached, log,
        // Billing's usage reporting calls Stripe only when the developer exports STRIPE_SECRET_KEY.
        stripeWebhookSecret: vars.STRIPE_WEBHOOK_SECRET!,
        billingEnv: {
          ...Object.fromEntries((["STRIPE_SECRET_KEY", "STRIPE_API_BASE"] as const).flatMap((k) => (process.env[k] ? [[k, process.env[k]]] : []))),
          ...devOverrides(process.env, "DEV_BILLING_"),
        },
        gatewayEnv: devOverrides(process.env, "DEV_GATEWAY_"), operatorEnv: devOverrides(process.env, "DEV_OPERATOR_"),
      });
      started.push(product);
      processes.push(product.operator, product.gateway, ...(product.billing ? [product.billing] : []));
      ports.push(...product.ports);
      vars.GATEWAY_URL = product.gatewayUrl;
      vars.ADMIN_URL = product.adminUrl;
      if (product.billingUrl) vars.BILLING_URL = product.billingUrl;
      log("applying the sample tenant (config/samples/quickstart.yaml) and waiting for its key…");
      sample = await applySamples({ kubeconfig, kubectl: vars.KUBECTL! }, vars.MODEL_URL!);
      const [key, gatewayUrl] = [sample.key, product.gatewayUrl];
      const outcome = await poll("the gateway to accept the sample key", 30_000, async () => {
        const res = await fetch(`${gatewayUrl}/v1/models`, { headers: { authorization: `Bearer ${key}` }, signal: AbortSignal.timeout(2000) });
        return sampleKeyOutcome(res.status, await res.text());
      });
      log(outcome === "accepted"
        ? `  ApiKey ${sample.apiKey} in tenant-${sample.tenant}: ${sample.key.slice(0, 18)}… (accepted by the gateway)`
        : `  ApiKey ${sample.apiKey} in tenant-${sample.tenant}: ${sample.key.slice(0, 18)}… (not checked: the gateway refuses this machine's address, 403 address_blocked — it is on one of the gateway's THREAT_FEEDS)`);
    }
    const state: State = {
      processes: processes.map((p) => ({ name: p.name, pid: p.pid, signal: p.stopSignal })),
      ports,
      dirs: [postgres.dir, redis.dir, path.join(opts.dir, "control-plane", "etcd")],
    };
    fs.writeFileSync(path.join(opts.dir, "state.json"), JSON.stringify(state, null, 2));
    writeEnvFile(path.join(opts.dir, "env"), vars);
    return { vars, controlPlane, postgres, redis, modelServer, ...(product ? { product } : {}), ...(sample ? { sample } : {}), stop: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/**
 * Applies config/samples/quickstart.yaml (its `${MODEL_URL}` replaced by `modelUrl`) and waits until
 * the operator has minted the ApiKey's key into its Secret.
 */
export async function applySamples(kube: { kubeconfig: string; kubectl: string }, modelUrl: string): Promise<Sample> {
  const text = fs.readFileSync(SAMPLES_FILE, "utf8").replaceAll("${MODEL_URL}", modelUrl);
  type Doc = { kind: string; metadata: { name: string; namespace?: string }; spec: { routes?: { model: string }[] } };
  const docs = YAML.parseAllDocuments(text).map((d) => d.toJS() as Doc);
  const find = (kind: string) => {
    const d = docs.find((x) => x.kind === kind);
    if (!d) throw new StartError(`${SAMPLES_FILE} has no ${kind}`);
    return d;
  };
  const [tenant, environment, apiKey] = [find("Tenant"), find("Environment"), find("ApiKey")];
  const ns = apiKey.metadata.namespace ?? "default";
  // The Environment and the ApiKey live in the tenant's namespace, which the operator creates: apply until all land.
  const key = await poll("the sample ApiKey's key", 60_000, async () => {
    await kubectl(kube, ["apply", "-f", "-"], text);
    const ak = JSON.parse(await kubectl(kube, ["get", "apikey", apiKey.metadata.name, "-n", ns, "-o", "json"])) as { status?: { phase?: string; secretName?: string } };
    if (ak.status?.phase !== "Active" || !ak.status.secretName) return undefined;
    const data = await kubectl(kube, ["get", "secret", ak.status.secretName, "-n", ns, "-o", "jsonpath={.data.key}"]);
    return Buffer.from(data, "base64").toString("utf8") || undefined;
  });
  return { tenant: tenant.metadata.name, environment: environment.metadata.name, apiKey: apiKey.metadata.name, model: environment.spec.routes?.[0]?.model ?? "", key };
}

/**
 * What the gateway's answer to the sample key's first request means for `make dev`: accepted; this
 * machine's own address on one of the gateway's threat feeds (DEV_GATEWAY_THREAT_FEEDS: refused
 * before the key is looked at, and waiting will not change it); anything else throws (retried
 * until the key is published).
 */
export function sampleKeyOutcome(status: number, body: string): "accepted" | "address blocked" {
  if (status >= 200 && status < 300) return "accepted";
  if (status === 403 && body.includes('"address_blocked"')) return "address blocked";
  throw new Error(`GET /v1/models answered ${status}: ${body.slice(0, 200)}`);
}

async function poll<T>(what: string, timeoutMs: number, fn: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new StartError(`timed out after ${timeoutMs / 1000}s waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
    await new Promise((r) => setTimeout(r, 500));
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

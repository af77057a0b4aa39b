/**
 * The product on top of a running local environment: the CrossLogic CRDs applied, the database
 * migrated, and the operator and the gateway started as real processes (`node operator/src/main.ts`,
 * `node gateway/src/main.ts`), exactly as users run them outside a cluster; billing
 * (`node billing/src/main.ts`) too when a Stripe webhook secret is given. Used by `make dev`
 * and by the full-system e2e suite.
 */
import { GATEWAY_NODE_ARGS } from "../../gateway/src/node-args.ts";
import { execFile } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { StartError } from "./errors.ts";
import { waitForCrds } from "./kube.ts";
import { freePort } from "./ports.ts";
import { startProcess, waitUntilReady, type ManagedProcess } from "./process.ts";

const execFileAsync = promisify(execFile);
export const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
export const CRD_DIR = path.join(repoRoot, "crds/generated");

export interface ProductOptions {
  kubeconfig: string;
  kubectl: string;
  databaseUrl: string;
  redisUrl: string;
  /** X-Admin-Token of the gateway's admin port (≥ 32 characters). */
  adminToken: string;
  /** Namespace of the gateway-config Secrets and the operator's Lease (created if missing). */
  systemNamespace: string;
  logDir: string;
  detached?: boolean;
  /** Prefix of the gateway's Redis keys (default `clgw:`); tests sharing one Redis pick their own. */
  redisKeyPrefix?: string;
  /** Extra variables for the gateway (e.g. TLS_CERT_DIR) and the operator (e.g. DEFAULT_ISSUER_NAME). */
  gatewayEnv?: Record<string, string>;
  operatorEnv?: Record<string, string>;
  /** Start billing with its Stripe webhook endpoint verifying this secret (whsec_…); no billing when unset. */
  stripeWebhookSecret?: string;
  /** Extra variables for billing (e.g. STRIPE_SECRET_KEY: usage reporting is off without it). */
  billingEnv?: Record<string, string>;
  log?: (msg: string) => void;
}

export interface Product {
  readonly gatewayUrl: string;
  readonly adminUrl: string;
  /** The operator's /healthz, /readyz and /metrics. */
  readonly operatorUrl: string;
  readonly operator: ManagedProcess;
  readonly gateway: ManagedProcess;
  /** Billing (Stripe webhooks on POST /stripe/webhook, /healthz /readyz /metrics), when started. */
  readonly billingUrl?: string;
  readonly billing?: ManagedProcess;
  readonly ports: number[];
  stop(): Promise<void>;
}

/** Runs kubectl against `kubeconfig`; throws with its stderr on failure. */
export async function kubectl(opts: { kubeconfig: string; kubectl: string }, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(opts.kubectl, [`--kubeconfig=${opts.kubeconfig}`, ...args], { maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new StartError(`kubectl ${args.join(" ")} failed: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** Applies the CrossLogic CRDs (server-side, idempotent) and waits until they are served. */
export async function installCrds(opts: { kubeconfig: string; kubectl: string }): Promise<void> {
  await kubectl(opts, ["apply", "--server-side", "--force-conflicts", "-f", CRD_DIR]);
  await waitForCrds((args) => kubectl(opts, args), ["tenants.crosslogic.ai", "environments.crosslogic.ai", "apikeys.crosslogic.ai"]);
}

/** Applies pending migrations with the data package's CLI (what `make migrate` runs). */
export async function migrateDatabase(databaseUrl: string): Promise<string> {
  try {
    const { stdout } = await execFileAsync(process.execPath, ["--no-warnings", path.join(repoRoot, "prisma/src/cli.ts"), "migrate"], {
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/", DATABASE_URL: databaseUrl }, timeout: 120_000,
    });
    return stdout.trim();
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new StartError(`database migration failed: ${e.stderr?.trim() || e.message}`);
  }
}

async function ok(url: string, headers: Record<string, string> = {}): Promise<boolean> {
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(1000) });
  await res.body?.cancel();
  return res.ok;
}

/**
 * Extra settings for one component from the developer's environment: `DEV_GATEWAY_THREAT_FEEDS=…
 * make dev` starts the gateway with `THREAT_FEEDS=…` (prefixes DEV_GATEWAY_, DEV_OPERATOR_,
 * DEV_BILLING_). They apply after the environment's own settings, so they can also replace them.
 */
export function devOverrides(env: Record<string, string | undefined>, prefix: "DEV_GATEWAY_" | "DEV_OPERATOR_" | "DEV_BILLING_"): Record<string, string> {
  return Object.fromEntries(Object.entries(env).flatMap(([k, v]) => (k.startsWith(prefix) && k.length > prefix.length && v !== undefined ? [[k.slice(prefix.length), v]] : [])));
}

/** CRDs, migrations, system namespace, then the operator and the gateway (ready when this resolves). */
export async function startProduct(opts: ProductOptions): Promise<Product> {
  const log = opts.log ?? (() => {});
  const kube = { kubeconfig: opts.kubeconfig, kubectl: opts.kubectl };
  log("applying the CrossLogic CRDs…");
  await installCrds(kube);
  await kubectl(kube, ["apply", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: opts.systemNamespace } }));
  log("migrating the database…");
  log(`  ${await migrateDatabase(opts.databaseUrl)}`);

  const base = { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/", LOG_LEVEL: "info" };
  const started: ManagedProcess[] = [];
  const stop = async () => { for (const p of started.reverse()) await p.stop(10_000).catch(() => {}); };
  try {
    log("starting the operator…");
    const operatorPort = await freePort();
    const operator = startProcess({
      name: "operator", command: process.execPath, args: [path.join(repoRoot, "operator/src/main.ts")],
      logFile: path.join(opts.logDir, "operator.log"), detached: opts.detached,
      env: {
        ...base, KUBECONFIG: opts.kubeconfig, SYSTEM_NAMESPACE: opts.systemNamespace, POD_NAME: `operator-${process.pid}`,
        HTTP_HOST: "127.0.0.1", HTTP_PORT: String(operatorPort), REDIS_URL: opts.redisUrl, DATABASE_URL: opts.databaseUrl, ...opts.operatorEnv,
      },
    });
    started.push(operator);
    const operatorUrl = `http://127.0.0.1:${operatorPort}`;
    await waitUntilReady(operator, () => ok(`${operatorUrl}/readyz`), 60_000);
    log(`  ${operatorUrl} (/healthz /readyz /metrics)`);

    log("starting the gateway…");
    const [port, adminPort] = [await freePort(), await freePort()];
    const gateway = startProcess({
      name: "gateway", command: process.execPath, args: [...GATEWAY_NODE_ARGS, path.join(repoRoot, "gateway/src/main.ts")],
      logFile: path.join(opts.logDir, "gateway.log"), detached: opts.detached,
      env: {
        ...base, HOST: "127.0.0.1", PORT: String(port), ADMIN_HOST: "127.0.0.1", ADMIN_PORT: String(adminPort), ADMIN_TOKEN: opts.adminToken,
        REDIS_URL: opts.redisUrl, DATABASE_URL: opts.databaseUrl, CONFIG_SOURCE: "kubernetes", SYSTEM_NAMESPACE: opts.systemNamespace,
        KUBECONFIG: opts.kubeconfig, ...(opts.redisKeyPrefix ? { REDIS_KEY_PREFIX: opts.redisKeyPrefix } : {}), ...opts.gatewayEnv,
      },
    });
    started.push(gateway);
    const adminUrl = `http://127.0.0.1:${adminPort}`;
    await waitUntilReady(gateway, () => ok(`${adminUrl}/readyz`), 60_000);
    const gatewayUrl = `${opts.gatewayEnv?.TLS_CERT_DIR ? "https" : "http"}://127.0.0.1:${port}`;
    log(`  ${gatewayUrl} (admin ${adminUrl})`);
    const ports = [operatorPort, port, adminPort];
    if (!opts.stripeWebhookSecret) return { gatewayUrl, adminUrl, operatorUrl, operator, gateway, ports, stop };

    log("starting billing…");
    const billingPort = await freePort();
    const billing = startProcess({
      name: "billing", command: process.execPath, args: [path.join(repoRoot, "billing/src/main.ts")],
      logFile: path.join(opts.logDir, "billing.log"), detached: opts.detached,
      env: {
        ...base, HOST: "127.0.0.1", PORT: String(billingPort), DATABASE_URL: opts.databaseUrl, KUBECONFIG: opts.kubeconfig,
        STRIPE_WEBHOOK_SECRET: opts.stripeWebhookSecret, ...opts.billingEnv,
      },
    });
    started.push(billing);
    const billingUrl = `http://127.0.0.1:${billingPort}`;
    await waitUntilReady(billing, () => ok(`${billingUrl}/readyz`), 60_000);
    log(`  ${billingUrl} (Stripe webhooks at /stripe/webhook; usage reporting ${opts.billingEnv?.STRIPE_SECRET_KEY ? "on" : "off: STRIPE_SECRET_KEY not set"})`);
    return { gatewayUrl, adminUrl, operatorUrl, operator, gateway, billingUrl, billing, ports: [...ports, billingPort], stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

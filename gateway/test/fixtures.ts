/** Builders shared by the gateway's tests: gateway-config documents, keys, a config for startGateway. */
import { randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import { apiKeyPrefix, generateApiKey, GATEWAY_CONFIG_API_VERSION, hashApiKey, type GatewayConfig, type GatewayKeyEntry } from "@crosslogic/crds";
import { loadConfig, type Config } from "../src/config.ts";

export const suffix = () => randomBytes(4).toString("hex");

export interface TestKey { key: string; entry: GatewayKeyEntry }

export function makeKey(overrides: Partial<GatewayKeyEntry> & { env?: "live" | "test" } = {}): TestKey {
  const { env = "test", ...rest } = overrides;
  const key = generateApiKey(env);
  return {
    key,
    entry: {
      hash: hashApiKey(key), prefix: apiKeyPrefix(key), name: `key-${suffix()}`, role: "developer",
      limits: { requestsPerMinute: 1000, tokensPerMinute: 0, concurrency: 10 }, ...rest,
    },
  };
}

export function makeDoc(opts: {
  tenant?: string; env?: string; namespace?: string; tier?: "development" | "staging" | "production"; hostnames?: string[];
  keys?: TestKey[]; routes?: GatewayConfig["routes"]; modelUrl?: string; suspended?: boolean; origins?: string[];
  tenantRpm?: number; envRpm?: number;
} = {}): GatewayConfig {
  const tenant = opts.tenant ?? `t-${suffix()}`;
  return {
    apiVersion: GATEWAY_CONFIG_API_VERSION, kind: "GatewayConfig",
    tenant: { name: tenant, plan: "pro", suspended: opts.suspended ?? false, limits: { requestsPerMinute: opts.tenantRpm ?? 50_000, tokensPerMinute: 0 } },
    environment: {
      name: opts.env ?? "dev", namespace: opts.namespace ?? `tenant-${tenant}`, tier: opts.tier ?? "development",
      hostnames: opts.hostnames ?? [], limits: { requestsPerMinute: opts.envRpm ?? 10_000, tokensPerMinute: 0 }, cors: { allowedOrigins: opts.origins ?? [] },
    },
    routes: opts.routes ?? [
      { model: "llama-3-8b", backend: { url: opts.modelUrl ?? "http://127.0.0.1:9" } },
      { model: "bge-small", backend: { url: opts.modelUrl ?? "http://127.0.0.1:9" } },
    ],
    keys: (opts.keys ?? []).map((k) => k.entry),
  };
}

export const ADMIN_TOKEN = "admin-token-0123456789abcdef0123456789abcdef";

export function testConfig(env: Record<string, string>): Config {
  return loadConfig({
    PORT: "0", ADMIN_PORT: "0", HOST: "127.0.0.1", ADMIN_HOST: "127.0.0.1", ADMIN_TOKEN, CONFIG_SOURCE: "directory",
    REDIS_KEY_PREFIX: `gwtest:${suffix()}:`, LOG_LEVEL: "error", USAGE_FLUSH_INTERVAL_MS: "50", SHUTDOWN_TIMEOUT_MS: "5000", ...env,
  });
}

/** A writable that keeps everything written (to search logs for secrets). */
export function capture(): { stream: Writable; text(): string } {
  const chunks: string[] = [];
  const stream = new Writable({ write(chunk: Buffer, _enc, cb) { chunks.push(chunk.toString()); cb(); } });
  return { stream, text: () => chunks.join("") };
}

/**
 * Gateway-config documents for the key benchmarks (keys.ts, key-memory.ts): environment `env`
 * with `n` keys whose tokens are known (`benchToken`), so a bench can also authenticate them.
 * `generation` renames every key, so a reload changes every document.
 */
import { createHash } from "node:crypto";
import { GATEWAY_CONFIG_API_VERSION, type GatewayConfig } from "@crosslogic/crds";

export const benchToken = (env: number, i: number) => `clsk_live_${createHash("sha256").update(`${env}/${i}`).digest("hex")}`;

export function benchKeyDoc(env: number, n: number, generation: number): GatewayConfig {
  const keys = Array.from({ length: n }, (_, i) => {
    const token = benchToken(env, i);
    return {
      hash: createHash("sha256").update(token).digest("hex"), prefix: token.slice(0, 18), name: `key-${env}-${i}-g${generation}`,
      role: i % 7 === 0 ? "read-only" as const : "developer" as const,
      ...(i % 4 === 0 ? { expiresAt: "2030-01-01T00:00:00Z" } : {}), ...(i % 5 === 0 ? { models: ["llama-3-8b"] } : {}),
      limits: { requestsPerMinute: 1000, tokensPerMinute: 100_000, concurrency: 10 },
    };
  });
  return {
    apiVersion: GATEWAY_CONFIG_API_VERSION, kind: "GatewayConfig",
    tenant: { name: `tenant-${env}`, plan: "pro", suspended: false, limits: { requestsPerMinute: 50_000, tokensPerMinute: 0 } },
    environment: { name: "prod", namespace: `tenant-${env}`, tier: "production", hostnames: [`e${env}.example.test`], limits: { requestsPerMinute: 10_000, tokensPerMinute: 0 }, cors: { allowedOrigins: [] } },
    routes: [{ model: "llama-3-8b", backend: { url: "http://127.0.0.1:9" } }],
    keys,
  };
}

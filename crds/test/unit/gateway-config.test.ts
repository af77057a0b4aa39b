import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { generateApiKey, hashApiKey, apiKeyPrefix } from "../../src/api-key.ts";
import { GATEWAY_CONFIG_API_VERSION, validateGatewayConfig, type GatewayConfig } from "../../src/gateway-config.ts";

function doc(): GatewayConfig {
  const key = generateApiKey("live");
  return {
    apiVersion: GATEWAY_CONFIG_API_VERSION, kind: "GatewayConfig",
    tenant: { name: "acme", plan: "pro", suspended: false, limits: { requestsPerMinute: 50000, tokensPerMinute: 0 } },
    environment: { name: "prod", namespace: "tenant-acme", tier: "production", hostnames: ["acme.example.com"], limits: { requestsPerMinute: 10000, tokensPerMinute: 0 }, cors: { allowedOrigins: [] } },
    routes: [{ model: "llama-3-8b", backend: { url: "http://127.0.0.1:9000" } }],
    keys: [{ hash: hashApiKey(key), prefix: apiKeyPrefix(key), name: "ci-bot", role: "developer", expiresAt: "2027-01-01T00:00:00Z", limits: { requestsPerMinute: 60, tokensPerMinute: 0, concurrency: 10 } }],
  };
}

describe("gateway config schema", () => {
  it("accepts a complete document", () => assert.equal(validateGatewayConfig(doc()).ok, true));

  for (const [name, mutate, path] of [
    ["a wrong apiVersion", (d: GatewayConfig) => { (d as { apiVersion: string }).apiVersion = "v0"; }, "/apiVersion"],
    ["a plaintext key in place of the hash", (d: GatewayConfig) => { d.keys[0]!.hash = generateApiKey("live"); }, "/keys/0/hash"],
    ["an invalid expiry", (d: GatewayConfig) => { d.keys[0]!.expiresAt = "next tuesday"; }, "/keys/0/expiresAt"],
    ["a negative limit", (d: GatewayConfig) => { d.environment.limits.requestsPerMinute = -1; }, "/environment/limits/requestsPerMinute"],
    ["an unknown role", (d: GatewayConfig) => { (d.keys[0] as { role: string }).role = "root"; }, "/keys/0/role"],
  ] as const) {
    it(`rejects ${name}, naming the field`, () => {
      const d = doc();
      mutate(d);
      const res = validateGatewayConfig(d);
      assert.equal(res.ok, false);
      assert.ok(!res.ok && res.errors.some((e) => e.startsWith(path)), JSON.stringify(res));
    });
  }
});

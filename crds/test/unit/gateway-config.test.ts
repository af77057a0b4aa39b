import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { generateApiKey, hashApiKey, apiKeyPrefix } from "../../src/api-key.ts";
import { GATEWAY_CONFIG_API_VERSION, gatewayConfigSecretName, gatewayConfigShardOf, validateGatewayConfig, type GatewayConfig } from "../../src/gateway-config.ts";

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

describe("gateway-config Secret names", () => {
  it("no two Environments share one: the first dot parts namespace and name (the old dash form did not)", () => {
    assert.notEqual(gatewayConfigSecretName("tenant-a", "b-c"), gatewayConfigSecretName("tenant-a-b", "c"));
    assert.equal(gatewayConfigSecretName("tenant-a", "b-c"), "gwcfg-tenant-a.b-c");
    // The longest namespace and name (DNS labels, 63 each) stay within a Secret name's 253, with a shard suffix too.
    assert.ok(gatewayConfigSecretName("n".repeat(63), "e".repeat(63), 1023).length <= 253);
  });

  it("shard names: the first is the plain name, the others .1, .2, …; only an Environment's own are recognised", () => {
    assert.deepEqual([0, 1, 12].map((i) => gatewayConfigSecretName("tenant-a", "prod", i)), ["gwcfg-tenant-a.prod", "gwcfg-tenant-a.prod.1", "gwcfg-tenant-a.prod.12"]);
    assert.deepEqual(["gwcfg-tenant-a.prod", "gwcfg-tenant-a.prod.1", "gwcfg-tenant-a.prod.12"].map((n) => gatewayConfigShardOf(n, "tenant-a", "prod")), [0, 1, 12]);
    for (const other of ["gwcfg-tenant-a-prod", "gwcfg-tenant-a.prod.0", "gwcfg-tenant-a.prod.01", "gwcfg-tenant-a.prod.x", "gwcfg-tenant-a.prod-2", "gwcfg-tenant-a.prod.1.2", "gwcfg-tenant-a.production"]) {
      assert.equal(gatewayConfigShardOf(other, "tenant-a", "prod"), undefined, other);
    }
  });

  it("a shard number is part of the schema: a whole number from 0", () => {
    assert.equal(validateGatewayConfig({ ...doc(), shard: 3 }).ok, true);
    assert.equal(validateGatewayConfig({ ...doc(), shard: -1 }).ok, false);
    assert.equal(validateGatewayConfig({ ...doc(), shard: 1.5 }).ok, false);
  });
});

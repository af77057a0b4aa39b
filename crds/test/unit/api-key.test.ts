import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { apiKeyPrefix, generateApiKey, hashApiKey, isWellFormedApiKey, keyEnvForTier } from "../../src/api-key.ts";

describe("API key format", () => {
  it("generates clsk_{env}_ + 256 random bits in hex, different every time", () => {
    const a = generateApiKey("live");
    const b = generateApiKey("live");
    assert.match(a, /^clsk_live_[0-9a-f]{64}$/);
    assert.notEqual(a, b);
    assert.ok(isWellFormedApiKey(a));
    assert.match(generateApiKey("test"), /^clsk_test_/);
  });

  for (const [name, key] of [
    ["truncated", generateApiKey("live").slice(0, -1)],
    ["uppercase hex", generateApiKey("live").toUpperCase()],
    ["unknown env", generateApiKey("live").replace("live", "prod")],
    ["trailing newline", `${generateApiKey("test")}\n`],
    ["empty", ""],
  ] as const) {
    it(`rejects a ${name} key`, () => assert.equal(isWellFormedApiKey(key), false));
  }

  it("shows only an 8-hex-digit prefix", () => {
    const key = generateApiKey("live");
    assert.equal(apiKeyPrefix(key), key.slice(0, 18));
    assert.match(apiKeyPrefix(key), /^clsk_live_[0-9a-f]{8}$/);
  });

  it("hashes with SHA-256 to 64 hex digits", () => {
    assert.equal(hashApiKey("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert.match(hashApiKey(generateApiKey("test")), /^[0-9a-f]{64}$/);
  });

  it("maps production to live and the other tiers to test", () => {
    assert.equal(keyEnvForTier("production"), "live");
    assert.equal(keyEnvForTier("staging"), "test");
    assert.equal(keyEnvForTier("development"), "test");
  });
});

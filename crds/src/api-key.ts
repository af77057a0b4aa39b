/**
 * The API key format `clsk_{env}_{random}`: `env` is `live` for production environments and `test`
 * for staging and development; `random` is 64 lowercase hex digits (256 bits from a CSPRNG). Only
 * the SHA-256 hash and the prefix (`clsk_{env}_` + 8 hex digits) are stored outside the key's Secret.
 */
import { createHash, randomBytes } from "node:crypto";

export type KeyEnv = "live" | "test";
export type Tier = "development" | "staging" | "production";

export const API_KEY_PATTERN = /^clsk_(live|test)_[0-9a-f]{64}$/;
/** Visible characters of the random part kept in the prefix. */
export const PREFIX_RANDOM_CHARS = 8;

export function keyEnvForTier(tier: Tier): KeyEnv {
  return tier === "production" ? "live" : "test";
}

export function generateApiKey(env: KeyEnv): string {
  return `clsk_${env}_${randomBytes(32).toString("hex")}`;
}

export function isWellFormedApiKey(key: string): boolean {
  return key.length === 74 && API_KEY_PATTERN.test(key);
}

/** Lowercase hex SHA-256 of the whole key. */
export function hashApiKey(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}

/** `clsk_live_a4f5b2c8`: safe to log and show. */
export function apiKeyPrefix(key: string): string {
  const env = key.slice(5, 9);
  return `clsk_${env}_${key.slice(10, 10 + PREFIX_RANDOM_CHARS)}`;
}

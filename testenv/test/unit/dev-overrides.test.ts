/** `DEV_GATEWAY_*`, `DEV_OPERATOR_*`, `DEV_BILLING_*`: a developer's settings for one component of `make dev`. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { devOverrides } from "../../src/product.ts";

test("only the component's prefix is taken, with the prefix removed", () => {
  const env = { DEV_GATEWAY_THREAT_FEEDS: "/feeds", DEV_GATEWAY_TRUSTED_PROXIES: "10.0.0.0/8", DEV_GATEWAY_: "x", DEV_OPERATOR_WORKERS: "8", GATEWAY_THREAT_FEEDS: "/not-this", PATH: "/bin", DEV_BILLING_EMPTY: "" };
  assert.deepEqual(devOverrides(env, "DEV_GATEWAY_"), { THREAT_FEEDS: "/feeds", TRUSTED_PROXIES: "10.0.0.0/8" });
  assert.deepEqual(devOverrides(env, "DEV_OPERATOR_"), { WORKERS: "8" });
  assert.deepEqual(devOverrides(env, "DEV_BILLING_"), { EMPTY: "" }, "an empty value is passed on (it clears the setting)");
  assert.deepEqual(devOverrides({}, "DEV_GATEWAY_"), {});
});

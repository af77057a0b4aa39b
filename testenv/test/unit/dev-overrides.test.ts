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

test("make dev: a gateway refusing this machine's address (on a DEV_GATEWAY_THREAT_FEEDS feed) is reported, not waited on", async () => {
  const { sampleKeyOutcome } = await import("../../src/environment.ts");
  assert.equal(sampleKeyOutcome(200, '{"object":"list","data":[]}'), "accepted");
  const blocked = '{"error":{"message":"Requests from this network address are not accepted.","type":"permission_error","code":"address_blocked"}}';
  assert.equal(sampleKeyOutcome(403, blocked), "address blocked");
  // Anything else is retried until the key is published: a key not yet known, a model not yet routed.
  assert.throws(() => sampleKeyOutcome(401, '{"error":{"code":"invalid_api_key"}}'), /answered 401/);
  assert.throws(() => sampleKeyOutcome(403, '{"error":{"code":"insufficient_role"}}'), /answered 403/);
});

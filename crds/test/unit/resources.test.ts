import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { crdManifest, planLimits, PLAN_LIMITS, Resources, validateResource, withDefaults, type ApiKeySpec, type EnvironmentSpec, type TenantSpec } from "../../src/index.ts";

/** Every schema node under `properties`/`items` with the path that leads to it. */
function* nodes(schema: Record<string, unknown>, path: string): Generator<[string, Record<string, unknown>]> {
  yield [path, schema];
  for (const [name, child] of Object.entries((schema.properties ?? {}) as Record<string, Record<string, unknown>>)) yield* nodes(child, `${path}.${name}`);
  if (schema.items) yield* nodes(schema.items as Record<string, unknown>, `${path}[]`);
}

describe("CRD manifests", () => {
  for (const def of Resources) {
    const crd = crdManifest(def) as { spec: { versions: Array<{ schema: { openAPIV3Schema: Record<string, unknown> }; subresources: unknown }>; names: { categories: string[]; shortNames: string[] } } };
    const version = crd.spec.versions[0]!;
    it(`${def.kind}: every field has a description (kubectl explain teaches it)`, () => {
      const props = version.schema.openAPIV3Schema.properties as Record<string, Record<string, unknown>>;
      const missing = [...nodes(props.spec!, "spec"), ...nodes(props.status!, "status")].filter(([, n]) => typeof n.description !== "string" || !n.description).map(([p]) => p);
      assert.deepEqual(missing, []);
    });
    it(`${def.kind}: structural (no anyOf/const), status subresource, category and short names`, () => {
      const text = JSON.stringify(version.schema);
      assert.doesNotMatch(text, /"(anyOf|oneOf|const|\$id)"/);
      assert.deepEqual(version.subresources, { status: {} });
      assert.deepEqual(crd.spec.names.categories, ["crosslogic"]);
      assert.ok(crd.spec.names.shortNames.length > 0);
    });
  }
});

describe("runtime validation (same schemas as the CRDs)", () => {
  const cases: Array<[string, "Tenant" | "Environment" | "ApiKey", unknown, boolean]> = [
    ["minimal tenant", "Tenant", withDefaults<TenantSpec>("Tenant", {}), true],
    ["tenant with unknown plan", "Tenant", { ...withDefaults<TenantSpec>("Tenant", {}), plan: "gold" }, false],
    ["environment with url route", "Environment", withDefaults<EnvironmentSpec>("Environment", { tier: "staging", routes: [{ model: "m", backend: { url: "http://127.0.0.1:9000" } }] }), true],
    ["environment with bad tier", "Environment", withDefaults<EnvironmentSpec>("Environment", { tier: "qa" }), false],
    ["environment with bad hostname", "Environment", withDefaults<EnvironmentSpec>("Environment", { tier: "staging", hostnames: ["a b"] }), false],
    ["api key", "ApiKey", withDefaults<ApiKeySpec>("ApiKey", { environment: "prod", expiresAt: "2030-01-01T00:00:00Z" }), true],
    ["api key with malformed expiry", "ApiKey", withDefaults<ApiKeySpec>("ApiKey", { environment: "prod", expiresAt: "soon" }), false],
    ["api key with zero concurrency", "ApiKey", withDefaults<ApiKeySpec>("ApiKey", { environment: "prod", limits: { concurrency: 0 } }), false],
  ];
  for (const [name, kind, spec, valid] of cases) {
    it(`${valid ? "accepts" : "refuses"} ${name}`, () => assert.equal(validateResource(kind, { spec }).ok, valid));
  }

  it("fills the defaults the API server fills", () => {
    const env = withDefaults<EnvironmentSpec>("Environment", { tier: "production" });
    assert.deepEqual(env.limits, { requestsPerMinute: 10_000, tokensPerMinute: 0 });
    assert.deepEqual(env.tls.privateKey, { algorithm: "ECDSA", size: 256 });
    assert.equal(withDefaults<ApiKeySpec>("ApiKey", { environment: "e" }).limits.concurrency, 10);
    assert.equal(withDefaults<TenantSpec>("Tenant", {}).plan, "free");
  });
});

describe("plans", () => {
  it("default plan is free with the security document's tenant default of 50,000 requests/min", () => {
    assert.equal(planLimits(undefined).tenant.requestsPerMinute, 50_000);
    assert.equal(planLimits("unknown"), PLAN_LIMITS.free);
  });
  it("every plan keeps the environment default 10,000/min and key concurrency 10", () => {
    for (const p of Object.values(PLAN_LIMITS)) {
      assert.equal(p.environment.requestsPerMinute, 10_000);
      assert.equal(p.apiKey.concurrency, 10);
    }
  });
});

/** Pure pieces of the gateway: config parsing, auth decisions, client addresses, body surgery, validation, admin token. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { tokenMatches, parseQuery } from "../../src/admin.ts";
import { authenticate, authorize, externalCode, hostOnly } from "../../src/auth.ts";
import { ClientAddress, limitIdentity, normalise } from "../../src/client-ip.ts";
import { loadConfig } from "../../src/config.ts";
import { ConfigStore } from "../../src/config-store.ts";
import { isJsonContentType } from "../../src/body.ts";
import { securityHeaders, SEED_HEADERS } from "../../src/headers.ts";
import { endpoints, firstViolation, openApiDocument } from "../../src/openapi.ts";
import { findUsage, injectIncludeUsage } from "../../src/proxy.ts";
import { parseRevocation } from "../../src/revocation.ts";
import { ADMIN_TOKEN, makeDoc, makeKey } from "../fixtures.ts";

describe("config", () => {
  it("lists every problem at once and never echoes secrets", () => {
    assert.throws(() => loadConfig({ ADMIN_TOKEN: "short-secret", PORT: "abc", REDIS_URL: "http://x", REDIS_FAILURE_POLICY: "maybe", TRUSTED_PROXIES: "not an ip" }), (e: Error) => {
      for (const name of ["ADMIN_TOKEN", "PORT", "REDIS_URL", "REDIS_FAILURE_POLICY", "TRUSTED_PROXIES"]) assert.match(e.message, new RegExp(name));
      assert.doesNotMatch(e.message, /short-secret/);
      return true;
    });
  });
  it("applies documented defaults and freezes", () => {
    const c = loadConfig({ ADMIN_TOKEN, REDIS_URL: "redis://127.0.0.1:1" });
    assert.equal(c.PORT, 8080);
    assert.equal(c.ADMIN_PORT, 9090);
    assert.equal(c.REDIS_FAILURE_POLICY, "fail-closed");
    assert.equal(c.TLS_MIN_VERSION, "TLSv1.3");
    assert.ok(Object.isFrozen(c));
  });
  it("refuses an admin port equal to the public port", () => {
    assert.throws(() => loadConfig({ ADMIN_TOKEN, REDIS_URL: "redis://x", PORT: "8080", ADMIN_PORT: "8080" }), /ADMIN_PORT/);
  });
});

describe("auth", () => {
  const store = new ConfigStore();
  const good = makeKey();
  const readOnly = makeKey({ role: "read-only" });
  const limited = makeKey({ models: ["bge-small"] });
  const expired = makeKey({ expiresAt: "2020-01-01T00:00:00Z" });
  const revoked = makeKey();
  const live = makeKey({ env: "live" });
  const hosted = makeKey();
  const suspended = makeKey();
  store.apply("a", makeDoc({ keys: [good, readOnly, limited, expired, revoked, live] }));
  store.apply("b", makeDoc({ keys: [hosted], hostnames: ["api.acme.example"] }));
  store.apply("c", makeDoc({ keys: [suspended], suspended: true }));
  store.revokeKey(revoked.entry.hash);
  const cases: Array<[string, string | undefined, string | undefined, string]> = [
    ["no header", undefined, undefined, "missing"],
    ["basic auth", "Basic abc", undefined, "missing"],
    ["malformed", "Bearer clsk_test_xyz", undefined, "malformed"],
    ["truncated", `Bearer ${good.key.slice(0, -1)}`, undefined, "malformed"],
    ["uppercase hex", `Bearer ${good.key.toUpperCase()}`, undefined, "malformed"],
    ["unknown", `Bearer clsk_test_${"a".repeat(64)}`, undefined, "unknown"],
    ["revoked", `Bearer ${revoked.key}`, undefined, "revoked"],
    ["expired", `Bearer ${expired.key}`, undefined, "expired"],
    ["live key in a development environment", `Bearer ${live.key}`, undefined, "wrong_environment"],
    ["other environment's host", `Bearer ${good.key}`, "api.acme.example", "wrong_environment"],
    ["unlisted host for an environment with hostnames", `Bearer ${hosted.key}`, "evil.example", "wrong_environment"],
    ["suspended tenant", `Bearer ${suspended.key}`, undefined, "tenant_suspended"],
  ];
  for (const [name, header, host, reason] of cases) {
    it(`refuses: ${name}`, () => {
      const r = authenticate(store, header, host, true);
      assert.equal(r.ok, false);
      assert.equal(!r.ok && r.reason, reason);
    });
  }
  it("accepts a good key, also on its own hostname with a port", () => {
    assert.equal(authenticate(store, `Bearer ${good.key}`, "127.0.0.1:8080", true).ok, true);
    assert.equal(authenticate(store, `Bearer ${hosted.key}`, "API.acme.example:443", true).ok, true);
  });
  it("refuses read-only keys on inference and models outside the allow-list, uniformly", () => {
    const ro = authenticate(store, `Bearer ${readOnly.key}`, undefined, true);
    assert.ok(ro.ok);
    assert.equal(authorize(ro.key, true, "llama-3-8b"), "read_only_inference");
    assert.equal(authorize(ro.key, false, undefined), undefined);
    const lim = authenticate(store, `Bearer ${limited.key}`, undefined, true);
    assert.ok(lim.ok);
    assert.equal(authorize(lim.key, true, "llama-3-8b"), "model_not_allowed");
    assert.equal(authorize(lim.key, true, "bge-small"), undefined);
    assert.deepEqual(new Set(Object.values(externalCode)), new Set(["invalid_api_key", "permission_denied"]));
  });
  it("tenant suspension from the broadcast lasts until a strictly newer config says otherwise", () => {
    let now = 1_000_000;
    const s = new ConfigStore({ now: () => now, suspensionHoldMs: 10_000 });
    const k = makeKey();
    const doc = makeDoc({ keys: [k] });
    const reason = () => (authenticate(s, `Bearer ${k.key}`, undefined, true) as { reason?: string }).reason;
    s.apply("x", doc, "100");
    s.suspendTenant(doc.tenant.name);
    assert.equal(reason(), "tenant_suspended");
    // A stale Secret event (older or replayed resourceVersion, e.g. a watch re-list) never undoes it.
    s.apply("x", { ...doc, keys: [...doc.keys] }, "90");
    s.apply("x", doc, "100");
    now += 60_000;
    assert.equal(reason(), "tenant_suspended", "stale documents are ignored");
    // The source of truth catches up (suspended), then a strictly newer document lifts it.
    s.apply("x", { ...doc, tenant: { ...doc.tenant, suspended: true } }, "101");
    assert.equal(reason(), "tenant_suspended");
    s.apply("x", doc, "102");
    assert.equal(authenticate(s, `Bearer ${k.key}`, undefined, true).ok, true);
  });
  it("a newer unsuspended document lifts a broadcast suspension only after the hold time", () => {
    let now = 1_000_000;
    const s = new ConfigStore({ now: () => now, suspensionHoldMs: 10_000 });
    const k = makeKey();
    const doc = makeDoc({ keys: [k] });
    s.apply("x", doc, "5");
    s.suspendTenant(doc.tenant.name);
    // A pre-suspension update delivered late by a lagging watch: newer, but within the hold.
    s.apply("x", { ...doc, environment: { ...doc.environment, hostnames: [] }, routes: [...doc.routes].reverse() }, "6");
    now += 5_000;
    assert.equal((authenticate(s, `Bearer ${k.key}`, undefined, true) as { reason?: string }).reason, "tenant_suspended");
    now += 6_000;
    assert.equal(authenticate(s, `Bearer ${k.key}`, undefined, true).ok, true);
  });
  it("hostOnly strips ports and brackets", () => {
    assert.equal(hostOnly("[::1]:8080"), "::1");
    assert.equal(hostOnly("Example.COM:1"), "example.com");
  });
});

describe("config store", () => {
  it("keeps the last good document when an update is invalid, and swaps only that document's keys", () => {
    const s = new ConfigStore();
    const a = makeKey(), b = makeKey(), c = makeKey();
    assert.deepEqual(s.apply("one", JSON.stringify(makeDoc({ keys: [a] }))), { ok: true, changed: true });
    s.apply("two", makeDoc({ keys: [b] }));
    const bad = s.apply("one", JSON.stringify({ ...makeDoc({ keys: [c] }), apiVersion: "v0" }));
    assert.equal(bad.ok, false);
    assert.equal(s.apply("one", "{not json").ok, false);
    assert.ok(s.key(a.entry.hash));
    assert.equal(s.key(c.entry.hash), undefined);
    const held = s.key(a.entry.hash)!;
    s.apply("one", makeDoc({ keys: [c] }));
    assert.equal(s.key(a.entry.hash), undefined);
    assert.ok(s.key(c.entry.hash) && s.key(b.entry.hash));
    assert.equal(held.hash, a.entry.hash, "a request keeps what it resolved");
    assert.equal(held.name, a.entry.name);
    s.remove("two");
    assert.equal(s.key(b.entry.hash), undefined);
  });
  it("applies a large document parsed on a worker, swapping the whole index at once", async () => {
    const s = new ConfigStore();
    const small = makeKey();
    s.apply("small", makeDoc({ keys: [small] }));
    const many = Array.from({ length: 3000 }, () => makeKey());
    const doc = makeDoc({ keys: many });
    const r = await s.applyLarge("big", Buffer.from(JSON.stringify(doc)));
    assert.deepEqual(r, { ok: true, changed: true });
    assert.equal(s.keyCount, 3001);
    assert.ok(authenticate(s, `Bearer ${many[2999]!.key}`, undefined, true).ok);
    assert.ok(authenticate(s, `Bearer ${small.key}`, undefined, true).ok, "other documents' keys carried over");
    assert.deepEqual(await s.applyLarge("big", Buffer.from(JSON.stringify(doc))), { ok: true, changed: false }, "same bytes: unchanged");
    const bad = { ...doc, keys: [...doc.keys.slice(1), { ...doc.keys[0]!, hash: "nope" }] };
    const rejected = await s.applyLarge("big", Buffer.from(JSON.stringify(bad)));
    assert.equal(rejected.ok, false);
    assert.match((rejected as { errors: string[] }).errors[0]!, /^\/keys\/2999\/hash/);
    assert.ok(authenticate(s, `Bearer ${many[0]!.key}`, undefined, true).ok, "the last good document stays");
    assert.equal((await s.applyLarge("big", Buffer.from("{ nope"))).ok, false);
  });
  it("refuses a second document for the same environment", () => {
    const s = new ConfigStore();
    const doc = makeDoc();
    s.apply("one", doc);
    assert.equal(s.apply("two", doc).ok, false);
  });
});

describe("client address", () => {
  const ca = new ClientAddress(["10.0.0.0/8", "::1"]);
  it("ignores X-Forwarded-For from untrusted peers", () => assert.equal(ca.resolve("203.0.113.9", "1.2.3.4"), "203.0.113.9"));
  it("takes the right-most untrusted hop behind trusted proxies", () => assert.equal(ca.resolve("10.1.1.1", "6.6.6.6, 198.51.100.7, 10.2.2.2"), "198.51.100.7"));
  it("stops at garbage in the chain", () => assert.equal(ca.resolve("10.1.1.1", "1.1.1.1, nonsense"), "10.1.1.1"));
  it("unwraps IPv4-mapped IPv6", () => assert.equal(normalise("::ffff:192.0.2.1"), "192.0.2.1"));
  it("groups IPv6 by /56", () => {
    assert.equal(limitIdentity("2001:db8:aa:bb12::1"), limitIdentity("2001:db8:aa:bbff:1:2:3:4"));
    assert.notEqual(limitIdentity("2001:db8:aa:bb12::1"), limitIdentity("2001:db8:aa:cc12::1"));
    assert.equal(limitIdentity("192.0.2.1"), "192.0.2.1");
  });
  it("trusts a configured IPv6 proxy", () => assert.equal(ca.resolve("::1", "2001:db8::5"), "2001:db8::5"));
});

describe("raw body surgery", () => {
  const parse = (b: Buffer) => JSON.parse(b.toString()) as Record<string, unknown>;
  it("appends include_usage without touching the caller's bytes", () => {
    const raw = Buffer.from('{ "model": "m",\n "stream": true, "x": "\\u00e9" }\n');
    const out = injectIncludeUsage(raw, undefined);
    assert.equal(out.subarray(0, raw.indexOf("}") - 1).toString(), raw.subarray(0, raw.indexOf("}") - 1).toString());
    assert.deepEqual(parse(out).stream_options, { include_usage: true });
    assert.equal(parse(out).x, "é");
  });
  it("merges an existing stream_options (last member wins)", () => {
    const out = injectIncludeUsage(Buffer.from('{"stream":true,"stream_options":{"include_usage":false}}'), { include_usage: false });
    assert.deepEqual(parse(out).stream_options, { include_usage: true });
  });
  it("leaves a body that already asks for usage alone", () => {
    const raw = Buffer.from('{"stream":true,"stream_options":{"include_usage":true}}');
    assert.equal(injectIncludeUsage(raw, { include_usage: true }), raw);
  });
  it("handles an empty object", () => assert.deepEqual(parse(injectIncludeUsage(Buffer.from("{}"), undefined)), { stream_options: { include_usage: true } }));
  it("finds the last usage object in a stream tail", () => {
    const text = 'data: {"usage":null}\n\ndata: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8}}\n\ndata: [DONE]\n\n';
    assert.deepEqual(findUsage(text), { promptTokens: 3, completionTokens: 5, totalTokens: 8 });
    assert.equal(findUsage('{"usage": null}'), undefined);
  });
  it("accepts only JSON content types", () => {
    assert.ok(isJsonContentType("application/json; charset=utf-8"));
    for (const t of [undefined, "text/plain", "application/jsonx", "multipart/form-data"]) assert.equal(isJsonContentType(t), false);
  });
});

describe("OpenAPI document", () => {
  it("is OpenAPI 3.1 and its request schemas are the validators", () => {
    assert.equal(openApiDocument.openapi, "3.1.0");
    const chat = endpoints.get("/v1/chat/completions")!.validate!;
    assert.equal(openApiDocument.paths["/v1/chat/completions"].post.requestBody.content["application/json"].schema.$id, "ChatCompletionRequest");
    assert.ok(chat.Check({ model: "m", messages: [{ role: "user", content: "hi" }] }));
    assert.ok(!chat.Check({ model: "m", messages: [] }));
    assert.ok(!chat.Check({ model: "m", messages: [{ role: "root", content: "hi" }] }));
    assert.ok(!chat.Check({ model: "m", messages: [{ role: "user", content: "hi" }], temperature: "hot" }));
    assert.ok(!chat.Check({ model: "m", messages: [{ role: "user", content: "hi" }], unknown_field: 1 }));
    assert.ok(!chat.Check({ model: "x".repeat(257), messages: [{ role: "user", content: "hi" }] }));
    assert.match(firstViolation(chat, { model: 1, messages: [] }), /^\/model|^\/messages/);
    const emb = endpoints.get("/v1/embeddings")!.validate!;
    assert.ok(emb.Check({ model: "m", input: ["a", "b"] }));
    assert.ok(!emb.Check({ model: "m", input: Array(2049).fill("a") }));
  });
});

describe("security headers", () => {
  it("carry the seed's exact values", () => {
    const map = new Map(securityHeaders);
    for (const [name, value] of Object.entries(SEED_HEADERS)) assert.equal(map.get(name.toLowerCase()), value);
  });
});

describe("admin token", () => {
  it("accepts the current and the next token, nothing else", () => {
    const next = "n".repeat(40);
    assert.ok(tokenMatches(ADMIN_TOKEN, { current: ADMIN_TOKEN, next }));
    assert.ok(tokenMatches(next, { current: ADMIN_TOKEN, next }));
    assert.ok(!tokenMatches(next, { current: ADMIN_TOKEN }));
    assert.ok(!tokenMatches(undefined, { current: ADMIN_TOKEN }));
    assert.ok(!tokenMatches(`${ADMIN_TOKEN}x`, { current: ADMIN_TOKEN }));
    assert.ok(!tokenMatches("\u0000" + ADMIN_TOKEN, { current: ADMIN_TOKEN }));
  });
  it("validates admin queries", () => {
    assert.deepEqual(parseQuery({ tenant: "acme", limit: "5" }), { tenant: "acme", limit: 5 });
    assert.ok("error" in parseQuery({ keyPrefix: "clsk_live_zz" }));
    assert.ok("error" in parseQuery({ from: "yesterday" }));
    for (const bad of ["\u0000", "a\u0000b", "a\nb", "\u007f", "\ud800", "Acme", "a b", "' OR 1=1--"]) {
      assert.ok("error" in parseQuery({ tenant: bad }), JSON.stringify(bad));
      assert.ok("error" in parseQuery({ tenant: "acme", environment: bad }), JSON.stringify(bad));
    }
    assert.deepEqual(parseQuery({ tenant: "acme", environment: "acme-prod/main" }), { tenant: "acme", environment: "acme-prod/main" });
    assert.ok("error" in parseQuery({ environment: "a/b/c" }));
  });
});

describe("revocation messages", () => {
  it("parses the two shapes and ignores the rest", () => {
    assert.deepEqual(parseRevocation(JSON.stringify({ type: "tenant_suspended", tenant: "acme" })), { type: "tenant_suspended", tenant: "acme" });
    assert.equal(parseRevocation(JSON.stringify({ type: "key_revoked", hash: "xyz" })), undefined);
    assert.equal(parseRevocation("nope"), undefined);
  });
});

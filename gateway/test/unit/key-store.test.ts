/**
 * The packed key store (key-index.ts, large-document.ts, config-store.ts): every key still
 * authenticates with its own role, limits, models, expiry and name after apply, reload, applyLarge,
 * the synchronous large first load, removal and revocation; the index agrees with a plain Map
 * under random changes; the large-document reader agrees with JSON.parse.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import type { GatewayConfig, GatewayKeyEntry } from "@crosslogic/crds";
import { authenticate, authorize } from "../../src/auth.ts";
import { ConfigStore, LARGE_DOCUMENT_BYTES, type KeyView } from "../../src/config-store.ts";
import { parseElements, splitKeys } from "../../src/large-document.ts";
import { makeDoc, makeKey, type TestKey } from "../fixtures.ts";

const NOW = Date.parse("2026-06-01T00:00:00Z");
const auth = (s: ConfigStore, k: TestKey, now = NOW) => authenticate(s, `Bearer ${k.key}`, undefined, true, now);

/** Keys with every attribute varied (a few limits and model lists repeat, as in real documents). */
function variedKeys(n: number, tag = ""): TestKey[] {
  return Array.from({ length: n }, (_, i) => makeKey({
    name: `key-${tag}${i}-ü`,
    role: (["admin", "developer", "read-only"] as const)[i % 3],
    limits: { requestsPerMinute: 100 * (i % 4), tokensPerMinute: 1000 * (i % 3), concurrency: 1 + (i % 5) },
    ...(i % 4 === 1 ? { expiresAt: "2026-01-01T00:00:00Z" } : i % 4 === 2 ? { expiresAt: "2027-01-01T00:00:00Z" } : {}),
    ...(i % 5 === 0 ? { models: ["bge-small"] } : i % 5 === 1 ? { models: ["llama-3-8b", "bge-small"] } : {}),
  }));
}

/** What a request sees of a key, compared with the entry it came from. */
function assertView(view: KeyView | undefined, e: GatewayKeyEntry, doc: GatewayConfig): void {
  assert.ok(view, `key ${e.name} is indexed`);
  assert.equal(view.name, e.name);
  assert.equal(view.hash, e.hash);
  assert.equal(view.role, e.role);
  assert.deepEqual(view.limits, e.limits);
  assert.deepEqual(view.models && [...view.models].sort(), e.models && [...e.models].sort());
  assert.equal(view.expiresAtMs, e.expiresAt ? Date.parse(e.expiresAt) : Number.POSITIVE_INFINITY);
  assert.equal(view.env.doc.tenant.name, doc.tenant.name);
  assert.equal(view.env.id, `${doc.environment.namespace}/${doc.environment.name}`);
}

/** The outcome of a request with this key: the refusal reason, or what it may do. */
function outcome(s: ConfigStore, k: TestKey): string {
  const r = auth(s, k);
  if (!r.ok) return r.reason;
  return [authorize(r.key, true, "llama-3-8b") ?? "ok", authorize(r.key, true, "bge-small") ?? "ok", authorize(r.key, false, undefined) ?? "ok"].join(",");
}

describe("packed key store", () => {
  it("keeps every key's role, limits, models, expiry and name, and refuses what it must", () => {
    const s = new ConfigStore();
    const keys = variedKeys(40);
    const doc = makeDoc({ keys });
    assert.deepEqual(s.apply("a", doc), { ok: true, changed: true });
    assert.equal(s.keyCount, 40);
    for (const k of keys) assertView(s.key(k.entry.hash), k.entry, doc);
    // Behaviour a caller notices: expired keys refused; read-only keys refused on inference; model lists enforced.
    assert.equal(outcome(s, keys[1]!), "expired");
    assert.equal(outcome(s, keys[2]!), "read_only_inference,read_only_inference,ok");
    assert.equal(outcome(s, keys[0]!), "model_not_allowed,ok,ok");
    assert.equal(outcome(s, keys[6]!), "ok,ok,ok");
    assert.equal(outcome(s, keys[3]!), "ok,ok,ok");
    assert.equal(auth(s, keys[2]!, Date.parse("2026-12-31T23:59:59Z")).ok, true, "not expired before its time");
    assert.equal((auth(s, keys[6]!, Date.parse("2027-01-01T00:00:00Z")) as { reason?: string }).reason, "expired");
    // Lookups by anything but a present lowercase hex SHA-256 find nothing.
    for (const h of [keys[0]!.entry.hash.toUpperCase(), keys[0]!.entry.hash.slice(0, 63), `${keys[0]!.entry.hash}0`, "", "g".repeat(64), keys[0]!.entry.hash.replace(/.$/, "\u0130")]) {
      assert.equal(s.key(h), undefined, h);
    }
  });

  it("a reload changes attributes, drops removed keys, and a request keeps what it resolved", () => {
    const s = new ConfigStore();
    const [a, b, c] = variedKeys(3);
    s.apply("x", makeDoc({ keys: [a!, b!], namespace: "ns-x", env: "e" }));
    const held = s.key(a!.entry.hash)!;
    const a2 = { ...a!, entry: { ...a!.entry, name: "renamed", role: "read-only" as const, limits: { requestsPerMinute: 7, tokensPerMinute: 8, concurrency: 9 }, models: ["bge-small"] } };
    const doc2 = makeDoc({ keys: [a2, c!], namespace: "ns-x", env: "e" });
    s.apply("x", JSON.stringify(doc2));
    assertView(s.key(a!.entry.hash), a2.entry, doc2);
    assertView(s.key(c!.entry.hash), c!.entry, doc2);
    assert.equal(s.key(b!.entry.hash), undefined);
    assert.equal(outcome(s, b!), "unknown");
    assert.equal(s.keyCount, 2);
    assert.equal(held.name, a!.entry.name, "the earlier view is unchanged");
    assert.equal(held.role, a!.entry.role);
  });

  it("the same hash in two documents: the one applied last wins; removing the loser changes nothing", () => {
    const s = new ConfigStore();
    const k = makeKey({ name: "shared" });
    const d1 = makeDoc({ keys: [k] });
    const d2 = makeDoc({ keys: [{ ...k, entry: { ...k.entry, name: "second" } }] });
    s.apply("one", d1);
    s.apply("two", d2);
    assert.equal(s.key(k.entry.hash)!.name, "second");
    s.remove("one");
    assert.equal(s.key(k.entry.hash)!.name, "second");
    s.remove("two");
    assert.equal(s.key(k.entry.hash), undefined);
    assert.equal(s.keyCount, 0);
  });

  it("a document whose keys another document took over is replaced off to the side without losing the other's keys", async () => {
    // The new index is sized for what stays; here every hash of the replaced document is held by
    // the other one, so the copy has to grow past that estimate (1,500 keys > 1,024 slots).
    const s = new ConfigStore({ swapInPlaceMax: 0 });
    const shared = variedKeys(1500, "S");
    const b = makeDoc({ keys: shared.map((k) => ({ ...k, entry: { ...k.entry, name: `${k.entry.name}-b` } })), tenant: "tb" });
    assert.equal(s.apply("a", makeDoc({ keys: shared, tenant: "ta" })).ok, true);
    assert.equal(s.apply("b", b).ok, true);
    const own = makeKey({ name: "a-own" });
    assert.deepEqual(await s.applyLarge("a", Buffer.from(JSON.stringify(makeDoc({ keys: [own], tenant: "ta" })))), { ok: true, changed: true });
    assert.equal(s.keyCount, 1501);
    for (const k of shared) assertView(s.key(k.entry.hash), { ...k.entry, name: `${k.entry.name}-b` }, b);
    assert.equal(s.key(own.entry.hash)!.name, "a-own");
  });

  it("revocation refuses a loaded key at once; removal forgets the keys and the hostnames", () => {
    const s = new ConfigStore();
    const [a, , , b] = variedKeys(4);
    s.apply("h", makeDoc({ keys: [a!, b!], hostnames: ["api.example.test"] }));
    s.revokeKey(a!.entry.hash);
    assert.equal((authenticate(s, `Bearer ${a!.key}`, "api.example.test", true, NOW) as { reason?: string }).reason, "revoked");
    assert.equal(authenticate(s, `Bearer ${b!.key}`, "api.example.test", true, NOW).ok, true);
    assert.ok(s.environmentForHost("api.example.test"));
    assert.equal(s.remove("h"), true);
    assert.equal(outcome(s, b!), "unknown");
    assert.equal(s.environmentForHost("api.example.test"), undefined);
    assert.equal(s.keyCount, 0);
  });

  it("large documents — applyLarge, and apply() of text or bytes (the first load) — index the same keys as small ones", async () => {
    const keys = variedKeys(9000, "L");
    const doc = makeDoc({ keys, namespace: "ns-big", env: "big" });
    const text = JSON.stringify(doc, null, 1);
    assert.ok(text.length > LARGE_DOCUMENT_BYTES, "the document takes the large path");
    const other = makeKey();
    const otherDoc = makeDoc({ keys: [other] });
    const stores = { applyLarge: new ConfigStore(), text: new ConfigStore(), bytes: new ConfigStore() };
    for (const s of Object.values(stores)) s.apply("other", otherDoc);
    assert.deepEqual(await stores.applyLarge.applyLarge("big", Buffer.from(text)), { ok: true, changed: true });
    assert.deepEqual(stores.text.apply("big", text), { ok: true, changed: true });
    assert.deepEqual(stores.bytes.apply("big", Buffer.from(text)), { ok: true, changed: true });
    for (const [name, s] of Object.entries(stores)) {
      assert.equal(s.keyCount, 9001, name);
      for (const k of keys) assertView(s.key(k.entry.hash), k.entry, doc);
      assertView(s.key(other.entry.hash), other.entry, otherDoc);
      assert.equal(outcome(s, keys[1]!), "expired");
      // Unchanged bytes: nothing to do, by either path.
      assert.deepEqual(s.apply("big", text), { ok: true, changed: false }, name);
      assert.deepEqual(await s.applyLarge("big", Buffer.from(text)), { ok: true, changed: false }, name);
    }
    // A reload by applyLarge: a key gone, one changed, one added; the other document untouched.
    const s = stores.applyLarge;
    const added = makeKey({ name: "added" });
    const changed = { ...keys[10]!, entry: { ...keys[10]!.entry, role: "read-only" as const } };
    const doc2 = makeDoc({ keys: [...keys.slice(1, 10), changed, ...keys.slice(11), added], namespace: "ns-big", env: "big" });
    assert.deepEqual(await s.applyLarge("big", Buffer.from(JSON.stringify(doc2))), { ok: true, changed: true });
    assert.equal(s.key(keys[0]!.entry.hash), undefined);
    assertView(s.key(changed.entry.hash), changed.entry, doc2);
    assertView(s.key(added.entry.hash), added.entry, doc2);
    assertView(s.key(other.entry.hash), other.entry, otherDoc);
    assert.equal(s.keyCount, 9001);
  });

  it("a large document broken anywhere is refused whole and the last good one stays", async () => {
    const keys = variedKeys(4500, "B");
    const good = JSON.stringify(makeDoc({ keys, namespace: "ns-b", env: "b" }));
    const s = new ConfigStore();
    assert.equal((await s.applyLarge("b", Buffer.from(good))).ok, true);
    const last = keys[4499]!.entry.hash;
    const cases: Array<[string, string, RegExp]> = [
      ["syntax error in the last key", good.replace(`"hash":"${last}"`, `"hash":"${last}" "`), /not valid JSON/],
      ["missing comma between keys", good.replace(`},{"hash":"${last}"`, `} {"hash":"${last}"`), /not valid JSON/],
      ["trailing comma", good.replace(/\]\}$/, ",]}"), /not valid JSON/],
      ["invalid last key", good.replace(`"hash":"${last}"`, `"hash":"nope"`), /^\/keys\/4499\/hash/],
      ["truncated", good.slice(0, -2), /not valid JSON/],
      ["bad apiVersion", good.replace('"apiVersion":"gateway.crosslogic.ai/v1"', '"apiVersion":"v0"'), /apiVersion/],
    ];
    for (const [name, text, error] of cases) {
      for (const r of [await s.applyLarge("b", Buffer.from(text)), s.apply("b", text)]) {
        assert.equal(r.ok, false, name);
        assert.match((r as { errors: string[] }).errors[0]!, error, name);
      }
      assert.equal(s.keyCount, 4500, name);
      assert.ok(auth(s, keys[4499]!).ok, `${name}: the last good document stays`);
    }
  });

  it("small applies on every turn while applyLarge runs: all of them end up applied", async () => {
    // Callers are meant to serialise applies; if they do not, applyLarge redoes its swap on the live index.
    const s = new ConfigStore();
    const big = variedKeys(9000, "C");
    let settled = false;
    const pending = s.applyLarge("big", Buffer.from(JSON.stringify(makeDoc({ keys: big })))).finally(() => { settled = true; });
    const smalls: TestKey[] = [];
    for (let i = 0; !settled && i < 2000; i++) {
      const k = makeKey();
      s.apply(`small-${i}`, makeDoc({ keys: [k] }));
      smalls.push(k);
      await new Promise((r) => setImmediate(r));
    }
    assert.deepEqual(await pending, { ok: true, changed: true });
    assert.equal(s.keyCount, 9000 + smalls.length);
    for (const k of [...smalls, ...big]) {
      const r = auth(s, k);
      assert.ok(r.ok || r.reason === "expired");
    }
  });

  it("agrees with a Map from hash to the document applied last, under random applies, reloads and removals", async () => {
    const pool = variedKeys(24, "P");
    const sources = ["s0", "s1", "s2", "s3"];
    const op = fc.oneof(
      fc.record({ kind: fc.constant("apply" as const), source: fc.constantFrom(...sources), keys: fc.subarray(pool.map((_, i) => i)), rename: fc.nat(3), large: fc.boolean() }),
      fc.record({ kind: fc.constant("remove" as const), source: fc.constantFrom(...sources) }),
    );
    await fc.assert(fc.asyncProperty(fc.array(op, { maxLength: 12 }), fc.boolean(), async (ops, rebuild) => {
      // applyLarge swaps small documents in place; `rebuild` makes it build a new index instead.
      const s = new ConfigStore(rebuild ? { swapInPlaceMax: 0 } : {});
      const model = new Map<string, { source: string; entry: GatewayKeyEntry; doc: GatewayConfig }>();
      const docs = new Map<string, GatewayConfig>();
      for (const o of ops) {
        if (o.kind === "remove") {
          assert.equal(s.remove(o.source), docs.delete(o.source));
          for (const [h, v] of model) if (v.source === o.source) model.delete(h);
          continue;
        }
        const entries = o.keys.map((i) => ({ ...pool[i]!, entry: { ...pool[i]!.entry, name: `${pool[i]!.entry.name}-${o.rename}` } }));
        const doc = makeDoc({ keys: entries, namespace: `ns-${o.source}`, env: "e", tenant: `t-${o.source}` });
        const r = o.large ? await s.applyLarge(o.source, Buffer.from(JSON.stringify(doc))) : s.apply(o.source, JSON.stringify(doc));
        assert.equal(r.ok, true);
        if (!r.ok || !r.changed) continue;
        for (const [h, v] of model) if (v.source === o.source) model.delete(h);
        for (const e of entries) model.set(e.entry.hash, { source: o.source, entry: e.entry, doc });
        docs.set(o.source, doc);
      }
      assert.equal(s.keyCount, model.size);
      for (const k of pool) {
        const m = model.get(k.entry.hash);
        if (m) assertView(s.key(k.entry.hash), m.entry, m.doc);
        else assert.equal(s.key(k.entry.hash), undefined);
      }
    }), { numRuns: 80 });
  });
});

describe("large-document reader", () => {
  /** The document as the store reads a large one: the rest parsed, the keys parsed separately, or "invalid". */
  function viaSplit(text: string, step: number): unknown {
    const buf = Buffer.from(text);
    const g = splitKeys(buf, step);
    let r = g.next();
    while (!r.done) r = g.next();
    const split = r.value;
    if (!split) return "invalid";
    let rest: unknown;
    try { rest = JSON.parse(split.rest); } catch { return "invalid"; }
    const items = parseElements(buf, split, 0, split.count);
    if (!items) return "invalid";
    if (rest && typeof rest === "object" && !Array.isArray(rest) && Array.isArray((rest as { keys?: unknown }).keys)) (rest as { keys: unknown }).keys = items;
    else if (items.length > 0 && !(rest && typeof rest === "object" && "keys" in rest)) return "lost keys";
    return rest;
  }
  function viaParse(text: string): unknown {
    try { return JSON.parse(text); } catch { return "invalid"; }
  }

  it("reads the same value as JSON.parse, or refuses what JSON.parse refuses (random documents, cut at random steps)", () => {
    const value = fc.jsonValue({ maxDepth: 3 });
    const doc = fc.record({
      before: fc.dictionary(fc.string({ maxLength: 5 }), value, { maxKeys: 3 }),
      keys: fc.oneof(fc.array(value, { maxLength: 6 }), value),
      after: fc.dictionary(fc.string({ maxLength: 5 }), value, { maxKeys: 3 }),
      name: fc.constantFrom("keys", "k\\u0065ys", "key", "kéys"),
      indent: fc.constantFrom(0, 1, 2),
    }).map((d) => {
      // Written by hand so member order, escaped names and duplicate members are exercised.
      const members = [...Object.entries(d.before).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v, null, d.indent)}`), `"${d.name}":${JSON.stringify(d.keys, null, d.indent)}`, ...Object.entries(d.after).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v, null, d.indent)}`)];
      return `{${members.join(d.indent ? ",\n " : ",")}}`;
    });
    // Corruptions: a character deleted, a character inserted, or none.
    const mutated = fc.tuple(doc, fc.nat(), fc.constantFrom("", "{", "}", "[", "]", ",", ":", '"', "\\", " ", "x", "é")).map(([text, at, ch]) => {
      const i = text.length ? at % text.length : 0;
      return ch === "" ? text.slice(0, i) + text.slice(i + 1) : text.slice(0, i) + ch + text.slice(i);
    });
    fc.assert(fc.property(fc.oneof(doc, mutated, fc.string()), fc.integer({ min: 1, max: 64 }), (text, step) => {
      assert.deepEqual(viaSplit(text, step), viaParse(text), text);
    }), { numRuns: 3000 });
  });

  it("handles escapes, nested keys members and non-ASCII at step boundaries", () => {
    const texts = [
      '{"keys":[{"a":"x\\\\"},{"b":"\\"]"}],"z":1}',
      '{"a":{"keys":[1,2]},"keys":[3]}',
      '{"keys":[1],"keys":[2,3]}',
      '{"keys":[1],"keys":5}',
      '{"k\\u0065ys":[{"n":"ü€𝄞"}, 2 ,3 ]}',
      '{"keys":[ ]}',
      '{"keys":[,]}',
      '[{"keys":[1]}]',
      '{"keys":[1]]}',
      '{"keys":[1}}',
      '"keys"',
      "",
    ];
    for (const text of texts) for (const step of [1, 2, 3, 5, 1 << 20]) assert.deepEqual(viaSplit(text, step), viaParse(text), `${text} / ${step}`);
  });
});

/**
 * Several documents for one environment. Shards are in force together; otherwise a second document
 * waits, and takes over when the source that defines the environment is removed (a renamed config
 * Secret is written before the old one is deleted). The store's side of it; server.ts applies the
 * waiting documents before it removes the old source.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { authenticate } from "../../src/auth.ts";
import { ConfigStore, LARGE_DOCUMENT_BYTES } from "../../src/config-store.ts";
import { makeDoc, makeKey, type TestKey } from "../fixtures.ts";

const NOW = Date.parse("2026-06-01T00:00:00Z");
const outcome = (s: ConfigStore, k: TestKey, host?: string) => {
  const r = authenticate(s, `Bearer ${k.key}`, host, true, NOW);
  return r.ok ? "ok" : r.reason;
};

/** Hands `from`'s environment over as server.ts does: the documents waiting for it applied first, then `from` removed. */
async function handOver(s: ConfigStore, from: string): Promise<string[]> {
  const heirs = s.takeUnblocked(from);
  for (const heir of heirs) {
    const r = Buffer.isBuffer(heir.input) ? await s.applyLarge(heir.source, heir.input, heir.version, from) : s.apply(heir.source, heir.input, heir.version, from);
    assert.deepEqual(r, { ok: true, changed: true });
  }
  s.remove(from);
  return heirs.map((h) => h.source);
}

describe("several documents for one environment: handing over, and shards", () => {
  it("a second document for an environment waits; when the first source goes, it takes over with no moment without keys", async () => {
    const s = new ConfigStore();
    const [kept, dropped, added] = [makeKey({ name: "kept" }), makeKey({ name: "dropped" }), makeKey({ name: "added" })];
    const base = { tenant: "acme", hostnames: ["api.acme.test"] };
    assert.deepEqual(s.apply("secret/old", JSON.stringify(makeDoc({ ...base, keys: [kept, dropped] })), "10"), { ok: true, changed: true });
    const oldView = s.environmentForHost("api.acme.test");

    const r = s.apply("secret/new", JSON.stringify(makeDoc({ ...base, keys: [kept, added] })), "11");
    assert.deepEqual(r, { ok: true, changed: false, waitingFor: "secret/old" });
    assert.equal(outcome(s, added, "api.acme.test"), "unknown", "a waiting document's keys are not in force");
    assert.equal(outcome(s, dropped, "api.acme.test"), "ok");
    assert.equal(s.environmentForHost("api.acme.test"), oldView);

    assert.deepEqual(s.takeUnblocked(), [], "held back while secret/old is there");
    const [heir, ...more] = s.takeUnblocked("secret/old");
    assert.equal(heir?.source, "secret/new");
    assert.deepEqual(more, []);
    assert.deepEqual(s.takeUnblocked("secret/old"), [], "taken once");
    assert.deepEqual(s.apply(heir.source, heir.input, heir.version, "secret/old"), { ok: true, changed: true });
    // Both in the store for a moment: the new document's keys and hostnames answer already.
    for (const k of [kept, added]) assert.equal(outcome(s, k, "api.acme.test"), "ok", k.entry.name);
    assert.equal(s.remove("secret/old"), true);
    for (const k of [kept, added]) assert.equal(outcome(s, k, "api.acme.test"), "ok", k.entry.name);
    assert.equal(outcome(s, dropped, "api.acme.test"), "unknown");
    assert.equal(s.environmentForHost("api.acme.test")?.source, "secret/new", "the hostname stays, now the new source's");
    assert.equal(s.keyCount, 2);
    assert.equal([...s.environments].length, 1);
  });

  it("the newest version of a waiting document is the one that takes over; a waiting source removed leaves nothing behind", async () => {
    const s = new ConfigStore();
    const [a, b, c] = [makeKey({ name: "a" }), makeKey({ name: "b" }), makeKey({ name: "c" })];
    s.apply("one", JSON.stringify(makeDoc({ tenant: "t1", keys: [a] })));
    assert.equal((s.apply("two", JSON.stringify(makeDoc({ tenant: "t1", keys: [b] }))) as { waitingFor?: string }).waitingFor, "one");
    assert.equal((s.apply("two", JSON.stringify(makeDoc({ tenant: "t1", keys: [c] }))) as { waitingFor?: string }).waitingFor, "one");
    assert.deepEqual(await handOver(s, "one"), ["two"]);
    assert.deepEqual([a, b, c].map((k) => outcome(s, k)), ["unknown", "unknown", "ok"]);

    s.apply("three", JSON.stringify(makeDoc({ tenant: "t1", keys: [a] })));
    s.remove("three");
    assert.deepEqual(await handOver(s, "two"), [], "a removed waiting document does not take over later");
    assert.equal(s.keyCount, 0);
  });

  it("waiting bytes are copied (the caller may reuse its buffer), and a large heir is applied in steps", async () => {
    const s = new ConfigStore();
    const keys = Array.from({ length: 600 }, (_, i) => makeKey({ name: `k${i}` }));
    s.apply("old", JSON.stringify(makeDoc({ tenant: "big", keys: keys.slice(0, 300) })));
    const lent = Buffer.from(JSON.stringify(makeDoc({ tenant: "big", keys })));
    assert.ok(lent.length > LARGE_DOCUMENT_BYTES);
    assert.equal((await s.applyLarge("new", lent, undefined)).ok, true);
    lent.fill(0x20); // the caller reuses its buffer
    assert.deepEqual(await handOver(s, "old"), ["new"]);
    assert.equal(s.keyCount, 600);
    assert.ok(keys.every((k) => outcome(s, k) === "ok"));
  });

  it("a document for another environment never waits, and a parsed document for a defined one is refused as before", () => {
    const s = new ConfigStore();
    s.apply("one", JSON.stringify(makeDoc({ tenant: "t1" })));
    assert.deepEqual(s.apply("two", JSON.stringify(makeDoc({ tenant: "t2" }))), { ok: true, changed: true });
    const r = s.apply("three", makeDoc({ tenant: "t1" }));
    assert.equal(r.ok, false);
    assert.match((r as { errors: string[] }).errors[0]!, /tenant-t1\/dev is already defined by one/);
    assert.deepEqual(s.takeUnblocked("one"), []);
  });

  it("shards of one environment are in force together; removing one keeps the others' keys and the hostname", () => {
    const s = new ConfigStore();
    const [a, b, c] = [makeKey({ name: "a" }), makeKey({ name: "b" }), makeKey({ name: "c" })];
    const shard = (n: number, keys: TestKey[]) => JSON.stringify({ ...makeDoc({ tenant: "big", hostnames: ["api.big.test"], keys }), shard: n });
    assert.deepEqual(s.apply("s0", shard(0, [a])), { ok: true, changed: true });
    assert.deepEqual(s.apply("s1", shard(1, [b, c])), { ok: true, changed: true });
    assert.deepEqual([a, b, c].map((k) => outcome(s, k, "api.big.test")), ["ok", "ok", "ok"]);
    assert.equal(s.environmentForHost("api.big.test")?.source, "s1");
    // A key moved from one shard to another (written to its new shard first) never leaves.
    s.apply("s0", shard(0, [a, c]));
    s.apply("s1", shard(1, [b]));
    assert.deepEqual([a, b, c].map((k) => outcome(s, k, "api.big.test")), ["ok", "ok", "ok"]);
    assert.equal(s.remove("s1"), true);
    assert.deepEqual([a, b, c].map((k) => outcome(s, k, "api.big.test")), ["ok", "unknown", "ok"]);
    assert.equal(s.environmentForHost("api.big.test")?.source, "s0", "the hostname points at the shard left");
    assert.equal(s.remove("s0"), true);
    assert.equal(s.environmentForHost("api.big.test"), undefined);
  });

  it("a shard and a whole document for one environment are not in force together: the later waits, every waiting shard takes over", async () => {
    const s = new ConfigStore();
    const [a, b, c] = [makeKey({ name: "a" }), makeKey({ name: "b" }), makeKey({ name: "c" })];
    const doc = (keys: TestKey[], shard?: number) => JSON.stringify({ ...makeDoc({ tenant: "mix", keys }), ...(shard === undefined ? {} : { shard }) });
    s.apply("whole", doc([a, b, c]));
    assert.equal((s.apply("s0", doc([a, b], 0)) as { waitingFor?: string }).waitingFor, "whole");
    assert.equal((s.apply("s1", doc([c], 1)) as { waitingFor?: string }).waitingFor, "whole");
    assert.deepEqual((await handOver(s, "whole")).sort(), ["s0", "s1"]);
    assert.deepEqual([a, b, c].map((k) => outcome(s, k)), ["ok", "ok", "ok"]);
    // And the other way round: a whole document waits for the shards.
    assert.equal((s.apply("whole", doc([a])) as { waitingFor?: string }).waitingFor !== undefined, true);
  });

  it("a document held back by a whole one is let go when that one becomes a shard in place", () => {
    const s = new ConfigStore();
    const [a, b] = [makeKey({ name: "a" }), makeKey({ name: "b" })];
    const doc = (keys: TestKey[], shard?: number) => JSON.stringify({ ...makeDoc({ tenant: "grow", keys }), ...(shard === undefined ? {} : { shard }) });
    s.apply("first", doc([a]));
    assert.equal((s.apply("second", doc([b], 1)) as { waitingFor?: string }).waitingFor, "first");
    assert.deepEqual(s.takeUnblocked(), []);
    s.apply("first", doc([a], 0));
    const [w, ...more] = s.takeUnblocked();
    assert.equal(w?.source, "second");
    assert.deepEqual(more, []);
    assert.deepEqual(s.apply(w.source, w.input, w.version), { ok: true, changed: true });
    assert.deepEqual([a, b].map((k) => outcome(s, k)), ["ok", "ok"]);
  });
});

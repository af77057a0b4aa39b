/** Threat-feed parsing and lookups (src/threat-feed.ts): the common feed formats, range edges, and agreement with node:net's BlockList. */
import assert from "node:assert/strict";
import { BlockList } from "node:net";
import { describe, it } from "node:test";
import fc from "fast-check";
import { AddressSet, parseFeed, sourceLabel, sourceProblem } from "../../src/threat-feed.ts";
import { testConfig } from "../fixtures.ts";

const setOf = (...texts: string[]) => new AddressSet(texts.map(parseFeed));

describe("threat feeds: parsing", () => {
  it("reads Spamhaus DROP, FireHOL and plain lists; counts what is not an address", () => {
    const drop = "; Spamhaus DROP List 2026/11/22\n; Last-Modified: Sun, 22 Nov 2026\n1.10.16.0/20 ; SBL256894\n2.56.192.0/22 ; SBL459831\n";
    const firehol = "#\n# firehol_level1\n#\n0.0.0.0/8\n5.188.10.0/23\n198.51.100.7\n";
    const plain = "203.0.113.9\n2001:db8:bad::/48\n::ffff:192.0.2.0/120\nnot-an-ip\n10.0.0.0/33\n\n   \n";
    assert.deepEqual([parseFeed(drop).v4.length, parseFeed(drop).invalid], [2, 0]);
    assert.deepEqual([parseFeed(firehol).v4.length, parseFeed(firehol).invalid], [3, 0]);
    const p = parseFeed(plain);
    assert.equal(p.v4.length, 2, "203.0.113.9 and the IPv4-mapped /120 (= 192.0.2.0/24)");
    assert.equal(p.v6.length, 1);
    assert.equal(p.invalid, 2, "not-an-ip and the /33");
  });

  it("a network matches from its first to its last address, and nothing outside", () => {
    const s = setOf("1.10.16.0/20\n2001:db8:bad::/48\n::ffff:192.0.2.0/120\n198.51.100.7");
    for (const a of ["1.10.16.0", "1.10.31.255", "2001:db8:bad::", "2001:db8:bad:ffff:ffff:ffff:ffff:ffff", "192.0.2.0", "192.0.2.255", "198.51.100.7"]) assert.ok(s.has(a), a);
    for (const a of ["1.10.15.255", "1.10.32.0", "2001:db8:bae::", "2001:db8:bac:ffff:ffff:ffff:ffff:ffff", "192.0.3.0", "198.51.100.6", "198.51.100.8", "", "garbage"]) assert.ok(!s.has(a), a);
  });

  it("a host part in the CIDR is masked; overlapping and adjacent networks merge; feeds add up", () => {
    const s = setOf("10.0.0.77/24\n10.0.1.0/24\n10.0.0.128/25", "172.16.0.1");
    assert.ok(s.has("10.0.0.0") && s.has("10.0.1.255") && s.has("172.16.0.1"));
    assert.equal(s.ranges, 2, "10.0.0.0–10.0.1.255 is one range; 172.16.0.1 another");
    assert.equal(setOf("").ranges, 0);
    assert.ok(setOf("::/0").has("8.8.8.8"), "an IPv6 network over ::ffff:0:0/96 lists those IPv4 addresses (clients arrive IPv4-mapped)");
    assert.ok(!setOf("2001:db8::/32").has("8.8.8.8"));
    assert.ok(!setOf("").has("10.0.0.1"));
  });

  it("agrees with node:net BlockList on random networks and addresses (IPv4 and IPv6)", () => {
    const v4 = fc.tuple(fc.ipV4(), fc.integer({ min: 8, max: 32 }));
    const v6 = fc.tuple(fc.ipV6(), fc.integer({ min: 16, max: 128 }));
    fc.assert(fc.property(fc.array(v4, { maxLength: 30 }), fc.array(v6, { maxLength: 10 }), fc.array(fc.ipV4(), { minLength: 1, maxLength: 30 }), fc.array(fc.ipV6(), { minLength: 1, maxLength: 10 }), (n4, n6, a4, a6) => {
      const text = [...n4, ...n6].map(([a, b]) => `${a}/${b}`).join("\n");
      const ours = setOf(text);
      const ref = new BlockList();
      for (const [a, b] of n4) ref.addSubnet(a, b, "ipv4");
      for (const [a, b] of n6) ref.addSubnet(a, b, "ipv6");
      // Probe random addresses and each network's own address (always inside).
      for (const a of [...a4, ...n4.map(([a]) => a)]) assert.equal(ours.has(a), ref.check(a, "ipv4"), `${a} in\n${text}`);
      for (const a of [...a6, ...n6.map(([a]) => a)]) {
        if (a.includes(".")) continue; // fast-check's IPv4-in-IPv6 forms: normalised elsewhere
        assert.equal(ours.has(a), ref.check(a, "ipv6"), `${a} in\n${text}`);
      }
    }), { numRuns: 300 });
  });
});

describe("threat feeds: sources", () => {
  it("accepts absolute paths, https URLs and http on loopback only; labels URLs by host", () => {
    for (const ok of ["/etc/crosslogic/threat-feeds", "https://www.spamhaus.org/drop/drop.txt", "http://127.0.0.1:8080/feed", "http://localhost/f"]) assert.equal(sourceProblem(ok), undefined, ok);
    for (const bad of ["feeds/drop.txt", "http://feeds.example.com/drop.txt", "ftp://example.com/x", "file:///etc/passwd"]) assert.ok(sourceProblem(bad), bad);
    assert.equal(sourceLabel("https://feeds.example.com/list.txt?key=secret"), "feeds.example.com");
  });

  it("the gateway refuses to start with a bad source, naming it without its query string", () => {
    assert.throws(() => testConfig({ REDIS_URL: "redis://127.0.0.1:1", CONFIG_DIR: "/tmp", THREAT_FEEDS: "/ok, http://feeds.example.com/x?key=secret" }), (e: Error) =>
      /THREAT_FEEDS: "http:\/\/feeds.example.com\/x" must be an absolute path/.test(e.message) && !e.message.includes("secret"));
    assert.deepEqual(testConfig({ REDIS_URL: "redis://127.0.0.1:1", CONFIG_DIR: "/tmp", THREAT_FEEDS: " /a ,https://b.example/c " }).threatFeeds, ["/a", "https://b.example/c"]);
  });
});

/**
 * What one API key costs in the gateway's in-memory index, measured in-process on the ConfigStore
 * alone (no server, no Redis): retained bytes per key (V8 heap used + ArrayBuffer memory, after
 * full GCs, with every document's text already dropped), the time of one lookup by hash, and the
 * longest synchronous piece of an apply. Run with --expose-gc:
 *
 *   node --expose-gc bench/gateway/key-memory.ts [--keys 100000] [--envs 100]
 *
 * Shapes: `--envs` documents of keys/envs keys each applied with store.apply (the path of small
 * documents), then one document of every key with store.applyLarge (worker parse, chunked index).
 * Prints JSON to stdout; writes nothing.
 */
import { createHash } from "node:crypto";
import { parseArgs } from "node:util";
import { authenticate } from "../../gateway/src/auth.ts";
import { ConfigStore } from "../../gateway/src/config-store.ts";
import { benchKeyDoc as doc, benchToken as token } from "./key-docs.ts";

const { values } = parseArgs({ options: { keys: { type: "string", default: "100000" }, envs: { type: "string", default: "100" } } });
const KEYS = Number(values.keys);
const ENVS = Number(values.envs);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with node --expose-gc");

const hashOf = (t: string) => createHash("sha256").update(t).digest("hex");

function retained(): number {
  for (let i = 0; i < 3; i++) gc!();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** ns per store.key() of a hash that is present, over `n` lookups (hashes precomputed). */
function lookupNs(store: ConfigStore, hashes: string[], n = 1_000_000): number {
  let found = 0;
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) if (store.key(hashes[i % hashes.length]!)) found++;
  const ns = Number(process.hrtime.bigint() - t) / n;
  if (found !== n) throw new Error(`lookups found ${found} of ${n}`);
  return +ns.toFixed(1);
}

/** µs per full authenticate() (format check + SHA-256 + lookup + checks). */
function authUs(store: ConfigStore, tokens: string[], n = 200_000): number {
  let ok = 0;
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) if (authenticate(store, `Bearer ${tokens[i % tokens.length]!}`, undefined, false).ok) ok++;
  const us = Number(process.hrtime.bigint() - t) / n / 1000;
  if (ok === 0) throw new Error("no key authenticated");
  return +us.toFixed(2);
}

/** Shape 1: many documents through apply(). */
function many(): Record<string, number> {
  const per = KEYS / ENVS;
  const sampleTokens = Array.from({ length: 1000 }, (_, i) => token(i % ENVS, (i * 7919) % per));
  const sampleHashes = sampleTokens.map(hashOf);
  const base = retained();
  const store = new ConfigStore();
  let maxApplyMs = 0;
  for (let e = 0; e < ENVS; e++) {
    const text = JSON.stringify(doc(e, per, 0));
    const t = performance.now();
    const r = store.apply(`file/env-${e}.json`, text);
    maxApplyMs = Math.max(maxApplyMs, performance.now() - t);
    if (!r.ok) throw new Error(r.errors.join("; "));
  }
  const loaded = retained();
  let maxReloadMs = 0;
  for (let e = 0; e < ENVS; e++) {
    const text = JSON.stringify(doc(e, per, 1));
    const t = performance.now();
    store.apply(`file/env-${e}.json`, text);
    maxReloadMs = Math.max(maxReloadMs, performance.now() - t);
  }
  const reloaded = retained();
  return {
    environments: ENVS, bytes_per_key: Math.round((loaded - base) / KEYS), bytes_per_key_after_reload: Math.round((reloaded - base) / KEYS),
    max_apply_ms: +maxApplyMs.toFixed(1), max_reapply_ms: +maxReloadMs.toFixed(1),
    lookup_ns: lookupNs(store, sampleHashes), authenticate_us: authUs(store, sampleTokens),
  };
}

/** Shape 2: one document through applyLarge(). */
async function one(): Promise<Record<string, number>> {
  const base2 = retained();
  const store2 = new ConfigStore();
  const t = performance.now();
  const r = await store2.applyLarge("file/big.json", Buffer.from(JSON.stringify(doc(0, KEYS, 0))));
  const applyLargeMs = performance.now() - t;
  if (!r.ok) throw new Error(r.errors.join("; "));
  const loaded2 = retained();
  const tokens2 = Array.from({ length: 1000 }, (_, i) => token(0, (i * 7919) % KEYS));
  return {
    environments: 1, bytes_per_key: Math.round((loaded2 - base2) / KEYS), apply_large_ms: Math.round(applyLargeMs),
    lookup_ns: lookupNs(store2, tokens2.map(hashOf)), authenticate_us: authUs(store2, tokens2),
  };
}

const manyResult = many();
const oneResult = await one();
process.stdout.write(JSON.stringify({ keys: KEYS, node: process.version, many: manyResult, one: oneResult }, null, 2) + "\n");

/**
 * An Environment's gateway config over several Secrets (shards) when its keys do not fit in one
 * Secret's 1 MiB: each shard holds the whole environment and some of its keys.
 *
 * The plan is pure. A key stays in the shard that publishes it, so keys do not move from one
 * Secret to another between two writes. (A key that moved could be missing from the gateway for a
 * moment: its old shard written first, its new one not yet.) New keys fill the lowest shard with
 * room. A shard that outgrew the limit keeps its first keys and gives up the others, for example
 * when a key's models list grew; those keys go first among the ones to place. Shard 0 always exists.
 */
import { gatewayConfigSecretName, type GatewayKeyEntry } from "@crosslogic/crds";
import { publishedHashes, type SecretLike } from "../api-key/key-material.ts";

/** What one Secret's data may hold (the API server refuses more): the limit of one gateway-config document. */
export const GATEWAY_CONFIG_MAX_BYTES = 1024 * 1024;

export interface ShardSizes {
  /** Bytes of the shard's document with no keys (`"keys":[]`). */
  base(shard: number): number;
  /** Bytes of one key entry in the document's JSON. */
  entry(e: GatewayKeyEntry): number;
}

export interface ShardPlan {
  /** Entries by shard index, each in the order of `entries`; shard 0 always present. */
  shards: Map<number, GatewayKeyEntry[]>;
  /** Entries placed nowhere: every shard allowed is full. */
  left: number;
  /** Hashes that leave one shard for another (their old shard is written after the new one). */
  moved: ReadonlySet<string>;
}

/**
 * Places `entries` (in their render order) in shards of at most `maxBytes`. `current` says which
 * shard publishes a hash now. At most `maxShards` shards, indices 0 to maxShards-1.
 */
export function planShards(entries: readonly GatewayKeyEntry[], current: ReadonlyMap<string, number>, sizes: ShardSizes, maxShards: number, maxBytes = GATEWAY_CONFIG_MAX_BYTES): ShardPlan {
  const order = new Map(entries.map((e, i) => [e, i]));
  const bytes = new Map<GatewayKeyEntry, number>(entries.map((e) => [e, sizes.entry(e)]));
  const placed = new Map<number, GatewayKeyEntry[]>();
  const used = new Map<number, number>();
  const place = (shard: number, e: GatewayKeyEntry) => {
    let list = placed.get(shard);
    if (!list) { placed.set(shard, list = []); used.set(shard, sizes.base(shard)); }
    list.push(e);
    used.set(shard, used.get(shard)! + bytes.get(e)! + (list.length > 1 ? 1 : 0)); // a comma between entries
  };
  const fits = (shard: number, e: GatewayKeyEntry) => (used.get(shard) ?? sizes.base(shard)) + bytes.get(e)! + ((placed.get(shard)?.length ?? 0) > 0 ? 1 : 0) <= maxBytes;

  // Keys stay where they are published, while their shard has room (in render order).
  const evicted: GatewayKeyEntry[] = [];
  const fresh: GatewayKeyEntry[] = [];
  for (const e of entries) {
    const shard = current.get(e.hash);
    if (shard === undefined || shard >= maxShards) fresh.push(e);
    else if (fits(shard, e)) place(shard, e);
    else evicted.push(e);
  }
  // The others, published ones first, fill the lowest shards with room.
  let left = 0;
  let shard = 0;
  for (const e of [...evicted, ...fresh]) {
    while (shard < maxShards && !fits(shard, e)) {
      // An entry too large for an empty shard fits nowhere: leave it, not the shards after it.
      if (!placed.has(shard)) break;
      shard++;
    }
    if (shard < maxShards && fits(shard, e)) place(shard, e);
    else left++;
    // Later entries may still fit in a shard skipped for a larger one: start again from the lowest with room.
    shard = 0;
  }
  if (!placed.has(0)) placed.set(0, []);
  const moved = new Set<string>();
  for (const [i, list] of placed) {
    list.sort((a, b) => order.get(a)! - order.get(b)!);
    for (const e of list) if (current.has(e.hash) && current.get(e.hash) !== i) moved.add(e.hash);
  }
  return { shards: new Map([...placed].sort(([a], [b]) => a - b)), left, moved };
}

/** An Environment's gateway-config Secrets in force, by shard index (looked up by name). */
export function configShards<S extends SecretLike>(get: (key: string) => S | undefined, configNamespace: string, namespace: string, environment: string, maxShards: number): Map<number, S> {
  const out = new Map<number, S>();
  for (let i = 0; i < maxShards; i++) {
    const s = get(`${configNamespace}/${gatewayConfigSecretName(namespace, environment, i)}`);
    if (s) out.set(i, s);
  }
  return out;
}

/** Which shard publishes each hash. */
export function shardOfHashes(shards: ReadonlyMap<number, Pick<SecretLike, "data">>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [i, s] of shards) for (const h of publishedHashes(s)) if (!out.has(h)) out.set(h, i);
  return out;
}

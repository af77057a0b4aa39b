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
}

/**
 * Places `entries` (in their render order) in shards of at most `maxBytes`. `current` says which
 * shard publishes a hash now. At most `maxShards` shards, indices 0 to maxShards-1 (keys published
 * in a shard past that, after the limit was lowered, are placed first among the others).
 */
export function planShards(entries: readonly GatewayKeyEntry[], current: ReadonlyMap<string, number>, sizes: ShardSizes, maxShards: number, maxBytes = GATEWAY_CONFIG_MAX_BYTES): ShardPlan {
  // Entries by their index in `entries` (the render order); a comma between two entries.
  const bytes = Int32Array.from(entries, (e) => sizes.entry(e));
  const placed = new Map<number, number[]>();
  const used = new Map<number, number>();
  const room = (shard: number) => maxBytes - (used.get(shard) ?? sizes.base(shard)) - (placed.get(shard)?.length ? 1 : 0);
  const place = (shard: number, i: number) => {
    let list = placed.get(shard);
    if (!list) { placed.set(shard, list = []); used.set(shard, sizes.base(shard)); }
    used.set(shard, used.get(shard)! + bytes[i]! + (list.length ? 1 : 0));
    list.push(i);
  };

  // Keys stay where they are published, while their shard has room (in render order).
  const evicted: number[] = [];
  const fresh: number[] = [];
  for (let i = 0; i < entries.length; i++) {
    const shard = current.get(entries[i]!.hash);
    if (shard === undefined) fresh.push(i);
    else if (shard >= maxShards) evicted.push(i);
    else if (bytes[i]! <= room(shard)) place(shard, i);
    else evicted.push(i);
  }
  // The others, published ones first, fill the lowest shards with room. A shard with less room
  // than the smallest entry still to place is full for good: the search starts after it.
  const pending = [...evicted, ...fresh];
  const smallest = new Int32Array(pending.length + 1).fill(maxBytes + 1); // smallest[k]: of pending[k..]
  for (let k = pending.length - 1; k >= 0; k--) smallest[k] = Math.min(smallest[k + 1]!, bytes[pending[k]!]!);
  let left = 0;
  let from = 0;
  for (let k = 0; k < pending.length; k++) {
    const i = pending[k]!;
    while (from < maxShards && placed.has(from) && room(from) < smallest[k]!) from++;
    let shard = from;
    // Past shards with some room, to the first this one fits in; an empty shard it does not fit in: nowhere.
    while (shard < maxShards && placed.has(shard) && bytes[i]! > room(shard)) shard++;
    if (shard < maxShards && bytes[i]! <= room(shard)) place(shard, i);
    else left++;
  }
  if (!placed.has(0)) placed.set(0, []);
  const shards = new Map<number, GatewayKeyEntry[]>();
  for (const [shard, list] of [...placed].sort(([a], [b]) => a - b)) shards.set(shard, list.sort((a, b) => a - b).map((i) => entries[i]!));
  return { shards, left };
}

/**
 * The order to write the planned shards in: a shard that takes a key over before the one that
 * gives it up, so that the key is always in one of them (a cycle, keys crossing both ways, is
 * broken where it is entered).
 */
export function writeOrder(plan: ShardPlan, current: ReadonlyMap<string, number>): number[] {
  const takersOf = new Map<number, Set<number>>();
  for (const [taker, list] of plan.shards) {
    for (const e of list) {
      const giver = current.get(e.hash);
      if (giver === undefined || giver === taker || !plan.shards.has(giver)) continue;
      let takers = takersOf.get(giver);
      if (!takers) takersOf.set(giver, takers = new Set());
      takers.add(taker);
    }
  }
  const order: number[] = [];
  const seen = new Set<number>();
  const visit = (shard: number) => {
    if (seen.has(shard)) return;
    seen.add(shard);
    for (const t of takersOf.get(shard) ?? []) visit(t);
    order.push(shard);
  };
  for (const shard of plan.shards.keys()) visit(shard);
  return order;
}

/** An Environment's gateway-config Secrets in force, by shard index (looked up by name). */
function configShards<S extends SecretLike>(get: (key: string) => S | undefined, configNamespace: string, namespace: string, environment: string, maxShards: number): Map<number, S> {
  const out = new Map<number, S>();
  for (let i = 0; i < maxShards; i++) {
    const s = get(`${configNamespace}/${gatewayConfigSecretName(namespace, environment, i)}`);
    if (s) out.set(i, s);
  }
  return out;
}

/** The Secret name an Environment's gateway config had before shards (`gwcfg-{namespace}-{environment}`, ambiguous across tenants). */
function legacyGatewayConfigSecretName(namespace: string, environment: string): string {
  return `gwcfg-${namespace}-${environment}`.slice(0, 253);
}

type Published = Pick<SecretLike, "data"> & { metadata: { resourceVersion?: string } };

/**
 * Which shard publishes each hash. A hash in two shards (a write between them failed) is the newer
 * Secret's: the gateway applied that one last, so that is where the key must stay.
 */
export function shardOfHashes(shards: ReadonlyMap<number, Published>): Map<string, number> {
  const version = (s: Published) => (/^\d{1,30}$/.test(s.metadata.resourceVersion ?? "") ? BigInt(s.metadata.resourceVersion!) : 0n);
  const out = new Map<string, number>();
  for (const [i, s] of [...shards].sort(([, a], [, b]) => (version(a) < version(b) ? -1 : version(a) > version(b) ? 1 : 0))) {
    for (const h of publishedHashes(s)) out.set(h, i);
  }
  return out;
}

/**
 * The key hashes an Environment's gateway config publishes, over all its Secrets; until the first
 * of them is written after an upgrade, the Secret under the old name.
 */
export function publishedByEnvironment(get: (key: string) => SecretLike | undefined, configNamespace: string, namespace: string, environment: string, maxShards: number): { has(hash: string): boolean } {
  const shards = [...configShards(get, configNamespace, namespace, environment, maxShards).values()];
  const sets = (shards.length ? shards : [get(`${configNamespace}/${legacyGatewayConfigSecretName(namespace, environment)}`)]).map((s) => publishedHashes(s));
  return { has: (hash) => sets.some((set) => set.has(hash)) };
}

/**
 * The client's address: the socket peer, or — only when the peer is a configured trusted proxy —
 * the right-most untrusted address of X-Forwarded-For. Rate-limit identity groups IPv6 by /56
 * (one customer's allocation), IPv4 by the address.
 */
import { BlockList, isIP } from "node:net";

export class ClientAddress {
  readonly #trusted = new BlockList();
  readonly #any: boolean;

  constructor(trustedProxies: readonly string[]) {
    for (const entry of trustedProxies) {
      const [addr, bits] = entry.split("/") as [string, string | undefined];
      const family = isIP(addr) === 6 ? "ipv6" : "ipv4";
      if (bits === undefined) this.#trusted.addAddress(addr, family);
      else this.#trusted.addSubnet(addr, Number(bits), family);
    }
    this.#any = trustedProxies.length > 0;
  }

  isTrusted(addr: string): boolean {
    const a = normalise(addr);
    const v = isIP(a);
    return v !== 0 && this.#trusted.check(a, v === 6 ? "ipv6" : "ipv4");
  }

  /** The client's address for this request. */
  resolve(peer: string | undefined, forwardedFor: string | string[] | undefined): string {
    let addr = normalise(peer ?? "");
    if (!this.#any || !forwardedFor || !this.isTrusted(addr)) return addr;
    const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(",") : forwardedFor).split(",").map((h) => normalise(h.trim())).slice(-32);
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = hops[i]!;
      if (isIP(hop) === 0) return addr; // garbage in the chain: stop at the last address we trust to be real
      addr = hop;
      if (!this.isTrusted(hop)) return hop;
    }
    return addr;
  }
}

/** `::ffff:1.2.3.4` → `1.2.3.4`; strips brackets and zone ids. */
export function normalise(addr: string): string {
  let a = addr;
  if (a.startsWith("[")) a = a.slice(1, a.indexOf("]"));
  const zone = a.indexOf("%");
  if (zone !== -1) a = a.slice(0, zone);
  if (a.startsWith("::ffff:") && isIP(a.slice(7)) === 4) return a.slice(7);
  return a;
}

/** Rate-limit identity: IPv4 as is, IPv6 by its /56 prefix. */
export function limitIdentity(addr: string): string {
  if (isIP(addr) !== 6) return addr;
  const groups = expand6(addr);
  // /56 = the first three groups and the high byte of the fourth.
  return `${groups.slice(0, 3).join(":")}:${groups[3]!.slice(0, 2)}00::/56`;
}

/** The eight 4-digit hex groups of a valid IPv6 address (an embedded IPv4 tail becomes two groups). */
export function expand6(addr: string): string[] {
  let a = addr.toLowerCase();
  // An embedded IPv4 tail becomes two groups.
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(a);
  if (v4) {
    const [b1, b2, b3, b4] = v4.slice(1).map(Number) as [number, number, number, number];
    a = a.slice(0, v4.index) + `${((b1 << 8) | b2).toString(16)}:${((b3 << 8) | b4).toString(16)}`;
  }
  const [head, tail] = a.split("::") as [string, string | undefined];
  const h = head ? head.split(":") : [];
  const t = tail === undefined ? [] : tail ? tail.split(":") : [];
  const fill = tail === undefined ? [] : Array<string>(8 - h.length - t.length).fill("0");
  return [...h, ...fill, ...t].map((g) => g.padStart(4, "0"));
}

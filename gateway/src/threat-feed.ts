/**
 * Threat-intelligence feeds (seed 000, "Integration with threat feeds"): lists of hostile network
 * addresses — one IPv4/IPv6 address or CIDR per line, `#` or `;` starting a comment, anything after
 * the first field ignored: the format of Spamhaus DROP, FireHOL, abuse.ch and most others — read from
 * files, directories (a mounted ConfigMap: every file not starting with a dot) or HTTPS URLs, and
 * read again every THREAT_FEED_REFRESH_SECONDS. A request from a listed client address (after
 * TRUSTED_PROXIES) is refused with 403 `address_blocked` before anything else is done for it: no
 * body read, no key lookup, no Redis call.
 *
 * Lookups are a binary search over merged, sorted ranges (IPv4 as numbers, IPv6 as bigints), so a
 * feed of 100,000 networks costs a request ~17 comparisons. A source that cannot be read, fetched
 * or parsed keeps its last good list (logged, counted by outcome); a source never loaded is empty.
 */
import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { isIP } from "node:net";
import { request } from "undici";
import { expand6, normalise } from "./client-ip.ts";
import { atOnce, stepwise } from "./stepwise.ts";

/** Merged address ranges of one family: `starts[i]..ends[i]` inclusive, sorted, disjoint. */
interface Ranges<T> { starts: T[]; ends: T[] }

export interface ParsedFeed {
  /** IPv4 networks, each encoded as `start · 64 + prefix length` (sorts natively in a Float64Array). */
  v4: number[];
  v6: Array<[bigint, bigint]>;
  /** Lines that held something other than an address or CIDR (comments and blank lines are not counted). */
  invalid: number;
}

const V4_BITS = 32, V6_BITS = 128;
/** ::ffff:0:0/96, where IPv4 addresses sit in IPv6. */
const MAPPED = 0xffff_0000_0000n, MAPPED_END = 0xffff_ffff_ffffn;
/** Lines parsed per step when a feed is read after start (~1 ms here). */
const LINES_PER_STEP = 4096;

const DOT = 0x2e, ZERO = 0x30, NINE = 0x39;

/** `a.b.c.d` (decimal, ≤ 255 each) in `s[from, to)` as a number; -1 otherwise. */
function v4At(s: string, from: number, to: number): number {
  let n = 0, part = 0, digits = 0, dots = 0;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c >= ZERO && c <= NINE) {
      part = part * 10 + (c - ZERO);
      if (++digits > 3 || part > 255) return -1;
    } else if (c === DOT && digits > 0 && dots < 3) {
      n = n * 256 + part; part = 0; digits = 0; dots++;
    } else return -1;
  }
  return dots === 3 && digits > 0 ? n * 256 + part : -1;
}

const v6ToBigInt = (a: string): bigint => BigInt(`0x${expand6(a).join("")}`);
const encode4 = (n: number, bits: number) => {
  const size = 2 ** (V4_BITS - bits);
  return (n - (n % size)) * 64 + bits;
};

const isSeparator = (c: number) => c === 0x20 || c === 0x09 || c === 0x0d || c === 0x2c || c === 0x23 || c === 0x3b; // space tab CR , # ;

/** One line into `out`: its first field, when it is an address or CIDR. */
function parseLine(text: string, from: number, to: number, out: ParsedFeed): void {
  let a = from;
  while (a < to && (text.charCodeAt(a) === 0x20 || text.charCodeAt(a) === 0x09)) a++;
  let b = a;
  while (b < to && !isSeparator(text.charCodeAt(b))) b++;
  if (b === a) return; // blank, or a comment
  let addrEnd = a;
  while (addrEnd < b && text.charCodeAt(addrEnd) !== 0x2f) addrEnd++; // up to "/"
  let bits = V4_BITS;
  if (addrEnd < b) {
    const t = text.slice(addrEnd + 1, b);
    bits = /^\d{1,3}$/.test(t) ? Number(t) : NaN;
  }
  // The common case, IPv4, without allocating.
  const n = v4At(text, a, addrEnd);
  if (n !== -1) {
    if (bits >= 0 && bits <= V4_BITS) out.v4.push(encode4(n, bits)); else out.invalid++;
    return;
  }
  const field = text.slice(a, addrEnd);
  const addr = normalise(field);
  const family = isIP(addr);
  if (family === 4) {
    // `::ffff:a.b.c.d/n` (an IPv4-mapped network) is the IPv4 network /(n − 96).
    const b4 = addrEnd < b ? bits - 96 : V4_BITS;
    if (b4 >= 0 && b4 <= V4_BITS) out.v4.push(encode4(v4At(addr, 0, addr.length), b4)); else out.invalid++;
    return;
  }
  const b6 = addrEnd < b ? bits : V6_BITS;
  if (family !== 6 || !(b6 >= 0 && b6 <= V6_BITS)) { out.invalid++; return; }
  const host = BigInt(V6_BITS - b6);
  const start = (v6ToBigInt(addr) >> host) << host;
  out.v6.push([start, start + (1n << host) - 1n]);
}

/** Parses a feed, yielding every LINES_PER_STEP lines (run it with `stepwise`, or `parseFeed`). */
export function* parseFeedSteps(text: string): Generator<void, ParsedFeed> {
  const out: ParsedFeed = { v4: [], v6: [], invalid: 0 };
  let lines = 0;
  for (let at = 0; at < text.length;) {
    let nl = text.indexOf("\n", at);
    if (nl === -1) nl = text.length;
    parseLine(text, at, nl, out);
    at = nl + 1;
    if (++lines % LINES_PER_STEP === 0) yield;
  }
  return out;
}

/** Parses one feed's text at once. Pure. */
export function parseFeed(text: string): ParsedFeed {
  return atOnce(parseFeedSteps(text));
}

function merge4(encoded: Float64Array): Ranges<number> {
  encoded.sort();
  const starts: number[] = [], ends: number[] = [];
  for (const v of encoded) {
    const bits = v % 64, s = (v - bits) / 64, e = s + 2 ** (V4_BITS - bits) - 1;
    const last = ends.length - 1;
    if (last >= 0 && s <= ends[last]! + 1) { if (e > ends[last]!) ends[last] = e; } // overlapping or adjacent: one range
    else { starts.push(s); ends.push(e); }
  }
  return { starts, ends };
}

function merge6(list: Array<[bigint, bigint]>): Ranges<bigint> {
  const starts: bigint[] = [], ends: bigint[] = [];
  for (const [s, e] of [...list].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) {
    const last = ends.length - 1;
    if (last >= 0 && s <= ends[last]! + 1n) { if (e > ends[last]!) ends[last] = e; }
    else { starts.push(s); ends.push(e); }
  }
  return { starts, ends };
}

function within<T extends number | bigint>(r: Ranges<T>, x: T): boolean {
  let lo = 0, hi = r.starts.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (x < r.starts[mid]!) hi = mid - 1;
    else if (x > r.ends[mid]!) lo = mid + 1;
    else return true;
  }
  return false;
}

/** The union of feeds, for lookups. Immutable. */
export class AddressSet {
  readonly #v4: Ranges<number>;
  readonly #v6: Ranges<bigint>;
  /** Disjoint ranges held (after merging overlapping and adjacent networks). */
  readonly ranges: number;

  constructor(feeds: Iterable<ParsedFeed>) {
    const list = [...feeds];
    const v6 = list.flatMap((f) => f.v6);
    // Client addresses arrive IPv4-mapped on dual-stack sockets and are looked up as IPv4, so the
    // part of an IPv6 network inside ::ffff:0:0/96 (itself a CIDR: the whole block, or the network) is listed as IPv4 too.
    const mapped: number[] = [];
    for (const [s, e] of v6) {
      const lo = s > MAPPED ? s : MAPPED, hi = e < MAPPED_END ? e : MAPPED_END;
      if (lo <= hi) mapped.push(encode4(Number(lo - MAPPED), V4_BITS - ((hi - lo + 1n).toString(2).length - 1)));
    }
    const v4 = new Float64Array(list.reduce((n, f) => n + f.v4.length, mapped.length));
    let at = 0;
    for (const f of list) { v4.set(f.v4, at); at += f.v4.length; }
    v4.set(mapped, at);
    this.#v4 = merge4(v4);
    this.#v6 = merge6(v6);
    this.ranges = this.#v4.starts.length + this.#v6.starts.length;
  }

  /** Whether the (normalised) client address is listed. */
  has(addr: string): boolean {
    if (this.ranges === 0) return false;
    const n = v4At(addr, 0, addr.length);
    if (n !== -1) return within(this.#v4, n);
    return this.#v6.starts.length > 0 && isIP(addr) === 6 && within(this.#v6, v6ToBigInt(addr));
  }
}

/** A source is an absolute file or directory path, an https:// URL, or an http:// URL on loopback (a sidecar). */
export function sourceProblem(source: string): string | undefined {
  if (source.startsWith("/")) return undefined;
  let url: URL;
  try { url = new URL(source); } catch { return "is neither an absolute path nor a URL"; }
  if (url.protocol === "https:") return undefined;
  if (url.protocol === "http:" && ["127.0.0.1", "localhost", "[::1]"].includes(url.hostname)) return undefined;
  return "must be an absolute path, an https:// URL, or an http:// URL on loopback";
}

/** What metrics and logs call a source: a URL by its host (feed URLs often carry an access key), a path as is. */
export function sourceLabel(source: string): string {
  return source.startsWith("/") ? source : new URL(source).host;
}

export interface ThreatFeedOptions {
  sources: readonly string[];
  refreshMs: number;
  /** Per URL fetch (whole response). */
  fetchTimeoutMs?: number;
  /** Largest feed accepted, in bytes. */
  maxBytes?: number;
  log: { info(msg: string, meta?: object): void; warn(msg: string, meta?: object): void };
  onRefresh?: (source: string, outcome: "loaded" | "failed") => void;
  /** After each pass: the ranges now in force. */
  onApplied?: (ranges: number) => void;
}

export class ThreatFeeds {
  readonly #o: Required<Omit<ThreatFeedOptions, "onRefresh" | "onApplied">> & Pick<ThreatFeedOptions, "onRefresh" | "onApplied">;
  readonly #lists = new Map<string, { digest: string; feed: ParsedFeed }>();
  #set = new AddressSet([]);
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;

  constructor(opts: ThreatFeedOptions) {
    this.#o = { fetchTimeoutMs: 10_000, maxBytes: 32 << 20, ...opts };
  }

  get ranges(): number { return this.#set.ranges; }

  has(addr: string): boolean { return this.#set.has(addr); }

  /** Loads every source once (awaited at start), then again every refreshMs. */
  async start(): Promise<void> {
    await this.refresh();
    this.#timer = setInterval(() => { void this.refresh(); }, this.#o.refreshMs);
    this.#timer.unref();
  }

  stop(): void { clearInterval(this.#timer); }

  /**
   * Reads every source; one that fails keeps its last good list, one whose text is unchanged is not
   * parsed again, and the lookup set is rebuilt only when some list changed. Concurrent calls share one pass.
   */
  refresh(): Promise<void> {
    this.#running ??= this.#refresh().finally(() => { this.#running = undefined; });
    return this.#running;
  }

  async #refresh(): Promise<void> {
    let changed = false;
    await Promise.all(this.#o.sources.map(async (source) => {
      const label = sourceLabel(source);
      try {
        const text = await this.#read(source);
        const digest = createHash("sha256").update(text).digest("hex");
        if (this.#lists.get(source)?.digest !== digest) {
          const feed = await stepwise(parseFeedSteps(text));
          this.#lists.set(source, { digest, feed });
          changed = true;
          if (feed.invalid > 0) this.#o.log.warn("Threat feed has lines that are not addresses or CIDRs (skipped)", { feed: label, invalid: feed.invalid });
        }
        this.#o.onRefresh?.(label, "loaded");
      } catch (err) {
        this.#o.onRefresh?.(label, "failed");
        this.#o.log.warn("Threat feed not refreshed; its last list stays in force", { feed: label, error: (err as Error).message, kept: this.#lists.has(source) });
      }
    }));
    if (changed) {
      this.#set = new AddressSet([...this.#lists.values()].map((l) => l.feed));
      this.#o.log.info("Threat feeds applied", { ranges: this.#set.ranges, sources: this.#o.sources.length });
    }
    this.#o.onApplied?.(this.#set.ranges);
  }

  async #read(source: string): Promise<string> {
    if (!source.startsWith("/")) return this.#fetch(source);
    const stat = await fs.stat(source);
    if (!stat.isDirectory()) return this.#file(source);
    const names = (await fs.readdir(source, { withFileTypes: true })).filter((d) => !d.name.startsWith(".") && (d.isFile() || d.isSymbolicLink()));
    const texts = await Promise.all(names.map((d) => this.#file(path.join(source, d.name))));
    return texts.join("\n");
  }

  async #file(file: string): Promise<string> {
    const stat = await fs.stat(file);
    if (stat.size > this.#o.maxBytes) throw new Error(`larger than ${this.#o.maxBytes} bytes`);
    return fs.readFile(file, "utf8");
  }

  async #fetch(url: string): Promise<string> {
    const signal = AbortSignal.timeout(this.#o.fetchTimeoutMs);
    const res = await request(url, { method: "GET", signal, headers: { accept: "text/plain, */*" } });
    if (res.statusCode !== 200) { await res.body.dump(); throw new Error(`HTTP ${res.statusCode}`); }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of res.body as AsyncIterable<Buffer>) {
      size += c.length;
      if (size > this.#o.maxBytes) { res.body.destroy(); throw new Error(`larger than ${this.#o.maxBytes} bytes`); }
      chunks.push(c);
    }
    return Buffer.concat(chunks).toString("utf8");
  }
}

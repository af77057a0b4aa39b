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
import fs from "node:fs/promises";
import path from "node:path";
import { isIP } from "node:net";
import { request } from "undici";
import { expand6, normalise } from "./client-ip.ts";

/** Merged address ranges of one family: `starts[i]..ends[i]` inclusive, sorted, disjoint. */
interface Ranges<T> { starts: T[]; ends: T[] }

export interface ParsedFeed {
  v4: Array<[number, number]>;
  v6: Array<[bigint, bigint]>;
  /** Lines that held something other than an address or CIDR (comments and blank lines are not counted). */
  invalid: number;
}

const V4_BITS = 32, V6_BITS = 128;
/** ::ffff:0:0/96, where IPv4 addresses sit in IPv6. */
const MAPPED = 0xffff_0000_0000n, MAPPED_END = 0xffff_ffff_ffffn;

function v4ToNumber(a: string): number | undefined {
  const parts = a.split(".");
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
    n = n * 256 + Number(p);
  }
  return n;
}

const v6ToBigInt = (a: string): bigint => BigInt(`0x${expand6(a).join("")}`);

/** Parses one feed's text. Pure. */
export function parseFeed(text: string): ParsedFeed {
  const out: ParsedFeed = { v4: [], v6: [], invalid: 0 };
  for (const line of text.split("\n")) {
    const field = line.replace(/[#;].*$/, "").trim().split(/[\s,]+/)[0];
    if (!field) continue;
    const slash = field.indexOf("/");
    const addr = normalise(slash === -1 ? field : field.slice(0, slash));
    const bitsText = slash === -1 ? undefined : field.slice(slash + 1);
    const family = isIP(addr);
    const max = family === 4 ? V4_BITS : V6_BITS;
    const bits = bitsText === undefined ? max : /^\d{1,3}$/.test(bitsText) ? Number(bitsText) : NaN;
    // `::ffff:a.b.c.d/n` (an IPv4-mapped network) is the IPv4 network /(n − 96).
    const mapped = family === 4 && addr !== field.slice(0, slash === -1 ? undefined : slash);
    const b = mapped && bitsText !== undefined ? bits - 96 : bits;
    if (family === 0 || !(b >= 0 && b <= max)) { out.invalid++; continue; }
    if (family === 4) {
      const n = v4ToNumber(addr)!;
      const size = 2 ** (V4_BITS - b);
      const start = n - (n % size);
      out.v4.push([start, start + size - 1]);
    } else {
      const n = v6ToBigInt(addr);
      const host = BigInt(V6_BITS - b);
      const start = (n >> host) << host;
      out.v6.push([start, start + (1n << host) - 1n]);
    }
  }
  return out;
}

function merge4(list: Array<[number, number]>): Ranges<number> {
  const starts: number[] = [], ends: number[] = [];
  for (const [s, e] of [...list].sort((a, b) => a[0] - b[0])) {
    const last = ends.length - 1;
    if (last >= 0 && s <= ends[last]! + 1) ends[last] = Math.max(ends[last]!, e); // overlapping or adjacent: one range
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
    const v4: Array<[number, number]> = [], v6: Array<[bigint, bigint]> = [];
    for (const f of feeds) { v4.push(...f.v4); v6.push(...f.v6); }
    // Client addresses arrive IPv4-mapped on dual-stack sockets and are looked up as IPv4, so the
    // part of an IPv6 network inside ::ffff:0:0/96 is listed as IPv4 too.
    for (const [s, e] of v6) {
      const lo = s > MAPPED ? s : MAPPED, hi = e < MAPPED_END ? e : MAPPED_END;
      if (lo <= hi) v4.push([Number(lo - MAPPED), Number(hi - MAPPED)]);
    }
    this.#v4 = merge4(v4);
    this.#v6 = merge6(v6);
    this.ranges = this.#v4.starts.length + this.#v6.starts.length;
  }

  /** Whether the (normalised) client address is listed. */
  has(addr: string): boolean {
    if (this.ranges === 0) return false;
    const family = isIP(addr);
    if (family === 4) return within(this.#v4, v4ToNumber(addr)!);
    if (family === 6) return this.#v6.starts.length > 0 && within(this.#v6, v6ToBigInt(addr));
    return false;
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
  readonly #lists = new Map<string, ParsedFeed>();
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

  /** Reads every source; one that fails keeps its last good list. Concurrent calls share one pass. */
  refresh(): Promise<void> {
    this.#running ??= this.#refresh().finally(() => { this.#running = undefined; });
    return this.#running;
  }

  async #refresh(): Promise<void> {
    await Promise.all(this.#o.sources.map(async (source) => {
      const label = sourceLabel(source);
      try {
        const feed = parseFeed(await this.#read(source));
        this.#lists.set(source, feed);
        this.#o.onRefresh?.(label, "loaded");
        if (feed.invalid > 0) this.#o.log.warn("Threat feed has lines that are not addresses or CIDRs (skipped)", { feed: label, invalid: feed.invalid });
      } catch (err) {
        this.#o.onRefresh?.(label, "failed");
        this.#o.log.warn("Threat feed not refreshed; its last list stays in force", { feed: label, error: (err as Error).message, kept: this.#lists.has(source) });
      }
    }));
    const before = this.#set.ranges;
    this.#set = new AddressSet(this.#lists.values());
    if (this.#set.ranges !== before) this.#o.log.info("Threat feeds applied", { ranges: this.#set.ranges, sources: this.#o.sources.length });
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

/**
 * Reading a large gateway-config document (directory mode: one environment can hold 100,000
 * keys, ~25 MB of JSON) without ever holding it parsed: a byte scanner finds the top-level
 * `keys` array and its elements' byte ranges, then the document without its keys and the keys in
 * batches are each given to JSON.parse. Peak memory is the bytes plus one batch (a whole-document
 * JSON.parse holds ~70 MB of objects for 100,000 keys and leaves the heap grown), and every step
 * is small enough to run one per macrotask (applyLarge) or all at once (the first load).
 *
 * Same results as JSON.parse of the whole text: the scanner tracks strings (escapes included) and
 * bracket nesting exactly, the batches are the original bytes between the array's brackets, and a
 * document is accepted only when both the rest and every batch parse. The last top-level `keys`
 * member wins, as in JSON.parse.
 */

const QUOTE = 0x22, BACKSLASH = 0x5c, COLON = 0x3a, COMMA = 0x2c;
const OPEN_OBJECT = 0x7b, CLOSE_OBJECT = 0x7d, OPEN_ARRAY = 0x5b, CLOSE_ARRAY = 0x5d;
const KEYS_TOKEN = Buffer.from('"keys"');
const isSpace = (b: number) => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;

/** Where the keys are: element byte ranges `[starts[i], ends[i])`, and the text without them. */
export interface SplitDocument {
  /** The document with the top-level `keys` array(s) emptied. */
  readonly rest: string;
  readonly count: number;
  readonly starts: Uint32Array;
  readonly ends: Uint32Array;
}

class Ranges {
  count = 0;
  starts = new Uint32Array(1024);
  ends = new Uint32Array(1024);
  push(start: number, end: number): void {
    if (this.count === this.starts.length) {
      const s = new Uint32Array(this.count * 2), e = new Uint32Array(this.count * 2);
      s.set(this.starts); e.set(this.ends);
      this.starts = s; this.ends = e;
    }
    this.starts[this.count] = start;
    this.ends[this.count++] = end;
  }
}

/**
 * Scans `buf`, yielding after every `step` bytes (256 KB: ~1 ms here); returns undefined when the bytes are not
 * well-formed at the level it checks (unterminated string, mismatched brackets), so the caller
 * reports invalid JSON without parsing anything.
 */
export function* splitKeys(buf: Buffer, step = 256 * 1024): Generator<void, SplitDocument | undefined> {
  const scanner = new Scanner(buf);
  for (let at = 0; at < buf.length; at += step) {
    if (at > 0) yield;
    if (!scanner.scan(Math.min(buf.length, at + step))) return undefined;
  }
  return scanner.finish();
}

/** The scanner's state between steps (locals in the hot loop, written back at the end of a step). */
class Scanner {
  readonly #buf: Buffer;
  /** The same bytes as a plain Uint8Array (the hot loop's element loads are faster on it). */
  readonly #bytes: Uint8Array;
  #i = 0;
  #depth = 0;
  readonly #stack = new Uint8Array(1024);
  /** Inside a string that started in an earlier step (its opening quote's offset), or -1. */
  #stringStart = -1;
  /** Byte ranges of top-level `keys` arrays' interiors (between the brackets), in order. */
  readonly #blanks: Array<[number, number]> = [];
  #ranges: Ranges | undefined;
  /** The elements of the last top-level `keys` array closed so far. */
  #found: Ranges | undefined;
  #keysDepth = -1;
  #elementStart = 0;
  /** The last string closed directly inside the root object (a member name if ':' follows). */
  #nameStart = -1;
  #nameEnd = -1;
  #expectKeysValue = false;

  constructor(buf: Buffer) {
    this.#buf = buf;
    this.#bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
  }

  /** Scans up to byte `to`; false when the document is malformed. */
  scan(to: number): boolean {
    const buf = this.#bytes, stack = this.#stack;
    let i = this.#i, depth = this.#depth, stringStart = this.#stringStart, expectKeysValue = this.#expectKeysValue;
    let keysDepth = this.#keysDepth;
    let ok = true;
    for (; i < to; i++) {
      if (stringStart >= 0) {
        // Inside a string: find its closing quote, skipping escaped characters.
        for (; i < to; i++) {
          const c = buf[i]!;
          if (c === BACKSLASH) i++;
          else if (c === QUOTE) break;
        }
        if (i >= to) break;
        if (depth === 1 && stack[0] === OPEN_OBJECT) { this.#nameStart = stringStart; this.#nameEnd = i + 1; }
        stringStart = -1;
        expectKeysValue = false;
        continue;
      }
      const b = buf[i]!;
      if (b === QUOTE) { stringStart = i; continue; }
      if (b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09) continue;
      if (b === COMMA) {
        if (depth === keysDepth) this.#element(i);
        expectKeysValue = false;
        continue;
      }
      if (b === COLON) {
        expectKeysValue = depth === 1 && this.#nameEnd > 0 && isKeysName(this.#buf, this.#nameStart, this.#nameEnd);
        this.#nameEnd = -1;
        continue;
      }
      if (b === OPEN_OBJECT || b === OPEN_ARRAY) {
        if (depth === stack.length) { ok = false; break; }
        if (expectKeysValue && b === OPEN_ARRAY) this.#openKeys(i, (keysDepth = depth + 1));
        stack[depth++] = b;
        expectKeysValue = false;
        continue;
      }
      if (b === CLOSE_OBJECT || b === CLOSE_ARRAY) {
        if (depth === 0 || stack[depth - 1] !== (b === CLOSE_OBJECT ? OPEN_OBJECT : OPEN_ARRAY)) { ok = false; break; }
        if (depth === keysDepth) { this.#closeKeys(i); keysDepth = -1; }
        depth--;
        expectKeysValue = false;
        continue;
      }
      expectKeysValue = false;
    }
    // The next byte to look at (one past `to` when a step ended on a backslash inside a string).
    this.#i = i;
    this.#depth = depth;
    this.#stringStart = stringStart;
    this.#expectKeysValue = expectKeysValue;
    this.#keysDepth = keysDepth;
    return ok;
  }

  #openKeys(i: number, depth: number): void {
    this.#keysDepth = depth;
    this.#ranges = new Ranges();
    this.#elementStart = i + 1;
    this.#blanks.push([i + 1, i + 1]);
  }

  #element(i: number): void {
    this.#ranges!.push(this.#elementStart, i);
    this.#elementStart = i + 1;
  }

  #closeKeys(i: number): void {
    // An empty array has no element; anything else between the brackets is one (maybe empty: invalid).
    const ranges = this.#ranges!;
    if (ranges.count > 0 || !allSpace(this.#bytes, this.#elementStart, i)) ranges.push(this.#elementStart, i);
    this.#blanks[this.#blanks.length - 1]![1] = i;
    this.#keysDepth = -1;
    this.#found = ranges;
  }

  finish(): SplitDocument | undefined {
    if (this.#depth !== 0 || this.#stringStart >= 0) return undefined;
    const buf = this.#buf;
    let rest = "";
    let at = 0;
    for (const [from, to] of this.#blanks) { rest += buf.toString("utf8", at, from); at = to; }
    rest += buf.toString("utf8", at, buf.length);
    const found = this.#found;
    return { rest, count: found?.count ?? 0, starts: found?.starts ?? new Uint32Array(0), ends: found?.ends ?? new Uint32Array(0) };
  }
}

function isKeysName(buf: Buffer, start: number, end: number): boolean {
  if (end - start === KEYS_TOKEN.length && buf.compare(KEYS_TOKEN, 0, KEYS_TOKEN.length, start, end) === 0) return true;
  if (!buf.subarray(start, end).includes(BACKSLASH)) return false;
  try { return JSON.parse(buf.toString("utf8", start, end)) === "keys"; } catch { return false; }
}

function allSpace(buf: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (!isSpace(buf[i]!)) return false;
  return true;
}

/** Elements `from` (inclusive) to `to` (exclusive) of the keys array, parsed; undefined when not valid JSON. */
export function parseElements(buf: Buffer, split: SplitDocument, from: number, to: number): unknown[] | undefined {
  if (to <= from) return [];
  try {
    const items = JSON.parse(`[${buf.toString("utf8", split.starts[from], split.ends[to - 1])}]`) as unknown[];
    // The ranges are split at the array's own commas, so a parse yields exactly one item per range.
    return items.length === to - from ? items : undefined;
  } catch {
    return undefined;
  }
}

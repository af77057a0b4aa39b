/**
 * Finds payloads hidden in encodings (base64, hex, percent-encoding) so they can be screened
 * again. Every pattern is a single character class under one quantifier or a fixed-width unit
 * repeated: no nested ambiguity, so matching is linear in the input.
 */
import type { Transform } from "./types.ts";

const BASE64_RUN = /(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{16,}={0,2}/g;
const HEX_RUN = /(?<![0-9A-Fa-f])[0-9A-Fa-f]{16,}(?![0-9A-Fa-f])/g;
const HEX_SPACED = /(?<![0-9A-Za-z\\])(?:(?:\\x|0x)?[0-9A-Fa-f]{2}[ ,:]){7,}(?:\\x|0x)?[0-9A-Fa-f]{2}/g;
const HEX_ESCAPED = /(?:\\x[0-9A-Fa-f]{2}){4,}/g;
const PERCENT = /%[0-9A-Fa-f]{2}/;
const HEX_ONLY = /^[0-9A-Fa-f]+$/;
const BASE64_EXTRA = /[0-9+/=_-]/;
const UPPER = /[A-Z]/;
const LOWER = /[a-z]/;
const PERCENT_RUN = /(?:%[0-9A-Fa-f]{2})+/g;
const PERCENT_ESCAPE = /%[0-9A-Fa-f]{2}/g;
const WHITESPACE = /\s/;

export interface Decoded {
  readonly transform: Transform;
  readonly text: string;
}

/** Share of printable characters required for decoded bytes to count as text. */
const MIN_PRINTABLE = 0.9;

function printableText(buf: Buffer): string | null {
  if (buf.length < 6) return null;
  const text = buf.toString("utf8");
  let printable = 0;
  let letters = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0xfffd) continue;
    if ((c >= 32 && c !== 127) || c === 9 || c === 10 || c === 13) printable++;
    if ((c >= 65 && c <= 90) || (c >= 97 && c <= 122)) letters++;
  }
  return printable >= MIN_PRINTABLE * text.length && letters >= 0.5 * text.length ? text : null;
}

/**
 * Decoded payloads found in `text`, at most `maxBytes` of decoded output in total (the rest is
 * skipped: the caller records that screening was truncated when `truncated` is set).
 */
export function findEncodedPayloads(text: string, maxBytes: number): { payloads: Decoded[]; truncated: boolean } {
  const payloads: Decoded[] = [];
  let budget = maxBytes;
  let truncated = false;
  const add = (transform: Transform, buf: Buffer | null): void => {
    if (!buf) return;
    if (buf.length > budget) { truncated = true; return; }
    const decoded = printableText(buf);
    if (decoded === null) return;
    budget -= buf.length;
    payloads.push({ transform, text: decoded });
  };

  for (const m of text.matchAll(BASE64_RUN)) {
    const run = m[0];
    // Hex-only runs are handled below; pure-letter runs are usually words glued together.
    if (HEX_ONLY.test(run) || (!BASE64_EXTRA.test(run) && !(UPPER.test(run) && LOWER.test(run)))) continue;
    add("base64", Buffer.from(run.replace(/[-_]/g, (c) => (c === "-" ? "+" : "/")), "base64"));
  }
  for (const m of text.matchAll(HEX_RUN)) if (m[0].length % 2 === 0) add("hex", Buffer.from(m[0], "hex"));
  for (const re of [HEX_SPACED, HEX_ESCAPED]) {
    for (const m of text.matchAll(re)) add("hex", Buffer.from(m[0].replace(/\\x|0x|[ ,:]/g, ""), "hex"));
  }
  if (PERCENT.test(text)) {
    // Only the whitespace-delimited pieces that carry escapes, so a long text with one escaped
    // URL does not get screened twice.
    const pieces: string[] = [];
    let lastEnd = 0;
    for (const m of text.matchAll(PERCENT_ESCAPE)) {
      if (m.index < lastEnd) continue;
      let start = m.index;
      while (start > lastEnd && !WHITESPACE.test(text[start - 1]!)) start--;
      let end = m.index + 3;
      while (end < text.length && !WHITESPACE.test(text[end]!)) end++;
      lastEnd = end;
      pieces.push(text.slice(start, end).replace(PERCENT_RUN, (run) => {
        try { return decodeURIComponent(run); } catch { return Buffer.from(run.replace(/%/g, ""), "hex").toString("latin1"); }
      }));
    }
    const decoded = pieces.join(" ");
    if (decoded.length > budget) truncated = true;
    else if (decoded.length >= 6) { budget -= decoded.length; payloads.push({ transform: "url_encoded", text: decoded }); }
  }
  return { payloads, truncated };
}

/**
 * One redaction function for everything the gateway writes to its audit and operational logs:
 * client-supplied text (model names, paths, header values…) may hold an API key, so anything shaped
 * like one is replaced before a line is written. Keys keep only their loggable prefix.
 */

/** A key or any longer-than-prefix piece of one: `clsk_live_` / `clsk_test_` + more than the 8 prefix digits. */
const KEY = /clsk_(live|test)_([0-9a-fA-F]{8})[0-9a-fA-F]+/g;
/**
 * A key's random part without its scheme: 40+ hex digits (64 are a whole key or a SHA-256 hash).
 * Shorter runs stay: leaking fewer than 40 of the 64 digits leaves over 96 bits unknown, and the
 * gateway's own 32-digit request ids (`req_…`) must stay readable in logs and audit events.
 */
const HEX = /[0-9a-fA-F]{40,}/g;
/** Base64 of `clsk_` (at any of the three alignments) followed by more base64. */
const B64 = /(?:Y2xza1|Nsc2tf|jbHNrX)[A-Za-z0-9+/=_-]{8,}/g;
/** Any other `clsk_` token (malformed keys are still somebody's secret). */
const LOOSE = /clsk_(?!(?:live|test)_[0-9a-fA-F]{8}(?![A-Za-z0-9_-]))[A-Za-z0-9_-]{4,}/g;

/** The text with every key-like token replaced; returns the same string when there is nothing to redact. */
export function redactText(s: string): string {
  if (s.length < 12) return s;
  return s.replace(KEY, "clsk_$1_$2…[redacted]").replace(LOOSE, "clsk_[redacted]").replace(HEX, "[redacted-hex]").replace(B64, "[redacted-b64]");
}

/** Redacts every string in a JSON-like value (objects, arrays; depth-bounded; keys too). Returns a copy only where something changed. */
export function redact<T>(value: T, depth = 0): T {
  if (typeof value === "string") return redactText(value) as T;
  if (value === null || typeof value !== "object" || depth > 8) return value;
  if (value instanceof Date) return value;
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const r = redact(value[i] as unknown, depth + 1);
      if (r !== value[i]) (out ??= value.slice())[i] = r;
    }
    return (out ?? value) as T;
  }
  let out: Record<string, unknown> | undefined;
  for (const k of Object.keys(value)) {
    const v = (value as Record<string, unknown>)[k];
    const r = redact(v, depth + 1);
    const rk = redactText(k);
    if (r !== v || rk !== k) {
      out ??= { ...(value as Record<string, unknown>) };
      if (rk !== k) delete out[k];
      out[rk] = r;
    }
  }
  return (out ?? value) as T;
}

/** What may be logged of a client-supplied name that is not on a known list: its length and a short hash. */
export function describeUnknown(s: string, hash: (s: string) => string): { length: number; sha256: string } {
  return { length: s.length, sha256: hash(s).slice(0, 12) };
}

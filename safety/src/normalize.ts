/**
 * Text canonicalisation for screening (aggressive, lossy, never shown to anyone) and for outputs
 * (conservative: NFC plus removal of invisible and bidi-override characters).
 *
 * Screening form, in one linear pass after Unicode decomposition:
 *   NFKD (fullwidth, math alphanumerics, ligatures → ASCII) → combining marks dropped (diacritics,
 *   "zalgo") → invisible characters dropped (zero-width, bidi, tags, variation selectors, soft
 *   hyphen) → lowercase → confusables folded to ASCII (Cyrillic/Greek/Armenian look-alikes, small
 *   capitals) → leetspeak folded inside tokens that contain letters (`h0w t0 m4k3` → `how to make`)
 *   → every other character a separator. `words` keeps single spaces between tokens; `joined`
 *   also rejoins words split by punctuation or spacing, so `i g n o r e`, `ig-nore` and
 *   `i.g.n.o.r.e` all read `ignore`.
 */

/** Characters that render as nothing (or nearly) and are used to split words invisibly. */
// eslint-disable-next-line no-misleading-character-class -- variation selectors and the grapheme joiner are listed on purpose: they are what gets stripped
const INVISIBLE = /[\p{Cf}\u034F\u115F\u1160\u3164\uFFA0\u2800\uFE00-\uFE0F\u{E0100}-\u{E01EF}]/gu;
/** Kept in outputs: ZWJ/ZWNJ carry meaning in emoji sequences and several scripts. */
const INVISIBLE_OUTPUT = /[\u00AD\u061C\u115F\u1160\u180E\u200B\u200E\u200F\u202A-\u202E\u2060-\u2064\u2066-\u206F\u3164\uFEFF\uFFA0\u{E0000}-\u{E007F}]/gu;
const MARKS = /\p{M}/gu;
const NON_ASCII = /[\u0080-\uFFFF]/;

/** Confusable → ASCII letter, for characters NFKD leaves alone. Lowercase forms only (input is lowercased first). */
const CONFUSABLES: Record<string, string> = {
  // Cyrillic
  "а": "a", "б": "b", "в": "b", "г": "r", "д": "d", "е": "e", "ё": "e", "ж": "x", "з": "3", "и": "u", "й": "u", "к": "k", "л": "n",
  "м": "m", "н": "h", "о": "o", "п": "n", "р": "p", "с": "c", "т": "t", "у": "y", "ф": "o", "х": "x", "ц": "u", "ч": "4",
  "ш": "w", "щ": "w", "ъ": "b", "ы": "bl", "ь": "b", "э": "e", "ю": "io", "я": "r", "і": "i", "ї": "i", "ј": "j", "ѕ": "s",
  "ԁ": "d", "һ": "h", "ӏ": "l", "ԛ": "q", "ԝ": "w", "ү": "y", "ҫ": "c", "ɡ": "g", "ɑ": "a", "ѵ": "v", "ѡ": "w", "є": "e",
  // Greek
  "α": "a", "β": "b", "γ": "y", "δ": "d", "ε": "e", "ζ": "z", "η": "n", "θ": "o", "ι": "i", "κ": "k", "λ": "l", "μ": "u",
  "ν": "v", "ξ": "e", "ο": "o", "π": "n", "ρ": "p", "σ": "o", "ς": "s", "τ": "t", "υ": "u", "φ": "o", "χ": "x", "ψ": "w", "ω": "w",
  // Armenian
  "օ": "o", "ս": "u", "հ": "h", "ո": "n", "ց": "g", "ւ": "i", "զ": "q",
  // Latin look-alikes and small capitals
  "ı": "i", "ȷ": "j", "ł": "l", "ø": "o", "đ": "d", "ħ": "h", "ß": "ss", "æ": "ae", "œ": "oe", "þ": "p", "ƅ": "b", "ɩ": "i",
  "ᴀ": "a", "ʙ": "b", "ᴄ": "c", "ᴅ": "d", "ᴇ": "e", "ғ": "f", "ɢ": "g", "ʜ": "h", "ɪ": "i", "ᴊ": "j", "ᴋ": "k", "ʟ": "l",
  "ᴍ": "m", "ɴ": "n", "ᴏ": "o", "ᴘ": "p", "ʀ": "r", "ꜱ": "s", "ᴛ": "t", "ᴜ": "u", "ᴠ": "v", "ᴡ": "w", "ʏ": "y", "ᴢ": "z",
  "ɐ": "a", "ǝ": "e", "ɔ": "c", "ɹ": "r", "ʇ": "t", "ʌ": "v", "ʍ": "w", "ʎ": "y",
  // Quotes and apostrophes vanish inside words (don't → dont).
  "\u2018": "'", "\u2019": "'", "\u02BC": "'", "\u0060": "'", "\u00B4": "'",
};

/** One code unit → up to two ASCII bytes (0 = separator). Built once. */
const FOLD = new Uint16Array(0x10000);
for (let c = 0; c < 128; c++) {
  const ch = String.fromCharCode(c).toLowerCase();
  const code = ch.charCodeAt(0);
  FOLD[c] = (code >= 97 && code <= 122) || (code >= 48 && code <= 57) || "@$!|'".includes(ch) ? code : 0;
}
for (const [k, v] of Object.entries(CONFUSABLES)) {
  const code = k.charCodeAt(0);
  FOLD[code] = v.charCodeAt(0) | (v.length > 1 ? v.charCodeAt(1) << 8 : 0);
  const upper = k.toUpperCase();
  if (upper.length === 1 && upper !== k) FOLD[upper.charCodeAt(0)] = FOLD[code]!;
}

const LEET: Record<string, string> = { "0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g", "@": "a", "$": "s", "!": "i", "|": "l" };
const LEET_MAP = new Uint8Array(128);
for (const [k, v] of Object.entries(LEET)) LEET_MAP[k.charCodeAt(0)] = v.charCodeAt(0);
/** Tokens whose digits are meaningful: never leet-folded. */
const KEEP_TOKENS = new Set(["c4", "3d", "2d", "mp3", "mp4", "4k", "8k", "5g", "4g", "3g", "b2b", "h2o", "co2", "p2p", "ar15", "m16", "ak47", "1st", "2nd", "3rd", "vx"]);
const UNIT_SUFFIX = /^(?:\d*1st|\d*2nd|\d*3rd|\d+th|\d+(?:s|k|m|g|x|d|h|gb|mb|kb|px|am|pm|p|v|w|hz|ms|yo))$/;
/** Mixed letter/digit tokens after which short all-digit tokens are read as leetspeak too (`d0 1 m4k3 4 b0mb`). */
const LEET_TEXT_MIN_MIXED = 3;

export interface ScreeningForms {
  /** Lowercase ASCII tokens joined by single spaces, with a leading and trailing space. */
  readonly words: string;
  /**
   * Like `words`, but punctuation inside a token joins instead of splitting (`ig-nore`,
   * `b.o.m.b` → `ignore`, `bomb`) and runs of single characters separated by one space merge
   * (`i g n o r e` → `ignore`; a double space ends the run). Equal to `words` for plain text.
   */
  readonly joined: string;
}

/** Drop invisible characters and fold compatibility forms and diacritics. Linear time. */
export function stripForScreening(text: string): string {
  if (!NON_ASCII.test(text)) return text;
  return text.normalize("NFKD").replace(MARKS, "").replace(INVISIBLE, "");
}

function isLetter(b: number): boolean { return b >= 97 && b <= 122; }
function isDigit(b: number): boolean { return b >= 48 && b <= 57; }
function isWordByte(b: number): boolean { return b > 32; }

const PUNCT = 1;
const SPACE = 32;
const WIDE_SPACE = 2;

/** Fold code units to ASCII bytes: letters, digits, leet symbols; PUNCT, SPACE or WIDE_SPACE between. */
function foldBytes(s: string): { bytes: Uint8Array; length: number; joinable: boolean; mixedTokens: number } {
  const bytes = new Uint8Array(s.length * 2 + 2);
  let n = 0;
  let spaces = 0;
  let run = 0;
  let mixedTokens = 0;
  let tokenLetters = false;
  let tokenDigits = false;
  let punct = false;
  let joinable = false;
  let lastTokenLen = 0;
  let tokenLen = 0;
  const flushSep = (): void => {
    if (spaces === 0 && !punct) return;
    if (n > 0) {
      bytes[n++] = spaces >= 2 ? WIDE_SPACE : spaces === 1 ? SPACE : PUNCT;
      if (punct && spaces === 0) joinable = true;
      if (spaces === 1 && tokenLen === 1 && lastTokenLen === 1) joinable = true;
    }
    lastTokenLen = tokenLen;
    if (tokenLetters && tokenDigits) mixedTokens++;
    tokenLen = 0;
    tokenLetters = false;
    tokenDigits = false;
    spaces = 0;
    run = 0;
    punct = false;
  };
  for (let i = 0; i < s.length; i++) {
    const code = s.charCodeAt(i);
    let f = FOLD[code]!;
    if (f === 0) {
      if (code === 32 || code === 9 || code === 10 || code === 13 || code === 0xa0 || (code >= 0x2000 && code <= 0x200a) || code === 0x3000) {
        run++;
        if (run > spaces) spaces = run;
      } else { punct = true; run = 0; }
      continue;
    }
    if (f === 39) { run = 0; continue; } // apostrophe: joins (don't → dont; `d ' s` → `ds`)
    flushSep();
    const low = f & 0xff;
    if (isLetter(low)) tokenLetters = true;
    else if (isDigit(low)) tokenDigits = true;
    bytes[n++] = low;
    tokenLen++;
    f >>= 8;
    if (f) bytes[n++] = f;
  }
  flushSep();
  return { bytes, length: n, joinable, mixedTokens };
}

/** Write one token with leetspeak folded when it has letters; returns the new write position. */
function writeToken(tok: Uint8Array, len: number, out: Uint8Array, w: number, leetDigits: boolean): number {
  let letters = 0;
  let digits = 0;
  for (let i = 0; i < len; i++) { const b = tok[i]!; if (isLetter(b)) letters++; else if (isDigit(b)) digits++; }
  let leet = letters > 0 || (leetDigits && digits === len && len <= 2);
  if (leet && digits > 0 && len <= 6) {
    const token = String.fromCharCode(...tok.subarray(0, len));
    if (KEEP_TOKENS.has(token) || UNIT_SUFFIX.test(token)) leet = false;
  }
  const before = w;
  for (let i = 0; i < len; i++) {
    const b = tok[i]!;
    let out1 = b;
    if (!isLetter(b) && !isDigit(b)) {
      // A symbol counts as a letter only inside a word (`cr@ck`, `$teal`), not as trailing punctuation.
      const next = i + 1 < len ? tok[i + 1]! : 0;
      out1 = leet && next !== 0 && (isLetter(next) || isDigit(next) || LEET_MAP[next]) ? LEET_MAP[b]! : 0;
    } else if (leet && isDigit(b)) {
      out1 = LEET_MAP[b] || b;
    }
    if (out1) out[w++] = out1;
  }
  if (w > before) out[w++] = SPACE;
  return w;
}

/** Word bytes in the whitespace-delimited piece starting at `from` (PUNCT skipped), counting to 2 at most. */
function nextPieceLength(bytes: Uint8Array, n: number, from: number): number {
  let len = 0;
  for (let j = from; j < n && len < 2; j++) {
    const b = bytes[j]!;
    if (b === SPACE || b === WIDE_SPACE) break;
    if (isWordByte(b)) len++;
  }
  return len;
}

function buildForm(bytes: Uint8Array, n: number, joined: boolean, leetDigits: boolean): string {
  const out = new Uint8Array(n + 2);
  const tok = new Uint8Array(n + 1);
  let w = 0;
  out[w++] = SPACE;
  let t = 0; // current token length in tok
  let pieceLen = 0; // length of the piece being read (between whitespace)
  let singlesRun = 0; // pieces of length 1 merged into tok so far
  let i = 0;
  while (i <= n) {
    const b = i < n ? bytes[i]! : WIDE_SPACE;
    if (isWordByte(b)) { tok[t++] = b; pieceLen++; i++; continue; }
    if (b === PUNCT && joined) { i++; continue; }
    // A boundary. In joined mode a single-character piece followed by one space may merge with the next one.
    if (joined && b === SPACE && pieceLen === 1 && (singlesRun > 0 || t === 1) && nextPieceLength(bytes, n, i + 1) === 1) {
      singlesRun++;
      pieceLen = 0;
      i++;
      continue;
    }
    if (t > 0) w = writeToken(tok, t, out, w, leetDigits);
    t = 0;
    pieceLen = 0;
    singlesRun = 0;
    i++;
  }
  return latin1(out.subarray(0, w));
}

/** The screening forms of `text` (see the module comment). Linear time. */
export function screeningForms(text: string): ScreeningForms {
  return formsOfStripped(stripForScreening(text));
}

/** `screeningForms` of a text already passed through `stripForScreening`. */
export function formsOfStripped(stripped: string): ScreeningForms {
  const { bytes, length, joinable, mixedTokens } = foldBytes(stripped);
  const leetDigits = mixedTokens >= LEET_TEXT_MIN_MIXED;
  const words = buildForm(bytes, length, false, leetDigits);
  return { words, joined: joinable ? buildForm(bytes, length, true, leetDigits) : words };
}

/** ROT13 of a screening form (ASCII lowercase letters, digits and spaces). */
export function rot13(form: string): string {
  const b = Buffer.from(form, "latin1");
  for (let i = 0; i < b.length; i++) {
    const x = b[i]!;
    if (x >= 97 && x <= 122) b[i] = ((x - 97 + 13) % 26) + 97;
  }
  return b.toString("latin1");
}

function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("latin1");
}

/**
 * Canonical form for text the gateway returns (seed: "Unicode normalization applied to text
 * outputs"): NFC, and characters that hide or reorder text removed (zero-width space, bidi
 * overrides and isolates — "Trojan Source" —, tag characters, BOM, soft hyphen). ZWJ and ZWNJ are
 * kept because emoji sequences and several scripts need them. Idempotent.
 */
export function normalizeOutputText(text: string): string {
  if (!NON_ASCII.test(text)) return text;
  return text.normalize("NFC").replace(INVISIBLE_OUTPUT, "");
}

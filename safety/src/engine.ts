/**
 * The scanner: runs the rule table over the screening forms of a text, over its ROT13 reading and
 * over payloads decoded from base64/hex/percent-encoding (recursively, bounded), and turns matches
 * into verdicts. Pure and synchronous.
 */
import { findEncodedPayloads } from "./decode.ts";
import { formsOfStripped, rot13, stripForScreening } from "./normalize.ts";
import { INPUT_RAW_RULES, INPUT_WORD_RULES, OUTPUT_RAW_RULES, OUTPUT_WORD_RULES, type Rule } from "./rules.ts";
import type { Scope, Transform, Verdict } from "./types.ts";

export type Direction = "input" | "output";

export interface ScanOptions {
  readonly direction: Direction;
  readonly scope: Scope;
  readonly index?: number;
  /** Decoded payload bytes allowed for this text (base64/hex/percent), summed over nesting. */
  readonly maxDecodedBytes?: number;
  /** Nesting of decoded payloads screened again (base64 inside hex…). */
  readonly maxDepth?: number;
  /** Also read the text as ROT13 (default true). */
  readonly rot13?: boolean;
  /** Skip rules whose keywords are absent (default true; false runs every rule, for tests). */
  readonly prefilter?: boolean;
}

const DEFAULT_DECODED_BYTES = 256 * 1024;
const DEFAULT_DEPTH = 2;

interface Ctx {
  readonly opts: ScanOptions;
  readonly wordRules: readonly Rule[];
  readonly rawRules: readonly Rule[];
  readonly seen: Set<string>;
  readonly out: Verdict[];
  budget: number;
  truncated: boolean;
}

function emit(ctx: Ctx, rule: Rule, transform: Transform): void {
  if (ctx.seen.has(rule.id)) return;
  ctx.seen.add(rule.id);
  const v: Verdict = ctx.opts.index === undefined
    ? { category: rule.category, ruleId: rule.id, score: rule.score, scope: ctx.opts.scope, transform }
    : { category: rule.category, ruleId: rule.id, score: rule.score, scope: ctx.opts.scope, transform, index: ctx.opts.index };
  ctx.out.push(v);
}

/** Token → indices of the word rules keyed on it, per rule list. */
const TOKEN_INDEX = new WeakMap<readonly Rule[], Map<string, number[]>>();

function tokenIndex(rules: readonly Rule[]): Map<string, number[]> {
  let index = TOKEN_INDEX.get(rules);
  if (!index) {
    index = new Map();
    rules.forEach((rule, i) => {
      if (rule.keyMatch !== "token") return;
      for (const k of rule.keys) { const list = index!.get(k); if (list) list.push(i); else index!.set(k, [i]); }
    });
    TOKEN_INDEX.set(rules, index);
  }
  return index;
}

/** Rules whose prefilter keys occur in `form` (a screening form: tokens between single spaces). */
function candidates(rules: readonly Rule[], form: string): Uint8Array {
  const hit = new Uint8Array(rules.length);
  const index = tokenIndex(rules);
  let start = 1;
  while (start < form.length) {
    const end = form.indexOf(" ", start);
    const list = index.get(form.slice(start, end < 0 ? form.length : end));
    if (list) for (const i of list) hit[i] = 1;
    if (end < 0) break;
    start = end + 1;
  }
  rules.forEach((rule, i) => {
    if (rule.keyMatch === "substring" && rule.keys.some((k) => form.includes(k))) hit[i] = 1;
  });
  return hit;
}

function runWordRules(ctx: Ctx, form: string, transform: Transform): void {
  const rules = ctx.wordRules;
  const hit = ctx.opts.prefilter === false ? null : candidates(rules, form);
  for (let i = 0; i < rules.length; i++) {
    const rule = rules[i]!;
    if ((hit === null || hit[i]) && !ctx.seen.has(rule.id) && rule.re.test(form)) emit(ctx, rule, transform);
  }
}

function runRawRules(ctx: Ctx, stripped: string, transform: Transform): void {
  let lower: string | null = null;
  for (const rule of ctx.rawRules) {
    if (ctx.seen.has(rule.id)) continue;
    if (ctx.opts.prefilter !== false) {
      lower ??= stripped.toLowerCase();
      if (!rule.keys.some((k) => lower!.includes(k))) continue;
    }
    if (rule.re.test(stripped)) emit(ctx, rule, transform);
  }
}

function scanInto(ctx: Ctx, text: string, transform: Transform, depth: number): void {
  const stripped = stripForScreening(text);
  const forms = formsOfStripped(stripped);
  runWordRules(ctx, forms.words, transform);
  if (forms.joined !== forms.words) runWordRules(ctx, forms.joined, transform === "none" ? "collapsed" : transform);
  runRawRules(ctx, stripped, transform);
  if (ctx.opts.direction !== "input") return;
  if (depth === 0 && ctx.opts.rot13 !== false) runWordRules(ctx, rot13(forms.joined), "rot13");
  if (depth >= (ctx.opts.maxDepth ?? DEFAULT_DEPTH)) return;
  const { payloads, truncated } = findEncodedPayloads(stripped, ctx.budget);
  if (truncated) ctx.truncated = true;
  for (const p of payloads) {
    ctx.budget -= p.text.length;
    scanInto(ctx, p.text, transform === "none" ? p.transform : transform, depth + 1);
  }
}

export interface ScanResult {
  readonly verdicts: Verdict[];
  /** Some decoded payloads were not screened because the budget ran out. */
  readonly truncated: boolean;
}

/** Scan one text. Each rule is reported at most once per call. */
export function scanText(text: string, opts: ScanOptions, alreadySeen?: ReadonlySet<string>): ScanResult {
  const ctx: Ctx = {
    opts,
    wordRules: opts.direction === "input" ? INPUT_WORD_RULES : OUTPUT_WORD_RULES,
    rawRules: opts.direction === "input" ? INPUT_RAW_RULES : OUTPUT_RAW_RULES,
    seen: new Set(alreadySeen),
    out: [],
    budget: opts.maxDecodedBytes ?? DEFAULT_DECODED_BYTES,
    truncated: false,
  };
  scanInto(ctx, text, "none", 0);
  return { verdicts: ctx.out, truncated: ctx.truncated };
}

/**
 * Score of a set of verdicts: the best score per rule group, combined by noisy-OR
 * (1 − Π(1 − sᵢ)). Rules in one group (e.g. every weak "dangerous topic" rule) never add up.
 */
export function combinedScore(verdicts: Iterable<Verdict>, groupOf: (ruleId: string) => string = ruleGroup): number {
  const best = new Map<string, number>();
  for (const v of verdicts) {
    const g = groupOf(v.ruleId);
    if ((best.get(g) ?? 0) < v.score) best.set(g, v.score);
  }
  let keep = 1;
  for (const s of best.values()) keep *= 1 - s;
  return Math.round((1 - keep) * 1000) / 1000;
}

const GROUPS = new Map<string, string>([...INPUT_WORD_RULES, ...INPUT_RAW_RULES, ...OUTPUT_WORD_RULES, ...OUTPUT_RAW_RULES].map((r) => [r.id, r.group]));

/** The scoring group of a rule id (verdicts from outside the rule table are their own group). */
export function ruleGroup(ruleId: string): string {
  return GROUPS.get(ruleId) ?? ruleId;
}

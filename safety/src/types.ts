/**
 * The shapes every screening function returns. A verdict is what may be recorded (audit events,
 * logs, metrics); by construction it holds no text from the request or the completion: only
 * closed enums, a rule id from this package's own rule table, numbers and an optional index.
 */

export const Categories = [
  "jailbreak", "prompt_injection",
  "weapons", "cbrn", "malware", "cybercrime", "violence", "self_harm", "sexual_minors", "drugs", "fraud",
  "secret_leak",
  "unsafe_url", "unsafe_file_ref",
  "classifier", "screening_limit",
] as const;
export type Category = (typeof Categories)[number];

/** How the matched text was reached: as written, or after decoding an embedded payload. */
export const Transforms = ["none", "collapsed", "rot13", "base64", "hex", "url_encoded"] as const;
export type Transform = (typeof Transforms)[number];

/** Where the match was found. `window` is the joined recent conversation (multi-turn splits). */
export const Scopes = ["message", "window", "prompt", "url_field", "output", "classifier"] as const;
export type Scope = (typeof Scopes)[number];

export interface Verdict {
  readonly category: Category;
  /** Stable id of the rule in this package (e.g. `jb.ignore_instructions`); never user text. */
  readonly ruleId: string;
  /** 0..1; the rule's weight (or the classifier's score). */
  readonly score: number;
  readonly scope: Scope;
  readonly transform: Transform;
  /** Index of the message (chat) or prompt (completions) the match came from, when known. */
  readonly index?: number;
}

/** The fields a Verdict may carry; tests assert nothing else ever appears. */
export const VERDICT_FIELDS: readonly (keyof Verdict)[] = ["category", "ruleId", "score", "scope", "transform", "index"];

export type SafetyMode = "off" | "monitor" | "block";
export type Action = "allow" | "flag" | "block";

export interface ScreenResult {
  /** `flag`: over threshold in monitor mode (record, let through); `block`: refuse. */
  readonly action: Action;
  /** Noisy-OR of the distinct rules' scores, 0..1. */
  readonly score: number;
  readonly verdicts: readonly Verdict[];
}

/**
 * Input screening of OpenAI-compatible request bodies (`/v1/chat/completions`, `/v1/completions`,
 * `/v1/embeddings`), already parsed from JSON. Pure and synchronous.
 *
 * What is screened:
 * - every text part of every message (string content or `{type:"text"}` parts, `refusal`, tool
 *   call arguments); user, system, developer and tool messages with the input rules (jailbreak,
 *   injection and harmful-request rules), assistant messages with the content rules only (a
 *   client can forge assistant turns, but the model's own earlier explanations must not trip the
 *   jailbreak rules on every later turn);
 * - the conversation window: the last `windowMessages` non-assistant messages joined, so a
 *   request split over several turns ("remember X" … "now do X with Y") is read as one;
 * - URLs the model server would fetch (`image_url`, `video_url`, `audio_url`, `file.filename`)
 *   strictly, and URLs/paths mentioned in text at a reduced weight (recorded, never enough to
 *   block on their own);
 * - completion prompts (`prompt`: string or array of strings; token arrays are skipped) and
 *   `suffix`; embedding inputs.
 */
import { combinedScore, scanText } from "./engine.ts";
import type { Action, SafetyMode, ScreenResult, Verdict } from "./types.ts";
import { checkFileName, checkUrl, sanitizeText, urlVerdict } from "./urls.ts";

export interface ScreenOptions {
  readonly mode: SafetyMode;
  /** Score at or above which a request is flagged (monitor) or refused (block). Default 0.5. */
  readonly threshold?: number;
  /** Non-assistant messages joined into the conversation window. Default 8. */
  readonly windowMessages?: number;
  /** Characters of the window kept (from the end). Default 32 768. */
  readonly windowChars?: number;
  /** Characters screened per request in total; the rest is skipped and a `screening_limit` verdict recorded. Default 1 000 000. */
  readonly maxChars?: number;
  /** Weight of URLs and paths mentioned in prose (fetched URL fields weigh 1). Default 0.35. */
  readonly textUrlWeight?: number;
}

interface Unit {
  readonly text: string;
  readonly direction: "input" | "output";
  readonly index: number;
}

const MESSAGE_SEPARATOR = "\n\n";

function textOfContent(content: unknown, urls: { url: string; kind: "url" | "file" }[]): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  const parts: string[] = [];
  for (const part of content as unknown[]) {
    if (typeof part === "string") { parts.push(part); continue; }
    if (!part || typeof part !== "object") continue;
    const p = part as Record<string, unknown>;
    if (typeof p.text === "string") parts.push(p.text);
    if (typeof p.refusal === "string") parts.push(p.refusal);
    for (const key of ["image_url", "video_url", "audio_url"]) {
      const v = p[key];
      const url = typeof v === "string" ? v : v && typeof v === "object" ? (v as Record<string, unknown>).url : undefined;
      if (typeof url === "string") urls.push({ url, kind: "url" });
    }
    const file = p.file;
    if (file && typeof file === "object" && typeof (file as Record<string, unknown>).filename === "string") {
      urls.push({ url: (file as Record<string, string>).filename!, kind: "file" });
    }
  }
  return parts.join("\n");
}

function toolArguments(message: Record<string, unknown>): string {
  const calls = message.tool_calls;
  if (!Array.isArray(calls)) return "";
  const out: string[] = [];
  for (const c of calls as unknown[]) {
    const fn = c && typeof c === "object" ? (c as Record<string, unknown>).function : undefined;
    const args = fn && typeof fn === "object" ? (fn as Record<string, unknown>).arguments : undefined;
    if (typeof args === "string") out.push(args);
  }
  return out.join("\n");
}

/** Pull the screenable pieces out of a request body. Unknown shapes yield nothing. */
export function extractUnits(body: unknown): { units: Unit[]; fetched: { url: string; kind: "url" | "file"; index: number }[] } {
  const units: Unit[] = [];
  const fetched: { url: string; kind: "url" | "file"; index: number }[] = [];
  if (!body || typeof body !== "object") return { units, fetched };
  const b = body as Record<string, unknown>;
  if (Array.isArray(b.messages)) {
    (b.messages as unknown[]).forEach((m, index) => {
      if (!m || typeof m !== "object") return;
      const msg = m as Record<string, unknown>;
      const urls: { url: string; kind: "url" | "file" }[] = [];
      const text = [textOfContent(msg.content, urls), toolArguments(msg)].filter(Boolean).join("\n");
      for (const u of urls) fetched.push({ ...u, index });
      if (text) units.push({ text, direction: msg.role === "assistant" ? "output" : "input", index });
    });
  }
  const strings = (v: unknown): string[] => (typeof v === "string" ? [v] : Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : []);
  strings(b.prompt).forEach((text, index) => units.push({ text, direction: "input", index }));
  if (typeof b.suffix === "string") units.push({ text: b.suffix, direction: "input", index: units.length });
  strings(b.input).forEach((text, index) => units.push({ text, direction: "input", index }));
  return { units, fetched };
}

/** Decide the action for a score under a mode. */
export function decide(mode: SafetyMode, score: number, threshold: number): Action {
  if (mode === "off" || score < threshold) return "allow";
  return mode === "block" ? "block" : "flag";
}

const ALLOW: ScreenResult = Object.freeze({ action: "allow", score: 0, verdicts: Object.freeze([]) as readonly Verdict[] });

/** Screen one request body. `mode: "off"` returns at once without reading the body. */
export function screenRequest(body: unknown, options: ScreenOptions): ScreenResult {
  if (options.mode === "off") return ALLOW;
  const threshold = options.threshold ?? 0.5;
  const maxChars = options.maxChars ?? 1_000_000;
  const textUrlWeight = options.textUrlWeight ?? 0.35;
  const { units, fetched } = extractUnits(body);
  const verdicts: Verdict[] = [];
  let best = 0;
  let budget = maxChars;
  let limited = false;

  for (const f of fetched) {
    const check = f.kind === "file" ? checkFileName(f.url) : checkUrl(f.url);
    if (!check.ok) {
      const v = urlVerdict(check.ruleId!, "url_field", f.index);
      verdicts.push(v);
      best = Math.max(best, v.score);
    }
  }

  const seenIds = new Set<string>();
  for (const unit of units) {
    let text = unit.text;
    if (text.length > budget) { text = text.slice(0, budget); limited = true; }
    budget -= text.length;
    if (text.length === 0) continue;
    const scope = "prompt" in (body as object) && !("messages" in (body as object)) ? "prompt" : "message";
    const { verdicts: found, truncated } = scanText(text, { direction: unit.direction, scope, index: unit.index });
    if (truncated) limited = true;
    const mentioned = unit.direction === "input" ? sanitizeText(text, scope, unit.index, textUrlWeight).verdicts : [];
    const all = [...found, ...mentioned];
    best = Math.max(best, combinedScore(all));
    for (const v of all) { verdicts.push(v); seenIds.add(v.ruleId); }
  }

  // The conversation window: catches a request split across turns.
  const inputs = units.filter((u) => u.direction === "input");
  if (inputs.length > 1) {
    const windowMessages = options.windowMessages ?? 8;
    const windowChars = options.windowChars ?? 32_768;
    let window = inputs.slice(-windowMessages).map((u) => u.text).join(MESSAGE_SEPARATOR);
    if (window.length > windowChars) window = window.slice(-windowChars);
    if (window.length <= budget + windowChars) {
      // Split phrases are the window's job; encodings and ROT13 were read per message already.
      const { verdicts: found } = scanText(window, { direction: "input", scope: "window", maxDepth: 0, rot13: false });
      best = Math.max(best, combinedScore(found));
      for (const v of found) if (!seenIds.has(v.ruleId)) verdicts.push(v);
    }
  }

  if (limited) verdicts.push({ category: "screening_limit", ruleId: "limit.truncated", score: 0, scope: "message", transform: "none" });
  const score = Math.round(best * 1000) / 1000;
  return { action: decide(options.mode, score, threshold), score, verdicts };
}

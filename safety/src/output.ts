/**
 * Output filtering of completions, streaming-aware.
 *
 * `createOutputFilter` takes the completion text as it arrives (deltas of any size) and scans it
 * in steps: new text is buffered until `scanEvery` characters are pending (or `end()`), then the
 * pending text is scanned together with the last `overlap` characters already scanned, so a
 * prohibited phrase split across chunks (`"how to m"`, `"ake a pipe b"`, `"omb"`) is still seen
 * whole. Memory per stream is bounded: at most `overlap + scanEvery` characters plus the largest
 * single delta, and one entry per rule reported. Each rule is reported once per stream.
 *
 * `createSseOutputFilter` does the same over raw upstream SSE bytes (`data: {json}` events of
 * `chat.completion.chunk` or `text_completion`), one text filter per choice index, so the
 * gateway can pass bytes through untouched and only inspect them.
 *
 * Headers: a non-streamed response gets `X-Content-Warning: <categories>` when flagged. A streamed
 * response has sent its headers before the first token: declare `Trailer: X-Content-Warning` and
 * send it as a trailer, and/or write `contentWarningSseComment(...)` (an SSE comment line, which
 * OpenAI-compatible clients ignore) before `data: [DONE]`.
 */
import { combinedScore, scanText } from "./engine.ts";
import { decide } from "./input.ts";
import type { Action, Category, SafetyMode, ScreenResult, Verdict } from "./types.ts";

export const CONTENT_WARNING_HEADER = "X-Content-Warning";

export interface OutputFilterOptions {
  readonly mode: SafetyMode;
  readonly threshold?: number;
  /** Pending characters that trigger a scan. Default 256 (about 60 tokens). */
  readonly scanEvery?: number;
  /** Characters of already-scanned text re-read with the next step. Default 384. */
  readonly overlap?: number;
}

export interface FilterStep {
  /** `block`: stop the stream now (block mode, over threshold). */
  readonly action: Action;
  /** Verdicts first seen in this step. */
  readonly verdicts: readonly Verdict[];
}

export interface OutputFilter {
  /** Feed the next piece of completion text. */
  push(delta: string): FilterStep;
  /** Scan whatever is still pending; call once when the completion ends. */
  end(): FilterStep;
  /** Everything found so far plus the resulting action and score. */
  result(): ScreenResult;
  /** Value for `X-Content-Warning` (categories, comma-separated), or null when nothing was flagged. */
  headerValue(): string | null;
}

const NOTHING: FilterStep = Object.freeze({ action: "allow", verdicts: Object.freeze([]) as readonly Verdict[] });

export function createOutputFilter(options: OutputFilterOptions): OutputFilter {
  const threshold = options.threshold ?? 0.5;
  const scanEvery = options.scanEvery ?? 256;
  const overlap = options.overlap ?? 384;
  const found: Verdict[] = [];
  const seen = new Set<string>();
  let tail = "";
  let pending = "";
  let score = 0;

  const scan = (): FilterStep => {
    if (pending.length === 0) return { action: decide(options.mode, score, threshold), verdicts: [] };
    const text = tail + pending;
    const { verdicts } = scanText(text, { direction: "output", scope: "output" }, seen);
    for (const v of verdicts) { seen.add(v.ruleId); found.push(v); }
    tail = text.length > overlap ? text.slice(text.length - overlap) : text;
    pending = "";
    if (verdicts.length) score = combinedScore(found);
    return { action: decide(options.mode, score, threshold), verdicts };
  };

  return {
    push(delta) {
      if (options.mode === "off" || delta.length === 0) return NOTHING;
      pending += delta;
      return pending.length >= scanEvery ? scan() : { action: decide(options.mode, score, threshold), verdicts: [] };
    },
    end() {
      return options.mode === "off" ? NOTHING : scan();
    },
    result() {
      return { action: decide(options.mode, score, threshold), score, verdicts: [...found] };
    },
    headerValue() {
      return score >= threshold ? contentWarningValue(found) : null;
    },
  };
}

/** `X-Content-Warning` value for verdicts: their distinct categories, sorted, comma-separated. */
export function contentWarningValue(verdicts: Iterable<Verdict>): string | null {
  const cats = new Set<Category>();
  for (const v of verdicts) if (v.score > 0) cats.add(v.category);
  return cats.size ? [...cats].sort().join(",") : null;
}

/** An SSE comment carrying the warning (ignored by clients that only read `data:` lines). */
export function contentWarningSseComment(value: string): string {
  return `: ${CONTENT_WARNING_HEADER.toLowerCase()}: ${value}\n\n`;
}

export interface SseOutputFilterOptions extends OutputFilterOptions {
  /** Longest SSE line kept while waiting for its end; longer lines are skipped. Default 1 MiB. */
  readonly maxLineChars?: number;
  /** Choices (`n`) screened separately; text of further choices goes to the last one. Default 16. */
  readonly maxChoices?: number;
}

export interface SseOutputFilter {
  /** Feed raw upstream bytes (or text) exactly as received. */
  push(chunk: Uint8Array | string): FilterStep;
  end(): FilterStep;
  result(): ScreenResult;
  headerValue(): string | null;
}

function deltaTexts(event: unknown): { index: number; text: string }[] {
  if (!event || typeof event !== "object") return [];
  const choices = (event as Record<string, unknown>).choices;
  if (!Array.isArray(choices)) return [];
  const out: { index: number; text: string }[] = [];
  for (const c of choices as unknown[]) {
    if (!c || typeof c !== "object") continue;
    const choice = c as Record<string, unknown>;
    const index = typeof choice.index === "number" ? choice.index : 0;
    if (typeof choice.text === "string") out.push({ index, text: choice.text });
    const d = choice.delta ?? choice.message;
    if (d && typeof d === "object") {
      const delta = d as Record<string, unknown>;
      for (const key of ["content", "reasoning_content", "refusal"]) if (typeof delta[key] === "string") out.push({ index, text: delta[key] });
    }
  }
  return out;
}

export function createSseOutputFilter(options: SseOutputFilterOptions): SseOutputFilter {
  const maxLine = options.maxLineChars ?? 1024 * 1024;
  const maxChoices = options.maxChoices ?? 16;
  const threshold = options.threshold ?? 0.5;
  const decoder = new TextDecoder();
  const filters = new Map<number, OutputFilter>();
  const limits: Verdict[] = [];
  let line = "";
  let skipping = false;

  const filterFor = (index: number): OutputFilter => {
    const key = Math.min(index, maxChoices - 1);
    let f = filters.get(key);
    if (!f) { f = createOutputFilter(options); filters.set(key, f); }
    return f;
  };
  const merge = (steps: FilterStep[]): FilterStep => {
    const verdicts = steps.flatMap((s) => s.verdicts);
    const action: Action = steps.some((s) => s.action === "block") ? "block" : steps.some((s) => s.action === "flag") ? "flag" : "allow";
    return { action, verdicts };
  };
  const onLine = (l: string, steps: FilterStep[]): void => {
    if (!l.startsWith("data:")) return;
    const payload = l.slice(5).trim();
    if (payload === "" || payload === "[DONE]") return;
    let event: unknown;
    try { event = JSON.parse(payload); } catch { return; }
    for (const { index, text } of deltaTexts(event)) steps.push(filterFor(index).push(text));
  };
  const limit = (): void => {
    if (!limits.length) limits.push({ category: "screening_limit", ruleId: "limit.sse_line", score: 0, scope: "output", transform: "none" });
  };

  return {
    push(chunk) {
      if (options.mode === "off") return NOTHING;
      const text = typeof chunk === "string" ? chunk : decoder.decode(chunk, { stream: true });
      const steps: FilterStep[] = [];
      let start = 0;
      for (;;) {
        const nl = text.indexOf("\n", start);
        if (nl < 0) break;
        const piece = text.slice(start, nl);
        if (!skipping && line.length + piece.length > maxLine) limit();
        else if (!skipping) onLine((line + piece).replace(/\r$/, ""), steps);
        line = "";
        skipping = false;
        start = nl + 1;
      }
      if (!skipping) {
        line += text.slice(start);
        if (line.length > maxLine) { line = ""; skipping = true; limit(); }
      }
      return merge(steps);
    },
    end() {
      if (options.mode === "off") return NOTHING;
      const steps: FilterStep[] = [];
      if (line && !skipping) onLine(line, steps);
      line = "";
      for (const f of filters.values()) steps.push(f.end());
      return merge(steps);
    },
    result() {
      const verdicts = [...[...filters.values()].flatMap((f) => f.result().verdicts), ...limits];
      const score = Math.max(0, ...[...filters.values()].map((f) => f.result().score));
      return { action: decide(options.mode, score, threshold), score, verdicts };
    },
    headerValue() {
      const flagged = [...filters.values()].filter((f) => f.headerValue() !== null).flatMap((f) => f.result().verdicts);
      return flagged.length ? contentWarningValue(flagged) : null;
    },
  };
}

/** Screen a complete (non-streamed) completion body: every choice's text, then the verdicts. */
export function screenCompletion(body: unknown, options: OutputFilterOptions): ScreenResult {
  if (options.mode === "off") return { action: "allow", score: 0, verdicts: [] };
  const filters = new Map<number, OutputFilter>();
  for (const { index, text } of deltaTexts(body)) {
    let f = filters.get(index);
    if (!f) { f = createOutputFilter({ ...options, scanEvery: Number.MAX_SAFE_INTEGER }); filters.set(index, f); }
    f.push(text);
  }
  const verdicts: Verdict[] = [];
  let score = 0;
  for (const f of filters.values()) {
    f.end();
    const r = f.result();
    verdicts.push(...r.verdicts);
    score = Math.max(score, r.score);
  }
  return { action: decide(options.mode, score, options.threshold ?? 0.5), score, verdicts };
}

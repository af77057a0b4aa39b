/**
 * Forwarding to a backend endpoint with undici's dispatcher API: the raw request bytes go out
 * unchanged (except the surgical `stream_options` injection below), response bytes are written to
 * the client as they arrive — chunk by chunk, so SSE frames are neither merged nor reordered —
 * with backpressure (the upstream read pauses while the client socket is full). When the client
 * goes away the upstream request is aborted. Usage is read from the response tail without parsing
 * the whole body.
 */
import type { ServerResponse } from "node:http";
import type { Dispatcher } from "undici";
import {
  CONTENT_WARNING_HEADER, contentWarningSseComment, contentWarningValue, createSseOutputFilter, normalizeOutputText, screenCompletion,
  type FilterStep, type ScreenResult, type SseOutputFilter,
} from "@crosslogic/safety";
import { errorBody } from "./errors.ts";
import type { Backend, Endpoint } from "./upstream.ts";

export interface Usage { promptTokens: number; completionTokens: number; totalTokens: number }

export interface ProxyOutcome {
  /** Status sent to the client (499: the client went away; 502/504: upstream failure before a response). */
  status: number;
  usage: Usage | undefined;
  /** Why it failed, for logs and metrics. */
  failure?: "connect" | "timeout" | "upstream" | "client_abort";
  /** Whether the client already received the response head (an error after that truncates the body). */
  headersSent: boolean;
  /** The backend's own status when it answered 5xx (the client receives the catalog's 502 instead). */
  upstreamStatus?: number;
}

const INCLUDE_USAGE = Buffer.from('"stream_options":{"include_usage":true}');

/**
 * Makes a streamed request report usage: appends `"stream_options":{"include_usage":true}` as the
 * last member of the raw JSON object. When the body already has `stream_options`, the merged object
 * is appended instead — JSON parsers (Python's json, vLLM's pydantic, V8) keep the last duplicate
 * member — so the caller's bytes are never re-serialised.
 */
export function injectIncludeUsage(raw: Buffer, existing: unknown): Buffer {
  if (existing && typeof existing === "object" && (existing as { include_usage?: unknown }).include_usage === true) return raw;
  let end = raw.length - 1;
  while (end >= 0 && (raw[end] === 0x20 || raw[end] === 0x0a || raw[end] === 0x0d || raw[end] === 0x09)) end--;
  if (raw[end] !== 0x7d) return raw; // not an object: validation would have refused it
  let before = end - 1;
  while (before >= 0 && (raw[before] === 0x20 || raw[before] === 0x0a || raw[before] === 0x0d || raw[before] === 0x09)) before--;
  const empty = raw[before] === 0x7b;
  const member = existing && typeof existing === "object"
    ? Buffer.from(`"stream_options":${JSON.stringify({ ...existing, include_usage: true })}`)
    : INCLUDE_USAGE;
  return Buffer.concat([raw.subarray(0, end), empty ? Buffer.alloc(0) : Buffer.from(","), member, raw.subarray(end)]);
}

/** Finds the last `"usage":{…}` in a text and reads its token counts. */
export function findUsage(text: string): Usage | undefined {
  let at = text.lastIndexOf('"usage"');
  while (at !== -1) {
    const open = text.indexOf("{", at);
    const colon = text.indexOf(":", at + 7);
    if (open !== -1 && colon !== -1 && text.slice(colon + 1, open).trim() === "") {
      let depth = 0;
      for (let i = open; i < text.length; i++) {
        const c = text.charCodeAt(i);
        if (c === 0x7b) depth++;
        else if (c === 0x7d && --depth === 0) {
          try {
            const u = JSON.parse(text.slice(open, i + 1)) as Record<string, unknown>;
            const p = Number(u.prompt_tokens ?? 0), c2 = Number(u.completion_tokens ?? 0);
            const t = Number(u.total_tokens ?? p + c2);
            if ([p, c2, t].every((n) => Number.isFinite(n) && n >= 0)) return { promptTokens: p, completionTokens: c2, totalTokens: t };
          } catch { /* not a usage object */ }
          break;
        }
      }
    }
    at = at === 0 ? -1 : text.lastIndexOf('"usage"', at - 1);
  }
  return undefined;
}

const TAIL = 16 * 1024;
const HEAD = 4 * 1024;
const HOLD_MAX = 64 * 1024;

export interface ForwardOptions {
  backend: Backend;
  method: "GET" | "POST";
  path: string;
  body: Buffer | undefined;
  requestId: string;
  res: ServerResponse;
  /**
   * The gateway's response headers (security headers, request id, CORS, rate limits) as a flat
   * name/value list; the upstream's content headers are appended and the list is written with one
   * `writeHead` (no per-header `setHeader`).
   */
  headers: string[];
  /** The client asked for no usage frame (`stream_options.include_usage: false`): usage is still read, the frame is not sent. */
  stripUsage: boolean;
  /** Safe to retry on another endpoint when the first could not be reached (no byte of the request processed). */
  retryOnConnectFailure: boolean;
  timeoutMs: number;
  onEndpointFailure?: (kind: "connect" | "timeout" | "upstream") => void;
  /** Output filtering (content-safety policy with outputFiltering); absent → the bytes are not looked at. */
  output?: OutputSafety;
}

export interface OutputSafety {
  readonly mode: "monitor" | "block";
  readonly threshold: number;
  /** Unicode-normalise the text of non-streamed completions. */
  readonly normalize: boolean;
  /** Called once when the output was flagged or blocked (verdicts only). */
  report(result: ScreenResult, streamed: boolean): void;
}

/** Streamed output: completion characters between scans (each scan re-reads 384 characters before them); at most this much text after a prohibited phrase can reach the client. */
const SSE_SCAN_EVERY = 128;
const DONE = Buffer.from("data: [DONE]");
/** Largest non-streamed body held for output screening; beyond it the exchange fails (502). */
const SCREEN_HOLD_MAX = 8 * 1024 * 1024;

const CONNECT_ERRORS = new Set(["ECONNREFUSED", "UND_ERR_CONNECT_TIMEOUT", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN"]);
const ACCEPT = "application/json, text/event-stream";

/** A usage-only SSE frame (`"choices":[]` with a `"usage":{…}` object). */
export function isUsageFrame(frame: string): boolean {
  return frame.includes('"choices":[]') && /"usage":\s*\{/.test(frame);
}

/**
 * One client request forwarded to a backend: the undici dispatch handler itself (its methods are
 * called with the state in fields: no closures per request).
 */
class Exchange implements Dispatcher.DispatchHandler {
  readonly o: ForwardOptions;
  readonly resolve: (out: ProxyOutcome) => void;
  readonly reqHeaders: Record<string, string>;
  readonly timer: NodeJS.Timeout;
  readonly onClose: () => void;
  controller: Dispatcher.DispatchController | undefined;
  settled = false;
  clientGone = false;
  ep: Endpoint | undefined;
  retried = false;
  released = true;
  status = 0;
  started = false;
  sse = false;
  head = "";
  tail = "";
  /** A small, non-streamed body is sent in one write with the head. */
  held: Buffer[] | undefined;
  heldBytes = 0;
  /** Partial SSE frame kept while stripping the usage frame. */
  frag = "";
  resumeOnDrain: (() => void) | undefined;
  /** The backend answered 5xx: its body is read and dropped, the client gets 502 upstream_error. */
  failed5xx = false;
  /** Streamed output filter (content safety), and whether it cut the stream. */
  sf: SseOutputFilter | undefined;
  cut = false;
  sfEnded = false;
  sfLast: FilterStep | undefined;
  /** The non-streamed body is held whole for output screening. */
  screenHeld = false;

  constructor(o: ForwardOptions, resolve: (out: ProxyOutcome) => void) {
    this.o = o;
    this.resolve = resolve;
    this.reqHeaders = o.body
      ? { "x-request-id": o.requestId, accept: ACCEPT, "content-type": "application/json", "content-length": String(o.body.length) }
      : { "x-request-id": o.requestId, accept: ACCEPT };
    this.onClose = () => {
      // `this.o`, not `o`: a closure over `o` would keep the options alive after `detach`.
      if (this.o.res.writableFinished) return;
      this.clientGone = true;
      this.controller?.abort(new Error("client disconnected"));
    };
    o.res.on("close", this.onClose);
    this.timer = setTimeout(() => this.controller?.abort(Object.assign(new Error("request timeout"), { code: "GW_TIMEOUT" })), o.timeoutMs);
  }

  finish(out: ProxyOutcome): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    this.o.res.off("close", this.onClose);
    const resolve = this.resolve;
    this.detach();
    resolve(out);
  }

  /**
   * Drops this exchange's references to the request's object graph (options, response, promise
   * resolver, held chunks, controller, filter, text windows) once it is settled. The dispatch
   * machinery keeps the handler reachable for a while after completion, and everything it points to
   * survived into the old generation: 6–8 KB per request, 20–40 ms scavenges. No handler method
   * runs after `finish` (timer and close listener are gone; a late `drain` finds no controller).
   */
  detach(): void {
    const self = this as unknown as Record<string, unknown>;
    self.o = undefined; self.resolve = undefined; self.controller = undefined; self.held = undefined; self.sf = undefined; self.sfLast = undefined;
    this.head = ""; this.tail = ""; this.frag = "";
  }

  release(): void {
    if (!this.released) { this.released = true; this.ep!.outstanding--; }
  }

  attempt(avoid?: Endpoint): void {
    const ep = this.o.backend.pick(avoid);
    if (!ep) return this.finish({ status: 503, usage: undefined, failure: "connect", headersSent: false });
    this.ep = ep;
    ep.outstanding++;
    this.released = false;
    this.status = 0; this.started = false; this.head = ""; this.tail = ""; this.held = undefined; this.heldBytes = 0;
    ep.pool.dispatch({ method: this.o.method, path: this.o.path, headers: this.reqHeaders, body: this.o.body ?? null }, this);
  }

  onRequestStart(c: Dispatcher.DispatchController): void {
    this.controller = c;
    if (this.clientGone) c.abort(new Error("client disconnected"));
  }

  onResponseStart(c: Dispatcher.DispatchController, statusCode: number, up: Record<string, string | string[] | undefined>): void {
    const o = this.o;
    const res = o.res;
    this.status = statusCode;
    this.started = true;
    if (statusCode >= 500) { o.backend.failed(this.ep!); o.onEndpointFailure?.("upstream"); } else o.backend.succeeded(this.ep!);
    if (res.destroyed) return c.abort(new Error("client disconnected"));
    // Policy (README: upstream errors): a backend 5xx never reaches the client as such — its body may
    // hold internals (stack traces, paths, versions) — the gateway answers 502 upstream_error. 4xx
    // pass through: they carry client-relevant messages (context length, unsupported parameter).
    if (statusCode >= 500) { this.failed5xx = true; return; }
    const h = o.headers;
    const type = up["content-type"];
    this.sse = typeof type === "string" && type.startsWith("text/event-stream");
    const screen = o.output !== undefined && statusCode < 300;
    if (screen && this.sse) this.sf = createSseOutputFilter({ mode: o.output!.mode, threshold: o.output!.threshold, scanEvery: SSE_SCAN_EVERY });
    this.screenHeld = screen && !this.sse;
    // The length changes when usage frames are cut, a stream is cut by the filter or a body is rewritten.
    const strip = (this.sse && o.stripUsage) || screen;
    if (type !== undefined) h.push("content-type", String(type));
    const length = up["content-length"];
    if (length !== undefined && !strip) h.push("content-length", String(length));
    for (const name of PASS) { const v = up[name]; if (v !== undefined) h.push(name, String(v)); }
    if (this.screenHeld) {
      this.held = [];
    } else if (this.sse) {
      if (this.sf) h.push("Trailer", CONTENT_WARNING_HEADER);
      h.push("X-Accel-Buffering", "no");
      res.writeHead(statusCode, h);
      res.flushHeaders();
    } else if (length !== undefined && Number(length) <= HOLD_MAX) {
      this.held = [];
    } else {
      res.writeHead(statusCode, h);
    }
  }

  onResponseData(c: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.failed5xx || this.cut) return;
    if (this.held) {
      this.held.push(chunk); this.heldBytes += chunk.length;
      if (this.screenHeld && this.heldBytes > SCREEN_HOLD_MAX) c.abort(new Error("response too large to screen"));
      return;
    }
    if (this.sf) {
      if (this.sf.push(chunk).action === "block") return this.cutStream(c);
      // The end of the completion: the text still pending in the filter is scanned before [DONE] goes out.
      if (!this.sfEnded && chunk.includes(DONE)) { this.sfEnded = true; this.sfLast = this.sf.end(); if (this.sfLast.action === "block") return this.cutStream(c); }
    }
    const s = chunk.toString("latin1");
    if (!this.sse && this.head.length < HEAD) this.head += s.slice(0, HEAD - this.head.length);
    this.tail = (this.tail.length + s.length > TAIL * 2 ? this.tail.slice(-TAIL) : this.tail) + s;
    let out: Buffer | undefined = chunk;
    if (this.sse && this.o.stripUsage) out = this.strip(s, false);
    if (out && out.length > 0 && !this.o.res.write(out)) {
      c.pause();
      this.resumeOnDrain ??= () => this.controller?.resume();
      this.o.res.once("drain", this.resumeOnDrain);
    }
  }

  /**
   * Block mode, prohibited output seen: the chunk that completed it is not forwarded; the stream ends
   * with an error event (the catalog's body) and `data: [DONE]`, and the upstream request is aborted.
   */
  cutStream(c: Dispatcher.DispatchController): void {
    this.cut = true;
    const res = this.o.res;
    if (this.sse && this.o.stripUsage && this.frag) this.frag = "";
    res.end(`data: ${errorBody("content_policy_violation", this.o.requestId, "The completion was stopped.")}\n\ndata: [DONE]\n\n`);
    this.o.output!.report({ ...this.sf!.result(), action: "block" }, true);
    c.abort(Object.assign(new Error("output blocked"), { code: "GW_OUTPUT_BLOCKED" }));
  }

  /** Non-streamed body under the output policy: screened whole, maybe normalised; returns the body to send, or null when blocked. */
  screenBody(body: Buffer): Buffer | null {
    const out = this.o.output!;
    let json: unknown;
    try { json = JSON.parse(body.toString("utf8")); } catch { return body; }
    const result = screenCompletion(json, { mode: out.mode, threshold: out.threshold });
    if (result.action !== "allow") out.report(result, false);
    if (result.action === "block") return null;
    if (result.action === "flag") { const w = contentWarningValue(result.verdicts); if (w) this.o.headers.push(CONTENT_WARNING_HEADER, w); }
    if (out.normalize && normalizeChoices(json)) return Buffer.from(JSON.stringify(json));
    return body;
  }

  /** Complete SSE frames minus the usage-only frame; keeps a partial frame for the next chunk. */
  strip(s: string, end: boolean): Buffer | undefined {
    const text = this.frag + s;
    const cut = end ? text.length : text.lastIndexOf("\n\n") + 2;
    if (cut < 2 && !end) { this.frag = text; return undefined; }
    this.frag = text.slice(cut);
    const frames = text.slice(0, cut).split(/(?<=\n\n)/);
    let kept = "";
    for (const f of frames) if (!isUsageFrame(f)) kept += f;
    return Buffer.from(kept, "latin1");
  }

  onResponseEnd(): void {
    this.release();
    if (this.failed5xx) return this.finish({ status: 502, usage: undefined, failure: "upstream", headersSent: false, upstreamStatus: this.status });
    const res = this.o.res;
    let text: string;
    if (this.cut) return this.finish({ status: this.status, usage: undefined, headersSent: true });
    if (this.held) {
      let body = this.held.length === 1 ? this.held[0]! : Buffer.concat(this.held, this.heldBytes);
      text = this.status < 300 ? body.toString("latin1") : "";
      if (this.screenHeld) {
        const screened = this.screenBody(body);
        if (screened === null) {
          // Blocked output: the catalog's error instead of the completion (usage is still metered).
          const usage = findUsage(text);
          const err = errorBody("content_policy_violation", this.o.requestId, "The completion was withheld.");
          this.o.headers.push("content-length", String(Buffer.byteLength(err)));
          if (!res.headersSent && !res.destroyed) res.writeHead(400, this.o.headers);
          res.end(err);
          return this.finish({ status: 400, usage, headersSent: true });
        }
        body = screened;
        this.o.headers.push("content-length", String(body.length));
      }
      if (!res.headersSent && !res.destroyed) res.writeHead(this.status, this.o.headers);
      res.end(body);
    } else {
      if (this.sse && this.o.stripUsage) { const rest = this.strip("", true); if (rest && rest.length) res.write(rest); }
      if (this.sf) {
        const last = this.sfEnded ? this.sfLast! : this.sf.end();
        const result = this.sf.result();
        if (last.action === "block" || result.action !== "allow") this.o.output!.report(last.action === "block" ? { ...result, action: "block" } : result, true);
        if (last.action === "block") res.write(`data: ${errorBody("content_policy_violation", this.o.requestId, "The completion was stopped.")}\n\n`);
        const warning = this.sf.headerValue();
        if (warning) { res.write(contentWarningSseComment(warning)); res.addTrailers({ [CONTENT_WARNING_HEADER]: warning }); }
      }
      res.end();
      text = this.tail.length > TAIL * 2 ? this.tail.slice(-TAIL * 2) : this.tail;
    }
    const usage = this.status < 300 ? findUsage(text) ?? (this.head && this.head !== text ? findUsage(this.head) : undefined) : undefined;
    this.finish({ status: this.status, usage, headersSent: true });
  }

  onResponseError(_c: Dispatcher.DispatchController, err: Error): void {
    this.release();
    const o = this.o;
    const code = (err as NodeJS.ErrnoException).code ?? "";
    if (this.cut) return this.finish({ status: this.status, usage: undefined, headersSent: true });
    if (this.clientGone) return this.finish({ status: 499, usage: undefined, failure: "client_abort", headersSent: this.started && !this.held });
    const timeout = code === "GW_TIMEOUT" || code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT";
    if (!this.started || this.failed5xx || (this.held && !o.res.headersSent)) {
      if (!this.started) o.backend.failed(this.ep!);
      const connect = !this.started && CONNECT_ERRORS.has(code);
      o.onEndpointFailure?.(connect ? "connect" : timeout ? "timeout" : "upstream");
      if (connect && o.retryOnConnectFailure && !this.retried && o.backend.endpoints.length > 1) { this.retried = true; return this.attempt(this.ep); }
      return this.finish({ status: timeout ? 504 : 502, usage: undefined, failure: timeout ? "timeout" : connect ? "connect" : "upstream", headersSent: false });
    }
    // Mid-response failure: the client sees a truncated body, never a second response.
    o.onEndpointFailure?.(timeout ? "timeout" : "upstream");
    o.res.destroy();
    this.finish({ status: this.status, usage: undefined, failure: timeout ? "timeout" : "upstream", headersSent: true });
  }
}

/** Normalises the text of every choice of a completion body in place; whether anything changed. */
function normalizeChoices(json: unknown): boolean {
  const choices = (json as { choices?: unknown } | null)?.choices;
  if (!Array.isArray(choices)) return false;
  let changed = false;
  for (const c of choices as Array<Record<string, unknown> | null>) {
    if (!c || typeof c !== "object") continue;
    if (typeof c.text === "string") { const n = normalizeOutputText(c.text); if (n !== c.text) { c.text = n; changed = true; } }
    const m = c.message as Record<string, unknown> | undefined;
    if (m && typeof m.content === "string") { const n = normalizeOutputText(m.content); if (n !== m.content) { m.content = n; changed = true; } }
  }
  return changed;
}

const PASS = ["content-encoding", "openai-model", "openai-processing-ms"] as const;

/** Sends the request and streams the response to `res`; resolves when the exchange is over. */
export function forward(o: ForwardOptions): Promise<ProxyOutcome> {
  return new Promise((resolve) => new Exchange(o, resolve).attempt());
}

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

const PASS_HEADERS = new Set(["content-type", "content-length", "content-encoding", "openai-model", "openai-processing-ms"]);
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
  /** Safe to retry on another endpoint when the first could not be reached (no byte of the request processed). */
  retryOnConnectFailure: boolean;
  timeoutMs: number;
  onEndpointFailure?: (kind: "connect" | "timeout" | "upstream") => void;
}

const CONNECT_ERRORS = new Set(["ECONNREFUSED", "UND_ERR_CONNECT_TIMEOUT", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN"]);

/** Sends the request and streams the response to `res`; resolves when the exchange is over. */
export function forward(o: ForwardOptions): Promise<ProxyOutcome> {
  return new Promise((resolve) => {
    const res = o.res;
    let controller: Dispatcher.DispatchController | undefined;
    let settled = false;
    let clientGone = false;
    let tried: Endpoint | undefined;
    const headers: Record<string, string> = { "x-request-id": o.requestId, accept: "application/json, text/event-stream" };
    if (o.body) { headers["content-type"] = "application/json"; headers["content-length"] = String(o.body.length); }

    const finish = (out: ProxyOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      res.off("close", onClose);
      resolve(out);
    };
    const onClose = () => {
      if (res.writableFinished) return;
      clientGone = true;
      controller?.abort(new Error("client disconnected"));
    };
    res.on("close", onClose);
    const timer = setTimeout(() => controller?.abort(Object.assign(new Error("request timeout"), { code: "GW_TIMEOUT" })), o.timeoutMs);

    const attempt = (avoid?: Endpoint): void => {
      const ep = o.backend.pick(avoid);
      if (!ep) return finish({ status: 503, usage: undefined, failure: "connect", headersSent: false });
      tried = ep;
      ep.outstanding++;
      let released = false;
      const release = () => { if (!released) { released = true; ep.outstanding--; } };
      let head = "";
      let tail = "";
      let status = 0;
      let started = false;
      /** A small, non-streamed body is sent in one write with the head (one syscall instead of three). */
      let held: Buffer[] | undefined;
      ep.pool.dispatch({ method: o.method, path: o.path, headers, body: o.body ?? null }, {
        onRequestStart(c) {
          controller = c;
          if (clientGone) c.abort(new Error("client disconnected"));
        },
        onResponseStart(c, statusCode, upstreamHeaders) {
          status = statusCode;
          started = true;
          if (statusCode >= 500) { o.backend.failed(ep); o.onEndpointFailure?.("upstream"); } else o.backend.succeeded(ep);
          if (res.destroyed) return c.abort(new Error("client disconnected"));
          res.statusCode = statusCode;
          for (const [name, value] of Object.entries(upstreamHeaders)) {
            if (PASS_HEADERS.has(name) && value !== undefined) res.setHeader(name, value);
          }
          if (String(upstreamHeaders["content-type"] ?? "").startsWith("text/event-stream")) {
            res.setHeader("X-Accel-Buffering", "no");
            res.flushHeaders();
          } else if (Number(upstreamHeaders["content-length"]) <= HOLD_MAX) {
            held = [];
          }
        },
        onResponseData(c, chunk) {
          const s = chunk.toString("latin1");
          if (head.length < HEAD) head += s.slice(0, HEAD - head.length);
          tail = (tail.length + s.length > TAIL * 2 ? tail.slice(-TAIL) : tail) + s;
          if (held) { held.push(chunk); return; }
          if (!res.write(chunk)) {
            c.pause();
            res.once("drain", () => c.resume());
          }
        },
        onResponseEnd() {
          release();
          if (held) res.end(held.length === 1 ? held[0] : Buffer.concat(held));
          else res.end();
          const text = tail.length > TAIL * 2 ? tail.slice(-TAIL * 2) : tail;
          const usage = status < 300 ? findUsage(text) ?? (head !== text ? findUsage(head) : undefined) : undefined;
          finish({ status, usage, headersSent: true });
        },
        onResponseError(_c, err) {
          release();
          const code = (err as NodeJS.ErrnoException).code ?? "";
          if (clientGone) return finish({ status: 499, usage: undefined, failure: "client_abort", headersSent: started });
          const timeout = code === "GW_TIMEOUT" || code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT";
          if (!started) {
            o.backend.failed(ep);
            const connect = CONNECT_ERRORS.has(code);
            o.onEndpointFailure?.(connect ? "connect" : timeout ? "timeout" : "upstream");
            if (connect && o.retryOnConnectFailure && avoid === undefined && o.backend.endpoints.length > 1) return attempt(tried);
            return finish({ status: timeout ? 504 : 502, usage: undefined, failure: timeout ? "timeout" : connect ? "connect" : "upstream", headersSent: false });
          }
          // Mid-response failure: the client sees a truncated body, never a second response.
          o.onEndpointFailure?.(timeout ? "timeout" : "upstream");
          res.destroy();
          finish({ status, usage: undefined, failure: timeout ? "timeout" : "upstream", headersSent: true });
        },
      });
    };
    attempt();
  });
}

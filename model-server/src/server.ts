/**
 * A small OpenAI-compatible model server standing in for a GPU pool's vLLM: chat completions,
 * completions, embeddings and the models list, with SSE streaming at a configurable token rate,
 * `usage` (also streamed when `stream_options.include_usage` is set), and configurable latency
 * and failures. Behaviour can be changed at run time through POST /_control, and GET /_stats
 * reports what it saw (so tests can check that a gateway aborted or never reached it).
 *
 * Canned replies (e.g. to stand in for a safety classifier): by default a completion is filler
 * words ("the model answers with …", max_tokens of them). `replies: [{ contains, text }]` answers
 * `text` when the request's prompt text (every message's content, or prompt/input) contains
 * `contains` (first match wins, case-sensitive); otherwise `replyText`, when not null, is the answer.
 * A canned text is split into whitespace-led tokens, cut at max_tokens (finish_reason "length",
 * else "stop"), streamed like the filler. Set them through POST /_control, e.g.
 * `{"replyText":"SAFE","replies":[{"contains":"napalm","text":"UNSAFE weapons 0.9"}]}`;
 * `{"replyText":null,"replies":[]}` restores the filler.
 */
import { createHash } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";

export type FailureMode = "none" | "error" | "reset" | "hang";

export interface Behaviour {
  /** Milliseconds before the response starts. */
  latencyMs: number;
  /** Streamed tokens per second (0 = as fast as possible). */
  tokensPerSecond: number;
  /** Tokens generated when the request sets no max_tokens. */
  defaultMaxTokens: number;
  /** Fraction [0,1] of requests that fail with `failureMode` (1 = all). */
  failureRate: number;
  failureMode: FailureMode;
  /** Status code for failureMode "error". */
  errorStatus: number;
  embeddingDimensions: number;
  /** Completion text when no `replies` rule matches (null = generated filler words). */
  replyText: string | null;
  /** Prompt-dependent completions: the first rule whose `contains` occurs in the prompt text answers its `text`. */
  replies: ReplyRule[];
}

export interface ReplyRule { contains: string; text: string }

export interface ModelServerOptions extends Partial<Behaviour> {
  models?: string[];
  host?: string;
  port?: number;
  /** Name reported in `system_fingerprint`, to tell backends apart in tests. */
  name?: string;
}

export interface Stats {
  requests: number;
  inFlight: number;
  completed: number;
  /** Requests whose client went away before the response finished. */
  aborted: number;
  failed: number;
  byPath: Record<string, number>;
  lastHeaders?: http.IncomingHttpHeaders;
  /** The parsed JSON body of the last POST to a /v1 path (to check what a client sent). */
  lastBody?: unknown;
}

export interface ModelServer {
  readonly url: string;
  readonly port: number;
  readonly behaviour: Behaviour;
  stats(): Stats;
  set(next: Partial<Behaviour>): void;
  close(): Promise<void>;
}

const defaults: Behaviour = {
  latencyMs: 0, tokensPerSecond: 0, defaultMaxTokens: 16, failureRate: 0, failureMode: "none", errorStatus: 500, embeddingDimensions: 8, replyText: null, replies: [],
};

const words = ["the", "model", "answers", "with", "plain", "words", "so", "tests", "can", "count", "every", "token", "it", "streams", "back", "."];

/** Counts prompt tokens the cheap way: whitespace-separated words (at least one per message). */
export function countTokens(text: string): number {
  const n = text.trim().split(/\s+/).filter(Boolean).length;
  return Math.max(1, n);
}

function promptText(body: Record<string, unknown>): string {
  if (Array.isArray(body.messages)) {
    return body.messages.map((m) => {
      const c = (m as { content?: unknown }).content;
      if (typeof c === "string") return c;
      if (Array.isArray(c)) return c.map((p) => (p as { text?: string }).text ?? "").join(" ");
      return "";
    }).join(" ");
  }
  const p = body.prompt ?? body.input;
  return Array.isArray(p) ? p.join(" ") : String(p ?? "");
}

function embedding(text: string, dims: number): number[] {
  const digest = createHash("sha256").update(text).digest();
  return Array.from({ length: dims }, (_, i) => (digest[i % digest.length]! / 255) * 2 - 1);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startModelServer(options: ModelServerOptions = {}): Promise<ModelServer> {
  const behaviour: Behaviour = { ...defaults, ...stripUndefined(options) };
  const models = options.models ?? ["llama-3-8b", "bge-small"];
  const name = options.name ?? "model-server";
  const stats: Stats = { requests: 0, inFlight: 0, completed: 0, aborted: 0, failed: 0, byPath: {} };
  let seq = 0;

  const json = (res: http.ServerResponse, status: number, body: unknown) => {
    const data = JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(data) });
    res.end(data);
  };

  const server = http.createServer(async (req, res) => {
    const url = req.url ?? "/";
    if (url === "/_stats") return json(res, 200, stats);
    if (url === "/_control" && req.method === "POST") {
      const patch = JSON.parse((await readBody(req)) || "{}") as Partial<Behaviour>;
      Object.assign(behaviour, stripUndefined(patch));
      return json(res, 200, behaviour);
    }
    if (url === "/health" || url === "/healthz") return json(res, 200, { status: "ok" });

    stats.requests++;
    stats.inFlight++;
    stats.byPath[url] = (stats.byPath[url] ?? 0) + 1;
    stats.lastHeaders = req.headers;
    let finished = false;
    res.on("close", () => {
      stats.inFlight--;
      if (finished) stats.completed++; else stats.aborted++;
    });
    const done = () => { finished = true; };

    try {
      const raw = req.method === "POST" ? await readBody(req) : "";
      if (behaviour.latencyMs) await sleep(behaviour.latencyMs);
      if (behaviour.failureMode !== "none" && Math.random() < behaviour.failureRate) {
        stats.failed++;
        if (behaviour.failureMode === "reset") { req.socket.destroy(); return; }
        if (behaviour.failureMode === "hang") return; // never answers; the client must time out
        done();
        return json(res, behaviour.errorStatus, { error: { message: "injected failure", type: "server_error", code: "injected" } });
      }
      if (req.method === "GET" && url === "/v1/models") {
        done();
        return json(res, 200, { object: "list", data: models.map((id) => ({ id, object: "model", created: 1700000000, owned_by: name })) });
      }
      if (req.method !== "POST") { done(); return json(res, 404, { error: { message: "not found", type: "invalid_request_error" } }); }
      let body: Record<string, unknown>;
      try { body = JSON.parse(raw) as Record<string, unknown>; } catch {
        done(); return json(res, 400, { error: { message: "invalid JSON", type: "invalid_request_error" } });
      }
      stats.lastBody = body;
      const model = String(body.model ?? "");
      if (!models.includes(model)) { done(); return json(res, 404, { error: { message: `model ${model} not found`, type: "invalid_request_error", code: "model_not_found" } }); }
      const prompt = promptText(body);
      const promptTokens = countTokens(prompt);
      const created = Math.floor(Date.now() / 1000);
      const id = `${name}-${++seq}`;

      if (url === "/v1/embeddings") {
        const inputs = Array.isArray(body.input) ? body.input.map(String) : [String(body.input ?? "")];
        done();
        return json(res, 200, {
          object: "list", model,
          data: inputs.map((t, index) => ({ object: "embedding", index, embedding: embedding(t, behaviour.embeddingDimensions) })),
          usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
        });
      }
      const chat = url === "/v1/chat/completions";
      if (!chat && url !== "/v1/completions") { done(); return json(res, 404, { error: { message: "not found", type: "invalid_request_error" } }); }
      const maxTokens = Number(body.max_tokens ?? body.max_completion_tokens ?? behaviour.defaultMaxTokens);
      const limit = Math.max(1, Math.min(maxTokens, 4096));
      const canned = cannedReply(behaviour, prompt);
      let tokens: string[];
      let finish = "length";
      if (canned === null) tokens = Array.from({ length: limit }, (_, i) => (i === 0 ? "" : " ") + words[i % words.length]);
      else {
        const all = canned.match(/\s*\S+/g) ?? [""];
        tokens = all.slice(0, limit);
        if (all.length <= limit) finish = "stop";
      }
      const n = tokens.length;
      const usage = { prompt_tokens: promptTokens, completion_tokens: n, total_tokens: promptTokens + n };
      const object = chat ? "chat.completion" : "text_completion";

      if (!body.stream) {
        const text = tokens.join("");
        done();
        return json(res, 200, {
          id, object, created, model, system_fingerprint: name,
          choices: [chat ? { index: 0, message: { role: "assistant", content: text }, finish_reason: finish } : { index: 0, text, finish_reason: finish }],
          usage,
        });
      }

      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
      const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
        `data: ${JSON.stringify({ id, object: chat ? "chat.completion.chunk" : "text_completion", created, model, system_fingerprint: name, choices, ...extra })}\n\n`;
      const gap = behaviour.tokensPerSecond > 0 ? 1000 / behaviour.tokensPerSecond : 0;
      for (let i = 0; i < n; i++) {
        if (res.destroyed) return;
        const delta = chat ? { index: 0, delta: i === 0 ? { role: "assistant", content: tokens[i] } : { content: tokens[i] }, finish_reason: null } : { index: 0, text: tokens[i], finish_reason: null };
        if (!res.write(chunk([delta]))) await new Promise((r) => res.once("drain", r));
        if (gap) await sleep(gap);
      }
      if (res.destroyed) return;
      res.write(chunk([chat ? { index: 0, delta: {}, finish_reason: finish } : { index: 0, text: "", finish_reason: finish }]));
      const opts = body.stream_options as { include_usage?: boolean } | undefined;
      if (opts?.include_usage) res.write(chunk([], { usage }));
      done();
      res.end("data: [DONE]\n\n");
    } catch {
      if (!res.headersSent) { done(); json(res, 500, { error: { message: "model server error", type: "server_error" } }); }
      else res.destroy();
    }
  });
  server.keepAliveTimeout = 65_000;

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => resolve());
  });
  const { port, address } = server.address() as AddressInfo;
  const host = address.includes(":") ? `[${address}]` : address;
  return {
    url: `http://${host}:${port}`, port, behaviour,
    stats: () => structuredClone(stats),
    set: (next) => Object.assign(behaviour, stripUndefined(next)),
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

/** The canned completion for a prompt, or null for the generated filler. */
function cannedReply(b: Behaviour, prompt: string): string | null {
  for (const r of Array.isArray(b.replies) ? b.replies : []) {
    if (r && typeof r.contains === "string" && typeof r.text === "string" && prompt.includes(r.contains)) return r.text;
  }
  return typeof b.replyText === "string" ? b.replyText : null;
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

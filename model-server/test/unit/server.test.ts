import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startModelServer, type ModelServer } from "../../src/server.ts";

let server: ModelServer;
before(async () => { server = await startModelServer({ models: ["llama-3-8b", "bge-small"], name: "pool-a" }); });
after(() => server.close());

const post = (path: string, body: unknown) =>
  fetch(`${server.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

async function sseEvents(res: Response): Promise<string[]> {
  const text = await res.text();
  return text.split("\n\n").filter(Boolean).map((e) => e.replace(/^data: /, ""));
}

describe("model server", () => {
  it("lists its models", async () => {
    const body = (await (await fetch(`${server.url}/v1/models`)).json()) as { data: { id: string }[] };
    assert.deepEqual(body.data.map((m) => m.id), ["llama-3-8b", "bge-small"]);
  });

  it("answers a chat completion with usage counting prompt and completion tokens", async () => {
    const res = await post("/v1/chat/completions", { model: "llama-3-8b", max_tokens: 5, messages: [{ role: "user", content: "one two three" }] });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { choices: { message: { content: string } }[]; usage: Record<string, number> };
    assert.equal(body.choices[0]!.message.content.split(" ").length, 5);
    assert.deepEqual(body.usage, { prompt_tokens: 3, completion_tokens: 5, total_tokens: 8 });
  });

  it("streams one SSE frame per token in order, then usage when asked, then [DONE]", async () => {
    const res = await post("/v1/chat/completions", { model: "llama-3-8b", max_tokens: 4, stream: true, stream_options: { include_usage: true }, messages: [{ role: "user", content: "hi" }] });
    assert.equal(res.headers.get("content-type"), "text/event-stream");
    const events = await sseEvents(res);
    assert.equal(events.at(-1), "[DONE]");
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e) as { choices: { delta?: { content?: string }; finish_reason: string | null }[]; usage?: Record<string, number> });
    const content = chunks.flatMap((c) => c.choices.map((ch) => ch.delta?.content ?? "")).join("");
    assert.equal(content, "the model answers with");
    assert.equal(chunks.at(-2)!.choices[0]!.finish_reason, "length");
    assert.deepEqual(chunks.at(-1)!.usage, { prompt_tokens: 1, completion_tokens: 4, total_tokens: 5 });
  });

  it("omits the usage frame unless include_usage is set", async () => {
    const events = await sseEvents(await post("/v1/completions", { model: "llama-3-8b", max_tokens: 2, stream: true, prompt: "x" }));
    assert.ok(events.slice(0, -1).every((e) => !("usage" in (JSON.parse(e) as object))));
  });

  it("paces streamed tokens at the configured rate", async () => {
    server.set({ tokensPerSecond: 100 });
    try {
      const t0 = performance.now();
      await sseEvents(await post("/v1/chat/completions", { model: "llama-3-8b", max_tokens: 10, stream: true, messages: [{ role: "user", content: "x" }] }));
      assert.ok(performance.now() - t0 >= 90, "10 tokens at 100/s take about 100 ms");
    } finally { server.set({ tokensPerSecond: 0 }); }
  });

  it("returns deterministic embeddings of the configured size", async () => {
    const body = (await (await post("/v1/embeddings", { model: "bge-small", input: ["a", "a", "b"] })).json()) as { data: { embedding: number[] }[] };
    assert.equal(body.data[0]!.embedding.length, 8);
    assert.deepEqual(body.data[0]!.embedding, body.data[1]!.embedding);
    assert.notDeepEqual(body.data[0]!.embedding, body.data[2]!.embedding);
  });

  it("refuses unknown models with 404", async () => {
    assert.equal((await post("/v1/chat/completions", { model: "nope", messages: [] })).status, 404);
  });

  it("injects errors, resets and hangs on request, and counts aborted requests", async () => {
    server.set({ failureMode: "error", failureRate: 1, errorStatus: 503 });
    assert.equal((await post("/v1/chat/completions", { model: "llama-3-8b", messages: [] })).status, 503);
    server.set({ failureMode: "reset" });
    await assert.rejects(post("/v1/chat/completions", { model: "llama-3-8b", messages: [] }));
    server.set({ failureMode: "hang" });
    const before = server.stats().aborted;
    await assert.rejects(fetch(`${server.url}/v1/chat/completions`, { method: "POST", body: "{}", signal: AbortSignal.timeout(200) }), /TimeoutError|aborted/);
    server.set({ failureMode: "none", failureRate: 0 });
    for (let i = 0; i < 50 && server.stats().aborted === before; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(server.stats().aborted, before + 1);
    assert.equal(server.stats().inFlight, 0);
  });
  it("answers canned replies set through /_control: by prompt text first, then replyText, then the filler again", async () => {
    const control = (patch: unknown) => fetch(`${server.url}/_control`, { method: "POST", body: JSON.stringify(patch) }).then((r) => r.json());
    const ask = async (content: string, extra: Record<string, unknown> = {}) => {
      const r = await post("/v1/chat/completions", { model: "llama-3-8b", max_tokens: 16, messages: [{ role: "system", content: "classify" }, { role: "user", content }], ...extra });
      return (await r.json()) as { choices: { message: { content: string }; finish_reason: string }[]; usage: Record<string, number> };
    };
    try {
      await control({ replyText: "SAFE", replies: [{ contains: "napalm", text: "UNSAFE weapons 0.9" }, { contains: "poison", text: "UNSAFE cbrn 0.7" }] });
      const unsafe = await ask("tell me about napalm and poison");
      assert.equal(unsafe.choices[0]!.message.content, "UNSAFE weapons 0.9", "the first matching rule wins");
      assert.equal(unsafe.choices[0]!.finish_reason, "stop");
      assert.equal(unsafe.usage.completion_tokens, 3);
      assert.equal((await ask("a poison question")).choices[0]!.message.content, "UNSAFE cbrn 0.7");
      assert.equal((await ask("Napalm")).choices[0]!.message.content, "SAFE", "matching is case-sensitive; no match → replyText");
      assert.deepEqual((server.stats().lastBody as { messages: { content: string }[] }).messages[1]!.content, "Napalm");
      // Cut at max_tokens, and streamed token by token.
      const cut = await ask("napalm", { max_tokens: 2 });
      assert.equal(cut.choices[0]!.message.content, "UNSAFE weapons");
      assert.equal(cut.choices[0]!.finish_reason, "length");
      const events = await sseEvents(await post("/v1/chat/completions", { model: "llama-3-8b", stream: true, messages: [{ role: "user", content: "napalm" }] }));
      const chunks = events.slice(0, -1).map((e) => JSON.parse(e) as { choices: { delta?: { content?: string }; finish_reason: string | null }[] });
      assert.equal(chunks.flatMap((c) => c.choices.map((ch) => ch.delta?.content ?? "")).join(""), "UNSAFE weapons 0.9");
      assert.equal(chunks.at(-1)!.choices[0]!.finish_reason, "stop");
    } finally {
      await control({ replyText: null, replies: [] });
    }
    assert.equal((await ask("napalm", { max_tokens: 3 })).choices[0]!.message.content, "the model answers");
  });
});

import assert from "node:assert/strict";
import { test } from "node:test";
import { contentWarningSseComment, createOutputFilter, createSseOutputFilter, screenCompletion } from "../../src/index.ts";

const PROHIBITED = "Sure. Here is how to make a pipe bomb: first you need";
const FILLER = "The weather today is mild with a light breeze from the west. ";

function sse(deltas: string[]): string {
  const events = deltas.map((content, i) => `data: ${JSON.stringify({ id: "c1", object: "chat.completion.chunk", choices: [{ index: 0, delta: i === 0 ? { role: "assistant", content } : { content } }] })}\n\n`);
  return events.join("") + "data: [DONE]\n\n";
}

function chunksOf(text: string, size: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out;
}

test("the output filter catches a phrase split across deltas", async (t) => {
  const text = FILLER.repeat(10) + PROHIBITED + " " + FILLER.repeat(10);
  for (const size of [1, 3, 7, 64, 1000]) await t.test(`deltas of ${size} chars`, () => {
    const f = createOutputFilter({ mode: "block" });
    let blockedAt = -1;
    let fed = 0;
    for (const d of chunksOf(text, size)) {
      fed += d.length;
      if (f.push(d).action === "block" && blockedAt < 0) blockedAt = fed;
    }
    if (blockedAt < 0 && f.end().action === "block") blockedAt = fed;
    assert.ok(blockedAt > 0, "blocked");
    const phraseEnd = text.indexOf(PROHIBITED) + PROHIBITED.length;
    assert.ok(blockedAt - phraseEnd <= 256 + size, `blocked within one scan step of the phrase (at ${blockedAt}, phrase ends ${phraseEnd})`);
    assert.equal(f.headerValue(), "weapons");
  });
  await t.test("clean text passes and gets no header", () => {
    const f = createOutputFilter({ mode: "block" });
    for (const d of chunksOf(FILLER.repeat(50), 5)) assert.equal(f.push(d).action, "allow");
    assert.equal(f.end().action, "allow");
    assert.equal(f.headerValue(), null);
  });
  await t.test("monitor mode flags instead of blocking", () => {
    const f = createOutputFilter({ mode: "monitor" });
    f.push(PROHIBITED);
    assert.equal(f.end().action, "flag");
  });
  await t.test("off does nothing", () => {
    const f = createOutputFilter({ mode: "off" });
    f.push(PROHIBITED);
    assert.equal(f.end().action, "allow");
    assert.equal(f.result().verdicts.length, 0);
  });
  await t.test("secrets in completions are caught", () => {
    const f = createOutputFilter({ mode: "block" });
    f.push(`your key is clsk_live_${"ab".repeat(32)} keep it safe`);
    assert.equal(f.end().action, "block");
    assert.equal(f.headerValue(), "secret_leak");
  });
});

test("memory stays bounded over a long stream", () => {
  const f = createOutputFilter({ mode: "monitor" });
  // 5 MB of clean text in small deltas: each rule is remembered once, the text is not.
  for (let i = 0; i < 80_000; i++) f.push(FILLER);
  f.end();
  assert.equal(f.result().verdicts.length, 0);
  // The retained window is at most overlap + scanEvery characters: prove it by catching a phrase right at the end.
  f.push(PROHIBITED);
  assert.equal(f.end().action, "flag");
});

test("the SSE filter reads raw upstream bytes split anywhere", async (t) => {
  const raw = sse(chunksOf(FILLER.repeat(5) + PROHIBITED + FILLER, 4));
  const bytes = new TextEncoder().encode(raw);
  for (const size of [1, 13, 4096]) await t.test(`${size}-byte network chunks`, () => {
    const f = createSseOutputFilter({ mode: "block" });
    let blocked = false;
    for (let i = 0; i < bytes.length; i += size) if (f.push(bytes.subarray(i, i + size)).action === "block") blocked = true;
    if (f.end().action === "block") blocked = true;
    assert.ok(blocked);
    assert.equal(f.headerValue(), "weapons");
    assert.ok(!JSON.stringify(f.result()).includes("pipe"), "verdicts hold no text");
  });
  await t.test("separate choices are screened separately", () => {
    const f = createSseOutputFilter({ mode: "block" });
    const ev = (index: number, content: string) => `data: ${JSON.stringify({ choices: [{ index, delta: { content } }] })}\n\n`;
    f.push(ev(0, "how to make a ") + ev(1, "pipe bomb ") + ev(0, "cake"));
    assert.equal(f.end().action, "allow", "text of two choices is not joined");
  });
  await t.test("over-long lines are skipped and recorded", () => {
    const f = createSseOutputFilter({ mode: "monitor", maxLineChars: 300 });
    f.push("data: " + "x".repeat(500) + "\n\n" + sse([PROHIBITED]));
    f.end();
    const ids = f.result().verdicts.map((v) => v.ruleId);
    assert.ok(ids.includes("limit.sse_line"));
    assert.ok(ids.includes("weapons.explosive_howto"));
  });
  await t.test("the warning as an SSE comment", () => assert.equal(contentWarningSseComment("weapons"), ": x-content-warning: weapons\n\n"));
});

test("non-streamed completions are screened per choice", () => {
  const body = { choices: [{ index: 0, message: { role: "assistant", content: "Hello!" } }, { index: 1, message: { role: "assistant", content: PROHIBITED } }] };
  assert.equal(screenCompletion(body, { mode: "block" }).action, "block");
  assert.equal(screenCompletion({ choices: [{ index: 0, text: "fine" }] }, { mode: "block" }).action, "allow");
});

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { generateApiKey } from "@crosslogic/crds";
import { redact, redactText } from "../../src/redact.ts";

const key = generateApiKey("live");

describe("log and audit redaction", () => {
  for (const [name, text] of [
    ["a whole key", `model ${key} not allowed`],
    ["a key's random part alone", `x${key.slice(10)}`],
    ["the first 40 digits of a key's random part", key.slice(10, 50)],
    ["a key in base64", Buffer.from(key).toString("base64")],
    ["a malformed clsk_ token", "clsk_prod_0123456789abcdef"],
  ] as const) {
    it(`removes ${name}`, () => {
      const out = redactText(text);
      assert.notEqual(out, text);
      assert.ok(!out.includes(key.slice(18, 40)), out);
    });
  }

  it("keeps a key's loggable prefix", () => assert.ok(redactText(key).startsWith(key.slice(0, 18))));

  it("keeps the gateway's own request ids readable", () => {
    const id = "req_96684f5d1c0f418bbee51cce26bf7dc1";
    assert.equal(redactText(`request ${id}`), `request ${id}`);
    const event = { request_id: id, details: { model: key } };
    const out = redact(event);
    assert.equal(out.request_id, id);
    assert.notEqual(out.details.model, key);
    assert.equal(event.details.model, key, "the input is not mutated");
  });
});

import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { it } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import { signatureHeader } from "../../src/signing.ts";

const doc = fs.readFileSync(path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../WEBHOOKS.md"), "utf8");

it("the verification snippet in WEBHOOKS.md verifies our signatures and refuses forgeries", async () => {
  const snippet = /```js\n([\s\S]*?)```/.exec(doc)?.[1];
  assert.ok(snippet, "WEBHOOKS.md has a ```js snippet");
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "webhooks-doc-")), "verify.mjs");
  fs.writeFileSync(file, snippet);
  const { verifyCrossLogicSignature } = await import(pathToFileURL(file).href) as { verifyCrossLogicSignature: (s: string, b: string, h: string | undefined) => boolean };
  const body = JSON.stringify({ id: "ntf_1", type: "key.revoked", data: { prefix: "clsk_live_a4f5b2c8" } });
  const now = Math.floor(Date.now() / 1000);
  const header = signatureHeader("s3cret", body, now);
  assert.equal(verifyCrossLogicSignature("s3cret", body, header), true);
  for (const [name, secret, b, h] of [
    ["wrong secret", "other", body, header],
    ["tampered body", "s3cret", body.replace("revoked", "created"), header],
    ["stale timestamp", "s3cret", body, signatureHeader("s3cret", body, now - 301)],
    ["timestamp swapped after signing", "s3cret", body, header.replace(`t=${now}`, `t=${now - 1}`)],
    ["missing header", "s3cret", body, undefined],
    ["garbage header", "s3cret", body, "v1=zz"],
  ] as const) {
    assert.equal(verifyCrossLogicSignature(secret, b, h), false, name);
  }
  fs.rmSync(path.dirname(file), { recursive: true, force: true });
});

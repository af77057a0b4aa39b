/**
 * The directory config source: the first scan hands every document over (large ones as bytes),
 * later scans read only files whose stat changed, hand a file over only when its text changed, and
 * report removals; large files are read into a buffer that is reused only once it is given back.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { LARGE_DOCUMENT_BYTES } from "../../src/config-store.ts";
import { LargeFileReader, watchDirectory, type ConfigSink } from "../../src/sources/directory.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(fn: () => boolean, ms = 3000): Promise<void> {
  for (const end = Date.now() + ms; !fn(); await sleep(10)) if (Date.now() > end) throw new Error("condition not met in time");
}

describe("directory config source", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gw-dir-"));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("reads only what changed, hands over only new text, large files as bytes, and reports removals", async () => {
    const small = path.join(dir, "small.json");
    const large = path.join(dir, "large.json");
    fs.writeFileSync(small, '{"v":1}');
    fs.writeFileSync(large, JSON.stringify({ v: 1, pad: "x".repeat(LARGE_DOCUMENT_BYTES) }));
    fs.writeFileSync(path.join(dir, "ignored.txt"), "not a document");
    const events: Array<[string, string, string]> = [];
    /** Events with large documents' bytes shown as "bytes". */
    const seen = () => events.map(([k, s, t]) => `${k} ${s} ${t.startsWith("bytes:") ? "bytes" : t}`);
    const sink: ConfigSink = {
      document: (source, text, _version, done) => { events.push(["document", source, typeof text === "string" ? text : `bytes:${text.length}`]); done?.(); },
      rejected: () => undefined,
      removed: (source) => events.push(["removed", source, ""]),
      error: () => undefined,
    };
    // Count file reads by the scans after the first one (large files are opened and read in place).
    const { readFile, open } = fs.promises;
    let reads = 0;
    fs.promises.readFile = ((...args: Parameters<typeof readFile>) => { reads++; return readFile(...args); }) as typeof readFile;
    fs.promises.open = ((...args: Parameters<typeof open>) => { reads++; return open(...args); }) as typeof open;
    const stop = watchDirectory(dir, sink, 20);
    try {
      assert.deepEqual(seen(), ["document file/large.json bytes", 'document file/small.json {"v":1}']);
      events.length = 0;
      await sleep(200);
      assert.equal(reads, 0, "unchanged files are not read again by the polls");
      assert.deepEqual(seen(), []);

      // Touched, same text: read again, not handed over.
      const later = new Date(Date.now() + 5000);
      fs.utimesSync(small, later, later);
      await until(() => reads > 0);
      await sleep(100);
      assert.deepEqual(seen(), []);

      fs.writeFileSync(small, '{"v":2}');
      fs.writeFileSync(large, JSON.stringify({ v: 2, pad: "y".repeat(LARGE_DOCUMENT_BYTES) }));
      await until(() => events.length >= 2);
      assert.deepEqual(new Set(seen()), new Set(['document file/small.json {"v":2}', "document file/large.json bytes"]));
      events.length = 0;

      fs.rmSync(small);
      await until(() => events.length >= 1);
      assert.deepEqual(seen(), ["removed file/small.json "]);
    } finally {
      stop();
      fs.promises.readFile = readFile;
      fs.promises.open = open;
    }
  });

  it("a large file's bytes are never overwritten while the sink holds them; given back, the buffer is reused", async () => {
    const file = path.join(dir, "big.bin");
    const content = (c: string, n: number) => Buffer.from(c.repeat(n));
    const reader = new LargeFileReader();
    fs.writeFileSync(file, content("a", 3000));
    const first = await reader.read(file);
    fs.writeFileSync(file, content("b", 2000));
    const second = reader.readSync(file); // the first is still held
    fs.writeFileSync(file, content("c", 1000));
    const third = await reader.read(file);
    assert.deepEqual(first.bytes, content("a", 3000), "held bytes intact after two more reads");
    assert.deepEqual(second.bytes, content("b", 2000));
    assert.deepEqual(third.bytes, content("c", 1000));
    assert.notEqual(second.bytes.buffer, first.bytes.buffer);
    first.done();
    first.done(); // twice: harmless
    fs.writeFileSync(file, content("d", 2500));
    const fourth = reader.readSync(file);
    assert.deepEqual(fourth.bytes, content("d", 2500), "a shorter file: exactly its bytes");
    assert.equal(fourth.bytes.buffer, first.bytes.buffer, "the given-back buffer is reused");
    assert.deepEqual(second.bytes, content("b", 2000), "a fresh buffer lent meanwhile is untouched");
    fs.writeFileSync(file, content("e", 4000));
    const fifth = await reader.read(file); // the pooled buffer is lent to `fourth`
    assert.deepEqual(fifth.bytes, content("e", 4000));
    assert.deepEqual(fourth.bytes, content("d", 2500));
    fourth.done();
    fs.writeFileSync(file, content("f", 5000));
    const sixth = await reader.read(file); // larger than the pooled buffer: it grows
    assert.deepEqual(sixth.bytes, content("f", 5000));
    sixth.done();
    await assert.rejects(reader.read(path.join(dir, "missing.bin")));
    fs.writeFileSync(file, content("g", 10));
    const seventh = await reader.read(file);
    assert.deepEqual(seventh.bytes, content("g", 10));
    assert.equal(seventh.bytes.buffer, sixth.bytes.buffer, "a failed read left the buffer free");
  });
});

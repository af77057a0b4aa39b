/**
 * Large gateway-config documents (directory mode: one environment can hold 100,000 keys, ~25 MB
 * of JSON) are hashed and parsed on a worker thread and handed back in chunks of keys, so the
 * event loop never stalls on one big JSON.parse. The worker is plain JavaScript (no TypeScript
 * loader in its isolate) and lives only for one document.
 */
import { isMarkedAsUntransferable, Worker } from "node:worker_threads";

const SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const { createHash } = require("node:crypto");
const buf = Buffer.from(workerData.buffer, workerData.byteOffset, workerData.length);
const digest = createHash("sha256").update(buf).digest("hex");
parentPort.postMessage({ type: "digest", digest });
let doc;
try { doc = JSON.parse(buf.toString("utf8")); } catch { parentPort.postMessage({ type: "error", errors: ["/: not valid JSON"] }); return; }
const keys = doc && typeof doc === "object" && Array.isArray(doc.keys) ? doc.keys : [];
if (doc && typeof doc === "object") doc.keys = [];
parentPort.postMessage({ type: "skeleton", doc, total: keys.length });
// One chunk per request from the main thread: it deserialises one message per turn.
let at = 0;
parentPort.on("message", () => {
  if (at >= keys.length) { parentPort.postMessage({ type: "done" }); parentPort.close(); return; }
  parentPort.postMessage({ type: "keys", keys: keys.slice(at, at + workerData.chunk) });
  at += workerData.chunk;
});
`;

export type ParsedMessage =
  | { type: "digest"; digest: string }
  | { type: "error"; errors: string[] }
  | { type: "skeleton"; doc: unknown; total: number }
  | { type: "keys"; keys: unknown[] }
  | { type: "done" };

/** Parses `buf` on a worker; yields the digest, then the document without keys, then its keys in chunks. */
export async function* parseOnWorker(buf: Buffer, chunk = 2000): AsyncGenerator<ParsedMessage> {
  // The bytes move to the worker without a copy when the Buffer owns a transferable ArrayBuffer.
  let own = buf;
  if (buf.byteOffset !== 0 || buf.byteLength !== buf.buffer.byteLength || isMarkedAsUntransferable(buf.buffer)) {
    own = Buffer.from(new ArrayBuffer(buf.byteLength));
    own.set(buf);
  }
  const ab = own.buffer as ArrayBuffer;
  const worker = new Worker(`(function(){${SOURCE}})()`, { eval: true, workerData: { buffer: ab, byteOffset: own.byteOffset, length: own.byteLength, chunk }, transferList: [ab] });
  const queue: ParsedMessage[] = [];
  let wake: (() => void) | undefined;
  let failure: Error | undefined;
  let exited = false;
  worker.on("message", (m: ParsedMessage) => { queue.push(m); wake?.(); });
  worker.on("error", (e) => { failure = e; wake?.(); });
  worker.on("exit", () => { exited = true; wake?.(); });
  try {
    for (;;) {
      while (queue.length === 0 && !failure && !exited) await new Promise<void>((r) => { wake = r; });
      wake = undefined;
      const m = queue.shift();
      if (m) {
        yield m;
        if (m.type === "done" || m.type === "error") return;
        if (m.type === "skeleton" || m.type === "keys") worker.postMessage("next");
        continue;
      }
      if (failure) throw failure;
      throw new Error("config worker exited early");
    }
  } finally {
    void worker.terminate();
  }
}

/**
 * Content-safety and anomaly-detection throughput. Writes bench/results/safety.json.
 *   node bench/safety.bench.ts
 * Single-threaded figures on this (shared, 2-core) machine; compare runs, not absolutes.
 */
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { createAnomalyDetector, createOutputFilter, createSseOutputFilter, screenRequest } from "@crosslogic/safety";

const corpusDir = new URL("../safety/corpus/", import.meta.url);
const rows = readdirSync(corpusDir).filter((f) => f.endsWith(".jsonl")).flatMap((f) =>
  readFileSync(new URL(f, corpusDir), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as { label: string; text?: string }));
const benign = rows.filter((r) => r.label === "benign" && r.text).map((r) => r.text!);
const all = rows.filter((r) => r.text).map((r) => r.text!);

function timeIt(minMs: number, fn: () => number): { ops: number; ms: number; units: number } {
  let ops = 0;
  let units = 0;
  const start = performance.now();
  while (performance.now() - start < minMs) { units += fn(); ops++; }
  return { ops, ms: performance.now() - start, units };
}

const mb = (chars: number, ms: number) => Math.round((chars / 1e6 / (ms / 1000)) * 100) / 100;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

// 1. Typical chat requests: one corpus prompt each, benign and mixed.
function perRequest(texts: string[]): { requestsPerSecond: number; mbPerSecond: number; p50Us: number; p99Us: number } {
  const lat: number[] = [];
  let chars = 0;
  let i = 0;
  const start = performance.now();
  while (performance.now() - start < 3000) {
    const text = texts[i++ % texts.length]!;
    const t = performance.now();
    screenRequest({ messages: [{ role: "system", content: "You are a helpful assistant." }, { role: "user", content: text }] }, { mode: "block" });
    lat.push((performance.now() - t) * 1000);
    chars += text.length + 28;
  }
  const ms = performance.now() - start;
  lat.sort((a, b) => a - b);
  return { requestsPerSecond: Math.round(lat.length / (ms / 1000)), mbPerSecond: mb(chars, ms), p50Us: Math.round(percentile(lat, 50)), p99Us: Math.round(percentile(lat, 99)) };
}

// 2. Large prompts: 64 KB and 1 MB of benign prose in one message.
function large(size: number): { mbPerSecond: number; msPerRequest: number } {
  let text = "";
  for (let i = 0; text.length < size; i++) text += benign[i % benign.length] + " ";
  text = text.slice(0, size);
  const r = timeIt(3000, () => { screenRequest({ messages: [{ role: "user", content: text }] }, { mode: "block" }); return text.length; });
  return { mbPerSecond: mb(r.units, r.ms), msPerRequest: Math.round((r.ms / r.ops) * 100) / 100 };
}

// 3. Output filter on streamed deltas (~4 chars each, like tokens) and on raw SSE bytes.
function output(): { deltasMbPerSecond: number; sseMbPerSecond: number } {
  let text = "";
  for (let i = 0; text.length < 200_000; i++) text += benign[i % benign.length] + " ";
  const deltas: string[] = [];
  for (let i = 0; i < text.length; i += 4) deltas.push(text.slice(i, i + 4));
  const d = timeIt(3000, () => { const f = createOutputFilter({ mode: "block" }); for (const x of deltas) f.push(x); f.end(); return text.length; });
  const sse = deltas.map((content) => `data: ${JSON.stringify({ id: "x", object: "chat.completion.chunk", choices: [{ index: 0, delta: { content } }] })}\n\n`).join("");
  const bytes = new TextEncoder().encode(sse);
  const s = timeIt(3000, () => { const f = createSseOutputFilter({ mode: "block" }); for (let i = 0; i < bytes.length; i += 1400) f.push(bytes.subarray(i, i + 1400)); f.end(); return text.length; });
  return { deltasMbPerSecond: mb(d.units, d.ms), sseMbPerSecond: mb(s.units, s.ms) };
}

// 4. Anomaly detector: samples recorded per second over 10,000 keys in 100 tenants.
function anomaly(): { recordsPerSecond: number; subjects: number } {
  let clock = 0;
  const det = createAnomalyDetector({ now: () => clock });
  const r = timeIt(2000, () => {
    for (let i = 0; i < 1000; i++) {
      clock += 7;
      const k = (i * 7919) % 10_000;
      det.record({ tenant: `t${k % 100}`, keyPrefix: `clsk_live_${k.toString(16).padStart(8, "0")}`, requests: 1, tokens: 300 });
    }
    return 1000;
  });
  return { recordsPerSecond: Math.round(r.units / (r.ms / 1000)), subjects: det.size() };
}

const results = {
  benchmark: "safety",
  node: process.version,
  date: new Date().toISOString(),
  corpusPrompts: { benign: benign.length, all: all.length },
  inputBenignRequests: perRequest(benign),
  inputMixedRequests: perRequest(all),
  inputLarge64KB: large(64 * 1024),
  inputLarge1MB: large(1024 * 1024),
  output: output(),
  anomaly: anomaly(),
};
mkdirSync(new URL("results/", import.meta.url), { recursive: true });
writeFileSync(new URL("results/safety.json", import.meta.url), JSON.stringify(results, null, 2) + "\n");
console.log(JSON.stringify(results, null, 2));

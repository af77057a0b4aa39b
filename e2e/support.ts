/**
 * Helpers for the full-system suites: kubectl and polling (from testenv), a model server on loopback, and an `openai`
 * SDK client that reaches the gateway under an Environment's hostname (resolved to loopback, so the
 * Host header and TLS SNI are the real hostname, as in production).
 */
import fs from "node:fs";
import type { LookupFunction } from "node:net";
import path from "node:path";
import OpenAI from "openai";
import { Agent, fetch as undiciFetch, type RequestInit as UndiciRequestInit } from "undici";
import { freePort, isListening } from "@crosslogic/testenv";
import { startProcess, waitUntilReady, type ManagedProcess } from "@crosslogic/testenv/process";
import { repoRoot } from "@crosslogic/testenv/product";

export { kube, waitFor, type Kube } from "@crosslogic/testenv/kube";

/** A model server on loopback (a URL backend), its log under `logDir`. */
export async function startLoopbackModelServer(name: string, models: string[], logDir: string): Promise<{ url: string; process: ManagedProcess }> {
  const port = await freePort();
  fs.mkdirSync(logDir, { recursive: true });
  const proc = startProcess({
    name: `model server ${name}`, command: process.execPath, logFile: path.join(logDir, `model-${name}.log`),
    args: [path.join(repoRoot, "model-server/src/main.ts"), "--port", String(port), "--name", name, "--models", models.join(",")],
  });
  await waitUntilReady(proc, () => isListening(port), 15_000);
  return { url: `http://127.0.0.1:${port}`, process: proc };
}

/** A dispatcher that resolves every hostname to 127.0.0.1 (and trusts `ca` for TLS, when given). */
export function loopbackAgent(ca?: string): Agent {
  const lookup: LookupFunction = (_hostname, options, callback) => {
    if (options.all) (callback as unknown as (e: null, a: Array<{ address: string; family: number }>) => void)(null, [{ address: "127.0.0.1", family: 4 }]);
    else callback(null, "127.0.0.1", 4);
  };
  return new Agent({ connect: { lookup, ...(ca ? { ca } : {}) } });
}

/**
 * An `openai` SDK client for `https?://<hostname>:<port>/v1` reaching the gateway on loopback.
 * No SDK retries: a 429 must reach the test as it reaches a user.
 */
export function sdkFor(gatewayUrl: string, hostname: string, apiKey: string, agent: Agent): OpenAI {
  const u = new URL(gatewayUrl);
  return new OpenAI({
    apiKey, baseURL: `${u.protocol}//${hostname}:${u.port}/v1`, maxRetries: 0, timeout: 15_000,
    fetch: ((url: string, init?: UndiciRequestInit) => undiciFetch(url, { ...init, dispatcher: agent })) as unknown as typeof fetch,
  });
}

/** Status code of an SDK call: 200 when it succeeds, the API error's status otherwise. */
export async function statusOf(call: Promise<unknown>): Promise<number> {
  try {
    await call;
    return 200;
  } catch (err) {
    if (err instanceof OpenAI.APIError && typeof err.status === "number") return err.status;
    throw err;
  }
}

export const b64 = (s: string) => Buffer.from(s, "base64").toString("utf8");

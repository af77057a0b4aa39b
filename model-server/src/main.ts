#!/usr/bin/env node
/**
 * Runs the model server from the command line:
 *   node model-server/src/main.ts [--port 9000] [--host 127.0.0.1] [--models a,b] [--latency-ms 0]
 *     [--tokens-per-second 0] [--failure-rate 0 --failure-mode error|reset|hang] [--name x]
 *     [--reply-text "SAFE"]   (a canned completion instead of filler words; see server.ts)
 */
import { parseArgs } from "node:util";
import { startModelServer, type FailureMode } from "./server.ts";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "9000" },
    host: { type: "string", default: "127.0.0.1" },
    models: { type: "string", default: "llama-3-8b,bge-small" },
    "latency-ms": { type: "string", default: "0" },
    "tokens-per-second": { type: "string", default: "0" },
    "failure-rate": { type: "string", default: "0" },
    "failure-mode": { type: "string", default: "none" },
    name: { type: "string", default: "model-server" },
    "reply-text": { type: "string" },
  },
});

const num = (name: string, v: string | undefined) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) { console.error(`model-server: --${name} must be a non-negative number, got ${v}`); process.exit(2); }
  return n;
};
const mode = values["failure-mode"] as FailureMode;
if (!["none", "error", "reset", "hang"].includes(mode)) { console.error(`model-server: --failure-mode must be none, error, reset or hang`); process.exit(2); }

try {
  const server = await startModelServer({
    host: values.host, port: num("port", values.port), name: values.name, models: values.models!.split(",").filter(Boolean),
    latencyMs: num("latency-ms", values["latency-ms"]), tokensPerSecond: num("tokens-per-second", values["tokens-per-second"]),
    failureRate: num("failure-rate", values["failure-rate"]), failureMode: mode,
    ...(values["reply-text"] !== undefined ? { replyText: values["reply-text"] } : {}),
  });
  console.log(JSON.stringify({ msg: "model server listening", url: server.url }));
  const stop = () => { void server.close().then(() => process.exit(0)); };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
} catch (err) {
  const e = err as NodeJS.ErrnoException;
  console.error(`model-server: could not listen on ${values.host}:${values.port}: ${e.code === "EADDRINUSE" ? "port already in use" : e.message}`);
  process.exit(1);
}

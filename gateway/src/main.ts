#!/usr/bin/env node
/** The gateway process: configuration from the environment, listen, stop gracefully on SIGTERM/SIGINT. */
import { loadConfig } from "./config.ts";
import { startGateway } from "./server.ts";

let config;
try {
  config = loadConfig();
} catch (e) {
  console.error((e as Error).message);
  process.exit(2);
}
const gateway = await startGateway(config).catch((e: unknown) => {
  // One line naming the cause (a refused Secret list, a port in use…), not a stack trace.
  process.stderr.write(`${JSON.stringify({ level: "error", message: "Gateway failed to start", error: (e as Error).message })}\n`);
  process.exit(1);
});
let stopping = false;
const stop = (signal: string) => {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`${JSON.stringify({ level: "info", message: "Gateway stopping", signal })}\n`);
  void gateway.close().then(() => process.exit(0), () => process.exit(1));
};
process.on("SIGTERM", () => stop("SIGTERM"));
process.on("SIGINT", () => stop("SIGINT"));

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
const gateway = await startGateway(config);
let stopping = false;
const stop = (signal: string) => {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`${JSON.stringify({ level: "info", message: "Gateway stopping", signal })}\n`);
  void gateway.close().then(() => process.exit(0), () => process.exit(1));
};
process.on("SIGTERM", () => stop("SIGTERM"));
process.on("SIGINT", () => stop("SIGINT"));

/** An in-process gateway wired to real Redis (and optionally PostgreSQL) with a config directory. */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { GatewayConfig } from "@crosslogic/crds";
import { startGateway, type GatewayOptions, type RunningGateway } from "../src/server.ts";
import { capture, testConfig } from "./fixtures.ts";

export interface Harness {
  gw: RunningGateway;
  dir: string;
  prefix: string;
  logs(): string;
  audits(): string;
  write(name: string, doc: GatewayConfig | string): void;
  stop(): Promise<void>;
}

export async function startHarness(env: Record<string, string>, docs: Record<string, GatewayConfig>, options: GatewayOptions = {}): Promise<Harness> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gw-cfg-"));
  const write = (name: string, doc: GatewayConfig | string) => {
    const file = path.join(dir, `${name}.json`);
    fs.writeFileSync(`${file}.tmp`, typeof doc === "string" ? doc : JSON.stringify(doc));
    fs.renameSync(`${file}.tmp`, file);
  };
  for (const [name, doc] of Object.entries(docs)) write(name, doc);
  const logs = capture();
  const audits = capture();
  const config = testConfig({ CONFIG_DIR: dir, ...env });
  const gw = await startGateway(config, { logStream: logs.stream, auditStream: audits.stream, ...options });
  return {
    gw, dir, prefix: config.REDIS_KEY_PREFIX, logs: logs.text, audits: audits.text, write,
    async stop() { await gw.close(); fs.rmSync(dir, { recursive: true, force: true }); },
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until `fn` returns truthy or the time is up. */
export async function eventually<T>(fn: () => T | Promise<T>, ms = 5000, step = 25): Promise<NonNullable<T>> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error("condition not met in time");
    await sleep(step);
  }
}

import assert from "node:assert/strict";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import fs from "node:fs";
import { describe, it } from "node:test";
import { StartError } from "../../src/errors.ts";
import { assertPortFree, freePort } from "../../src/ports.ts";
import { startProcess, waitUntilReady } from "../../src/process.ts";

describe("start-up failures say what went wrong", () => {
  it("names the component and port when a port is taken", async () => {
    const server = net.createServer().listen(0, "127.0.0.1");
    await new Promise((r) => server.once("listening", r));
    const { port } = server.address() as net.AddressInfo;
    try {
      await assert.rejects(assertPortFree(port, "Redis"), (err: Error) =>
        err instanceof StartError && err.message === `Redis: port 127.0.0.1:${port} is already in use by another process`);
    } finally {
      server.close();
    }
    await assertPortFree(await freePort(), "Redis"); // a free port passes
  });

  it("reports a process that dies during start-up with its log tail, without hanging", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "start-err-"));
    const proc = startProcess({ name: "fake-db", command: "/bin/sh", args: ["-c", "echo 'FATAL: data directory has wrong ownership' >&2; exit 3"], logFile: path.join(dir, "log") });
    await assert.rejects(waitUntilReady(proc, async () => false, 10_000), (err: Error) =>
      err instanceof StartError && err.message.startsWith("fake-db exited during start-up") && err.message.includes("wrong ownership"));
  });

  it("refuses a missing executable with its path", () => {
    assert.throws(() => startProcess({ name: "etcd", command: "/nonexistent/etcd", args: [], logFile: "/dev/null" }), /etcd: executable \/nonexistent\/etcd does not exist/);
  });

  it("times out with a clear message and stops the process", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "start-err-"));
    const proc = startProcess({ name: "slow", command: "/bin/sleep", args: ["30"], logFile: path.join(dir, "log") });
    await assert.rejects(waitUntilReady(proc, async () => false, 300), /slow was not ready after 0.3s/);
    assert.equal(proc.exited(), true);
  });
});

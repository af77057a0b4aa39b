import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { createTestHost } from "../../src/netns.ts";
import { waitUntilReady } from "../../src/process.ts";

const modelServer = fileURLToPath(new URL("../../../model-server/src/main.ts", import.meta.url));

describe("test hosts in network namespaces", () => {
  it("runs a model server on a non-loopback address reachable from here, and removes it all", async () => {
    const host = createTestHost(201);
    try {
      assert.match(host.ip, /^10\.251\.201\.2$/);
      const proc = host.start("model server", process.execPath, [modelServer, "--host", host.ip, "--port", "8000", "--name", "netns-pool"], path.join(os.tmpdir(), `netns-${process.pid}.log`));
      try {
        await waitUntilReady(proc, async () => (await fetch(`http://${host.ip}:8000/health`, { signal: AbortSignal.timeout(500) })).ok, 15_000);
        const models = (await (await fetch(`http://${host.ip}:8000/v1/models`)).json()) as { data: { owned_by: string }[] };
        assert.equal(models.data[0]?.owned_by, "netns-pool");
      } finally {
        await proc.stop();
      }
    } finally {
      host.destroy();
    }
    // Gone: no namespace and no veth left (never probe the address itself once its host is gone:
    // it would route off this machine).
    assert.ok(!execFileSync("ip", ["netns", "list"]).toString().includes(host.name));
    assert.ok(!execFileSync("ip", ["link", "show"]).toString().includes(`clh${process.pid % 10000}-201`));
  });
});

import net from "node:net";
import { StartError } from "./errors.ts";

/** Ports this process has handed out: two starts in parallel never get the same one. */
const handedOut = new Set<number>();

/** Asks the kernel for a free loopback TCP port (one this process has not handed out before). */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = net.createServer();
      server.unref();
      server.on("error", reject);
      server.listen(0, host, () => {
        const { port } = server.address() as net.AddressInfo;
        server.close(() => resolve(port));
      });
    });
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
}

/** Resolves true when something accepts TCP connections on host:port. */
export async function isListening(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    socket.once("connect", () => { socket.destroy(); resolve(true); });
    socket.once("error", () => resolve(false));
  });
}

/** Fails with a clear message when a port someone asked for is already taken. */
export async function assertPortFree(port: number, what: string, host = "127.0.0.1"): Promise<void> {
  if (await isListening(port, host)) {
    throw new StartError(`${what}: port ${host}:${port} is already in use by another process`);
  }
}

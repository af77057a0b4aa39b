/** /healthz (process and watches alive), /readyz (leader with synced caches, or standing by), /metrics. */
import http from "node:http";
import type { Metrics } from "./metrics.ts";

export interface HealthSource {
  healthy(): { ok: boolean; detail: string };
  ready(): { ok: boolean; detail: string };
}

export function startHttpServer(port: number, host: string, metrics: Metrics, health: HealthSource): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    const send = (status: number, body: string, type = "text/plain; charset=utf-8") => {
      res.writeHead(status, { "content-type": type, "cache-control": "no-store" });
      res.end(body);
    };
    if (req.method !== "GET" && req.method !== "HEAD") return send(405, "method not allowed\n");
    if (path === "/healthz" || path === "/readyz") {
      const r = path === "/healthz" ? health.healthy() : health.ready();
      return send(r.ok ? 200 : 503, `${r.ok ? "ok" : "not ok"}: ${r.detail}\n`);
    }
    if (path === "/metrics") {
      metrics.registry.metrics().then((text) => send(200, text, metrics.registry.contentType), (err: Error) => send(500, `${err.message}\n`));
      return;
    }
    send(404, "not found\n");
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve(server));
  });
}

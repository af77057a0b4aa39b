/** Reference: a raw node:http + undici proxy with no enforcement. */
import http from "node:http";
import { Pool } from "undici";

const [port, upstream] = [Number(process.argv[2]), process.argv[3]!];
const pool = new Pool(upstream, { connections: 128 });
http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    pool.request({ method: "POST", path: req.url!, headers: { "content-type": "application/json" }, body: Buffer.concat(chunks) }).then((r) => {
      res.writeHead(r.statusCode, { "content-type": String(r.headers["content-type"] ?? "application/json") });
      r.body.pipe(res);
    }, () => { res.writeHead(502); res.end(); });
  });
}).listen(port, "127.0.0.1");

/** Reference: a bare Express 5 + undici proxy with no enforcement (what the gateway is compared with). */
import express from "express";
import { Pool } from "undici";

const [port, upstream] = [Number(process.argv[2]), process.argv[3]!];
const pool = new Pool(upstream, { connections: 128 });
const app = express();
app.disable("x-powered-by");
app.set("etag", false);
app.use(express.raw({ type: "*/*", limit: "10mb" }));
app.post("/v1/{*path}", async (req, res) => {
  try {
    const r = await pool.request({ method: "POST", path: req.path, headers: { "content-type": "application/json" }, body: req.body as Buffer });
    res.status(r.statusCode);
    const ct = r.headers["content-type"];
    if (ct) res.setHeader("content-type", ct);
    r.body.pipe(res);
  } catch {
    res.status(502).end();
  }
});
app.listen(port, "127.0.0.1");

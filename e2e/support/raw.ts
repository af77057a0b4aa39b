/** Raw HTTP/1.1 over a socket: for requests no client library will send (duplicate, oversized or broken headers). */
import net from "node:net";

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[]>;
  body: string;
  /** The whole response as received. */
  raw: string;
  /** Milliseconds until the connection closed (or the response was complete). */
  ms: number;
}

function parse(all: Buffer): Omit<RawResponse, "ms"> | undefined {
  let buf = all;
  // Interim responses (100 Continue) come first: the final one follows.
  while (/^HTTP\/1\.[01] 1\d\d /.test(buf.subarray(0, 16).toString("latin1")) && !buf.subarray(0, 16).toString("latin1").includes(" 101 ")) {
    const e = buf.indexOf("\r\n\r\n");
    if (e === -1) return undefined;
    buf = buf.subarray(e + 4);
  }
  const end = buf.indexOf("\r\n\r\n");
  if (end === -1) return undefined;
  const head = buf.subarray(0, end).toString("latin1").split("\r\n");
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head[0] ?? "")?.[1] ?? 0);
  const headers: Record<string, string | string[]> = {};
  for (const line of head.slice(1)) {
    const i = line.indexOf(":");
    if (i <= 0) continue;
    const name = line.slice(0, i).trim().toLowerCase();
    const value = line.slice(i + 1).trim();
    const prev = headers[name];
    headers[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
  let rest = buf.subarray(end + 4);
  if (String(headers["transfer-encoding"] ?? "").toLowerCase() === "chunked") {
    const parts: Buffer[] = [];
    for (;;) {
      const nl = rest.indexOf("\r\n");
      if (nl === -1) return undefined;
      const size = parseInt(rest.subarray(0, nl).toString("latin1"), 16);
      if (size === 0) break;
      if (rest.length < nl + 2 + size + 2) return undefined;
      parts.push(rest.subarray(nl + 2, nl + 2 + size));
      rest = rest.subarray(nl + 2 + size + 2);
    }
    return { status, headers, body: Buffer.concat(parts).toString("utf8"), raw: buf.toString("latin1") };
  }
  const length = headers["content-length"];
  if (length !== undefined && rest.length < Number(length)) return undefined;
  if (length === undefined && status !== 204 && status !== 304) return undefined; // until close
  return { status, headers, body: rest.toString("utf8"), raw: buf.toString("latin1") };
}

/**
 * Sends `parts` (written one after another, `gapMs` apart: a slow body) and returns the first
 * response. Resolves with status 0 when the server closed without answering.
 */
export function rawRequest(port: number, parts: Array<string | Buffer>, opts: { timeoutMs?: number; gapMs?: number } = {}): Promise<RawResponse> {
  const start = performance.now();
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: "127.0.0.1" });
    let buf = Buffer.alloc(0);
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const r = parse(buf);
      const ms = performance.now() - start;
      if (r) resolve({ ...r, ms });
      else {
        const text = buf.toString("latin1");
        const i = text.indexOf("\r\n\r\n");
        const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
        resolve({ status, headers: {}, body: i === -1 ? "" : text.slice(i + 4), raw: text, ms });
      }
    };
    const timer = setTimeout(finish, opts.timeoutMs ?? 5000);
    socket.on("data", (c: Buffer) => { buf = Buffer.concat([buf, c]); if (parse(buf)) finish(); });
    socket.on("close", finish);
    socket.on("error", finish);
    socket.on("connect", async () => {
      for (const [i, p] of parts.entries()) {
        if (done || socket.destroyed) return;
        if (i > 0 && opts.gapMs) await new Promise((r) => setTimeout(r, opts.gapMs));
        if (done || socket.destroyed) return;
        socket.write(p);
      }
    });
  });
}

/** A request head (HTTP/1.1) from a list of header lines; `body` gets a Content-Length unless a header sets framing. */
export function head(method: string, target: string, lines: string[], body?: string | Buffer): Array<string | Buffer> {
  const hasFraming = lines.some((l) => /^(content-length|transfer-encoding)\s*:/i.test(l));
  const all = [...lines];
  if (body !== undefined && !hasFraming) all.push(`Content-Length: ${Buffer.byteLength(body)}`);
  const h = `${method} ${target} HTTP/1.1\r\n${all.join("\r\n")}${all.length ? "\r\n" : ""}\r\n`;
  return body === undefined ? [h] : [h, body];
}

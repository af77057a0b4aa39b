/**
 * Request bodies: JSON content type only, at most 10 MB counted on the wire (so chunked bodies
 * are held to the same limit as declared ones), kept as the raw bytes that will be forwarded.
 */
import type { IncomingMessage } from "node:http";
import { GatewayError } from "./errors.ts";

export function isJsonContentType(value: string | undefined): boolean {
  if (!value) return false;
  const semi = value.indexOf(";");
  const type = (semi === -1 ? value : value.slice(0, semi)).trim().toLowerCase();
  return type === "application/json";
}

export function readRawBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = req.headers["content-length"];
  if (declared !== undefined && Number(declared) > limit) return Promise.reject(new GatewayError("payload_too_large"));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        cleanup();
        // Stop reading; the response closes the connection.
        req.pause();
        reject(new GatewayError("payload_too_large"));
        return;
      }
      chunks.push(c);
    };
    const onEnd = () => { cleanup(); resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)); };
    const onError = () => { cleanup(); reject(new GatewayError("invalid_request", "The request body could not be read.")); };
    const cleanup = () => { req.off("data", onData); req.off("end", onEnd); req.off("error", onError); };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
  });
}

/**
 * Requests Node's HTTP parser refuses before any handler runs (bare CR/LF, NUL in a header, oversized
 * headers or URL, unknown methods, bad chunk sizes, smuggling attempts) and unsupported `Expect`
 * values: answered with the catalog's JSON error and every security header, then the connection is
 * closed. Installed on both listeners (public and admin).
 */
import { randomBytes } from "node:crypto";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { errorBody, Errors, type ErrorCode } from "./errors.ts";
import { securityHeaders } from "./headers.ts";

const STATUS_TEXT: Record<number, string> = { 400: "Bad Request", 408: "Request Timeout", 417: "Expectation Failed", 431: "Request Header Fields Too Large" };
const HEAD_LINES = securityHeaders.map(([n, v]) => `${n}: ${v}\r\n`).join("");

const id = () => `req_${randomBytes(16).toString("hex")}`;

function codeFor(err: NodeJS.ErrnoException): ErrorCode {
  switch (err.code) {
    case "HPE_HEADER_OVERFLOW": return "headers_too_large";
    case "ERR_HTTP_REQUEST_TIMEOUT": return "request_timeout";
    default: return "malformed_request";
  }
}

/** The whole raw HTTP/1.1 response for a refused request (no handler, no ServerResponse). */
export function rawErrorResponse(code: ErrorCode, requestId = id()): string {
  const status = Errors[code].status;
  const body = errorBody(code, requestId);
  return `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? "Error"}\r\n${HEAD_LINES}X-Request-Id: ${requestId}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
}

type ClientSocket = Duplex & { _httpMessage?: ServerResponse | null };

export function onClientError(err: NodeJS.ErrnoException, socket: ClientSocket): void {
  // Same rule as Node's default: answer only when nothing of a response went out on this socket.
  if (err.code === "ECONNRESET" || !socket.writable || socket._httpMessage?.headersSent) { socket.destroy(); return; }
  socket.end(rawErrorResponse(codeFor(err)));
  socket.once("finish", () => socket.destroy());
}

export function onCheckExpectation(_req: IncomingMessage, res: ServerResponse): void {
  const requestId = id();
  const body = errorBody("expectation_failed", requestId);
  const h: string[] = securityHeaders.flatMap(([n, v]) => [n, v]);
  h.push("X-Request-Id", requestId, "Content-Type", "application/json; charset=utf-8", "Content-Length", String(Buffer.byteLength(body)), "Connection", "close");
  res.writeHead(417, h);
  res.end(body);
}

/** Installs both handlers; the Host check moves to the handlers (Node's own answers a bare 400). */
export function hardenListener(server: Server): void {
  server.on("clientError", onClientError);
  server.on("checkExpectation", onCheckExpectation);
}

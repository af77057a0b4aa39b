/**
 * The one error catalog: every refusal the gateway can send, with its HTTP status, OpenAI error
 * type and a stable code. Messages are fixed strings (plus, for validation, the schema's own
 * message): no stack, path, SQL or Redis text ever reaches a client.
 */
export const Errors = {
  invalid_json: { status: 400, type: "invalid_request_error", message: "The request body is not valid JSON." },
  invalid_request: { status: 400, type: "invalid_request_error", message: "The request body does not match the API schema." },
  invalid_api_key: { status: 401, type: "authentication_error", message: "Invalid API key. Provide a valid key as 'Authorization: Bearer clsk_…'." },
  permission_denied: { status: 403, type: "permission_error", message: "This API key is not allowed to perform this request." },
  client_blocked: { status: 403, type: "permission_error", message: "Temporarily blocked after repeated limit violations." },
  address_blocked: { status: 403, type: "permission_error", message: "Requests from this network address are not accepted." },
  not_found: { status: 404, type: "invalid_request_error", message: "Unknown endpoint." },
  model_not_found: { status: 404, type: "invalid_request_error", message: "The model does not exist in this environment." },
  method_not_allowed: { status: 405, type: "invalid_request_error", message: "Method not allowed for this endpoint." },
  payload_too_large: { status: 413, type: "invalid_request_error", message: "The request body exceeds 10 MB." },
  unsupported_media_type: { status: 415, type: "invalid_request_error", message: "The request body must be JSON (Content-Type: application/json)." },
  rate_limit_exceeded: { status: 429, type: "rate_limit_error", message: "Rate limit exceeded." },
  internal_error: { status: 500, type: "server_error", message: "The gateway failed to process the request." },
  upstream_error: { status: 502, type: "server_error", message: "The model backend failed to respond." },
  no_backend: { status: 503, type: "server_error", message: "No healthy model backend is available." },
  rate_limiter_unavailable: { status: 503, type: "server_error", message: "Rate limiting is temporarily unavailable; retry shortly." },
  metering_unavailable: { status: 503, type: "server_error", message: "Usage metering is temporarily unavailable; retry shortly." },
  shutting_down: { status: 503, type: "server_error", message: "The gateway is shutting down; retry." },
  upstream_timeout: { status: 504, type: "server_error", message: "The model backend timed out." },
  // Requests Node's HTTP parser refuses before the handler runs (src/protocol.ts).
  malformed_request: { status: 400, type: "invalid_request_error", message: "The request is not valid HTTP/1.1." },
  request_timeout: { status: 408, type: "invalid_request_error", message: "The request was not received in time." },
  expectation_failed: { status: 417, type: "invalid_request_error", message: "Only 'Expect: 100-continue' is supported." },
  headers_too_large: { status: 431, type: "invalid_request_error", message: "The request line or headers are too large." },
  content_policy_violation: { status: 400, type: "invalid_request_error", message: "The request was refused by the content policy." },
  // Admin port only.
  invalid_admin_token: { status: 401, type: "authentication_error", message: "Invalid or missing X-Admin-Token." },
  usage_store_unavailable: { status: 503, type: "server_error", message: "The usage store is unavailable." },
  audit_store_unavailable: { status: 503, type: "server_error", message: "The audit store is unavailable." },
} as const satisfies Record<string, { status: number; type: string; message: string }>;

export type ErrorCode = keyof typeof Errors;

export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Safe detail appended to the catalog message (e.g. which field failed validation). */
  readonly detail: string | undefined;
  readonly headers: Record<string, string> | undefined;
  constructor(code: ErrorCode, detail?: string, headers?: Record<string, string>) {
    super(code);
    this.code = code;
    this.status = Errors[code].status;
    this.detail = detail;
    this.headers = headers;
  }
}

/** The OpenAI-compatible error body, serialised. */
export function errorBody(code: ErrorCode, requestId: string, detail?: string): string {
  const e = Errors[code];
  return JSON.stringify({ error: { message: detail ? `${e.message} ${detail}` : e.message, type: e.type, param: null, code, request_id: requestId } });
}

/**
 * The OpenAPI 3.1 document of the gateway's public and admin APIs, served at /openapi.json. It is
 * the single source of request validation: the TypeBox schemas live inside the document and the
 * validators are compiled from the document's own request-body schemas, once, at load time.
 * Strings, arrays and maps carry size limits (seed 000: "size limits on all request fields").
 */
import { Type, type TSchema } from "@sinclair/typebox";
import { TypeCompiler, type TypeCheck } from "@sinclair/typebox/compiler";

export const MAX_BODY_BYTES = 10 * 1024 * 1024;
const TEXT = 2_000_000; // characters in one prompt field
const Name = Type.String({ minLength: 1, maxLength: 256 });
const Text = Type.String({ maxLength: TEXT });
const StopSeq = Type.Union([Type.String({ maxLength: 1024 }), Type.Array(Type.String({ maxLength: 1024 }), { maxItems: 4 })]);
const Json = Type.Unknown();

const ContentPart = Type.Object({
  type: Type.String({ maxLength: 64 }),
  text: Type.Optional(Text),
  image_url: Type.Optional(Type.Object({ url: Type.String({ maxLength: TEXT }), detail: Type.Optional(Type.String({ maxLength: 16 })) })),
  input_audio: Type.Optional(Type.Object({ data: Type.String({ maxLength: TEXT }), format: Type.String({ maxLength: 16 }) })),
});

const Message = Type.Object({
  role: Type.Union(["system", "developer", "user", "assistant", "tool", "function"].map((r) => Type.Literal(r))),
  content: Type.Optional(Type.Union([Text, Type.Array(ContentPart, { maxItems: 256 }), Type.Null()])),
  name: Type.Optional(Name),
  tool_call_id: Type.Optional(Type.String({ maxLength: 256 })),
  tool_calls: Type.Optional(Type.Array(Type.Object({
    id: Type.String({ maxLength: 256 }),
    type: Type.String({ maxLength: 32 }),
    function: Type.Object({ name: Name, arguments: Type.String({ maxLength: TEXT }) }),
  }), { maxItems: 128 })),
  refusal: Type.Optional(Type.Union([Type.String({ maxLength: TEXT }), Type.Null()])),
}, { additionalProperties: false });

const Sampling = {
  model: Name,
  max_tokens: Type.Optional(Type.Union([Type.Integer({ minimum: 1, maximum: 1_048_576 }), Type.Null()])),
  temperature: Type.Optional(Type.Union([Type.Number({ minimum: 0, maximum: 2 }), Type.Null()])),
  top_p: Type.Optional(Type.Union([Type.Number({ minimum: 0, maximum: 1 }), Type.Null()])),
  n: Type.Optional(Type.Union([Type.Integer({ minimum: 1, maximum: 16 }), Type.Null()])),
  stream: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
  stream_options: Type.Optional(Type.Union([Type.Object({ include_usage: Type.Optional(Type.Boolean()) }, { additionalProperties: false }), Type.Null()])),
  stop: Type.Optional(Type.Union([StopSeq, Type.Null()])),
  presence_penalty: Type.Optional(Type.Union([Type.Number({ minimum: -2, maximum: 2 }), Type.Null()])),
  frequency_penalty: Type.Optional(Type.Union([Type.Number({ minimum: -2, maximum: 2 }), Type.Null()])),
  logit_bias: Type.Optional(Type.Union([Type.Record(Type.String({ maxLength: 16 }), Type.Number({ minimum: -100, maximum: 100 }), { maxProperties: 1024 }), Type.Null()])),
  seed: Type.Optional(Type.Union([Type.Integer(), Type.Null()])),
  user: Type.Optional(Type.String({ maxLength: 256 })),
  logprobs: Type.Optional(Type.Union([Type.Boolean(), Type.Integer({ minimum: 0, maximum: 20 }), Type.Null()])),
  // vLLM sampling extensions
  top_k: Type.Optional(Type.Integer({ minimum: -1, maximum: 100_000 })),
  min_p: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
  repetition_penalty: Type.Optional(Type.Number({ minimum: 0, maximum: 10 })),
};

export const ChatCompletionRequest = Type.Object({
  ...Sampling,
  messages: Type.Array(Message, { minItems: 1, maxItems: 4096 }),
  max_completion_tokens: Type.Optional(Type.Union([Type.Integer({ minimum: 1, maximum: 1_048_576 }), Type.Null()])),
  top_logprobs: Type.Optional(Type.Union([Type.Integer({ minimum: 0, maximum: 20 }), Type.Null()])),
  tools: Type.Optional(Type.Array(Type.Object({ type: Type.String({ maxLength: 32 }), function: Type.Object({ name: Name, description: Type.Optional(Type.String({ maxLength: 8192 })), parameters: Type.Optional(Json), strict: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])) }) }), { maxItems: 128 })),
  tool_choice: Type.Optional(Type.Union([Type.String({ maxLength: 32 }), Type.Object({ type: Type.String({ maxLength: 32 }), function: Type.Optional(Type.Object({ name: Name })) })])),
  parallel_tool_calls: Type.Optional(Type.Boolean()),
  response_format: Type.Optional(Type.Object({ type: Type.String({ maxLength: 32 }), json_schema: Type.Optional(Json) })),
  reasoning_effort: Type.Optional(Type.Union([Type.String({ maxLength: 16 }), Type.Null()])),
  metadata: Type.Optional(Type.Union([Type.Record(Type.String({ maxLength: 64 }), Type.String({ maxLength: 512 }), { maxProperties: 16 }), Type.Null()])),
  store: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
}, { additionalProperties: false, $id: "ChatCompletionRequest" });

export const CompletionRequest = Type.Object({
  ...Sampling,
  prompt: Type.Union([Text, Type.Array(Text, { minItems: 1, maxItems: 2048 }), Type.Array(Type.Integer({ minimum: 0 }), { maxItems: 1_048_576 })]),
  echo: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
  best_of: Type.Optional(Type.Union([Type.Integer({ minimum: 1, maximum: 16 }), Type.Null()])),
  suffix: Type.Optional(Type.Union([Type.String({ maxLength: TEXT }), Type.Null()])),
}, { additionalProperties: false, $id: "CompletionRequest" });

export const EmbeddingRequest = Type.Object({
  model: Name,
  input: Type.Union([Text, Type.Array(Text, { minItems: 1, maxItems: 2048 }), Type.Array(Type.Integer({ minimum: 0 }), { maxItems: 1_048_576 }), Type.Array(Type.Array(Type.Integer({ minimum: 0 }), { maxItems: 65_536 }), { maxItems: 2048 })]),
  encoding_format: Type.Optional(Type.Union([Type.Literal("float"), Type.Literal("base64")])),
  dimensions: Type.Optional(Type.Integer({ minimum: 1, maximum: 65_536 })),
  user: Type.Optional(Type.String({ maxLength: 256 })),
}, { additionalProperties: false, $id: "EmbeddingRequest" });

const ErrorBody = Type.Object({
  error: Type.Object({ message: Type.String(), type: Type.String(), param: Type.Null(), code: Type.String(), request_id: Type.String() }),
}, { $id: "Error" });

const ModelList = Type.Object({
  object: Type.Literal("list"),
  data: Type.Array(Type.Object({ id: Type.String(), object: Type.Literal("model"), created: Type.Integer(), owned_by: Type.String() })),
}, { $id: "ModelList" });

const UsageQuery = [
  { name: "tenant", in: "query", schema: { type: "string", maxLength: 253 } },
  { name: "environment", in: "query", schema: { type: "string", maxLength: 507 }, description: "`namespace/name`" },
  { name: "keyPrefix", in: "query", schema: { type: "string", pattern: "^clsk_(live|test)_[0-9a-f]{8}$" } },
  { name: "from", in: "query", schema: { type: "string", format: "date-time" } },
  { name: "to", in: "query", schema: { type: "string", format: "date-time" } },
  { name: "limit", in: "query", schema: { type: "integer", minimum: 1, maximum: 10_000 } },
];

const rateHeaders = {
  "X-RateLimit-Limit": { schema: { type: "integer" }, description: "Requests per minute of the tightest layer" },
  "X-RateLimit-Remaining": { schema: { type: "integer" } },
  "X-RateLimit-Reset": { schema: { type: "integer" }, description: "Unix time (s) when that layer is full again" },
  "X-Request-Id": { schema: { type: "string" } },
};
const errors = Object.fromEntries(["400", "401", "403", "404", "413", "415", "429", "502", "503", "504"].map((s) => [s, {
  description: "OpenAI-compatible error", headers: rateHeaders, content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
}]));
const inference = (summary: string, schema: TSchema, id: string) => ({
  post: {
    operationId: id, summary, security: [{ bearer: [] }],
    requestBody: { required: true, content: { "application/json": { schema } } },
    responses: { "200": { description: "As the backend answered (JSON, or text/event-stream when `stream` is true)", headers: rateHeaders }, ...errors },
  },
});

export const openApiDocument = {
  openapi: "3.1.0",
  info: { title: "CrossLogic inference gateway", version: "1.0.0", description: "OpenAI-compatible public API (PORT) and internal admin API (ADMIN_PORT)." },
  jsonSchemaDialect: "https://json-schema.org/draft/2020-12/schema",
  components: {
    securitySchemes: {
      bearer: { type: "http", scheme: "bearer", description: "`clsk_live_…` or `clsk_test_…` API key" },
      adminToken: { type: "apiKey", in: "header", name: "X-Admin-Token" },
    },
    schemas: { ChatCompletionRequest, CompletionRequest, EmbeddingRequest, Error: ErrorBody, ModelList },
  },
  paths: {
    "/v1/chat/completions": inference("Chat completion (SSE when stream=true)", ChatCompletionRequest, "createChatCompletion"),
    "/v1/completions": inference("Text completion (SSE when stream=true)", CompletionRequest, "createCompletion"),
    "/v1/embeddings": inference("Embeddings", EmbeddingRequest, "createEmbedding"),
    "/v1/models": { get: { operationId: "listModels", security: [{ bearer: [] }], responses: { "200": { description: "Models the key may use", headers: rateHeaders, content: { "application/json": { schema: { $ref: "#/components/schemas/ModelList" } } } }, ...errors } } },
    "/admin/usage": { get: { operationId: "queryUsage", "x-port": "ADMIN_PORT", security: [{ adminToken: [] }], parameters: UsageQuery, responses: { "200": { description: "Usage records" }, "401": { description: "Bad token" } } } },
    "/admin/audit": { get: { operationId: "queryAudit", "x-port": "ADMIN_PORT", security: [{ adminToken: [] }], parameters: [...UsageQuery.slice(0, 1), { name: "action", in: "query", schema: { type: "string", maxLength: 64 } }, ...UsageQuery.slice(3)], responses: { "200": { description: "Audit events" }, "401": { description: "Bad token" } } } },
    "/metrics": { get: { operationId: "metrics", "x-port": "ADMIN_PORT", responses: { "200": { description: "Prometheus text format" } } } },
  },
} as const;

/** The public inference endpoints, in one table (validator compiled from the document, class). */
export type EndpointClass = "generation" | "embedding" | "models";
export interface Endpoint {
  readonly path: string;
  readonly method: "GET" | "POST";
  readonly kind: EndpointClass;
  readonly validate: TypeCheck<TSchema> | undefined;
}

function compileBody(path: "/v1/chat/completions" | "/v1/completions" | "/v1/embeddings"): TypeCheck<TSchema> {
  return TypeCompiler.Compile(openApiDocument.paths[path].post.requestBody.content["application/json"].schema);
}

export const endpoints: ReadonlyMap<string, Endpoint> = new Map<string, Endpoint>([
  ["/v1/chat/completions", { path: "/v1/chat/completions", method: "POST", kind: "generation", validate: compileBody("/v1/chat/completions") }],
  ["/v1/completions", { path: "/v1/completions", method: "POST", kind: "generation", validate: compileBody("/v1/completions") }],
  ["/v1/embeddings", { path: "/v1/embeddings", method: "POST", kind: "embedding", validate: compileBody("/v1/embeddings") }],
  ["/v1/models", { path: "/v1/models", method: "GET", kind: "models", validate: undefined }],
]);

/** The first schema violation as a safe, short sentence (`/messages/0/role: Expected union value`). */
export function firstViolation(check: TypeCheck<TSchema>, value: unknown): string {
  const first = check.Errors(value).First();
  if (!first) return "";
  const path = first.path.length > 120 ? `${first.path.slice(0, 120)}…` : first.path;
  return `${path || "/"}: ${first.message}`;
}

/** Served once, as bytes. */
export const openApiJson = JSON.stringify(openApiDocument);

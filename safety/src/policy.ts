/**
 * The per-environment content-safety policy, as a TypeBox schema (the repo's one schema library)
 * so it can be added, optional, to the gateway-config document (`environment.contentSafety`) and
 * validated with the rest. Absent means `{ input: "off", output: "off" }`.
 */
import { Type, type Static } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";

const Mode = Type.Union([Type.Literal("off"), Type.Literal("monitor"), Type.Literal("block")]);

export const ContentSafetyPolicy = Type.Object({
  /** Screening of request bodies. */
  input: Mode,
  /** Filtering of completions (streamed and not). */
  output: Mode,
  /** Score at or above which content is flagged (monitor) or refused (block). Default 0.5. */
  threshold: Type.Optional(Type.Number({ minimum: 0.05, maximum: 1 })),
  /** Optional external classifier served from one of the environment's model routes. */
  classifier: Type.Optional(Type.Object({
    model: Type.String({ minLength: 1 }),
    timeoutMs: Type.Optional(Type.Integer({ minimum: 10, maximum: 10_000 })),
    fallback: Type.Optional(Type.Union([Type.Literal("rules"), Type.Literal("block")])),
    /** `always`, or only when the rules are unsure (score between 0.15 and the threshold). */
    when: Type.Optional(Type.Union([Type.Literal("always"), Type.Literal("uncertain")])),
  })),
}, { additionalProperties: false });

export type ContentSafetyPolicy = Static<typeof ContentSafetyPolicy>;

export const DEFAULT_POLICY: ContentSafetyPolicy = Object.freeze({ input: "off", output: "off" });

const compiled = TypeCompiler.Compile(ContentSafetyPolicy);

/** Validate a policy; every problem is listed. */
export function parsePolicy(value: unknown): { ok: true; policy: ContentSafetyPolicy } | { ok: false; errors: string[] } {
  if (value === undefined) return { ok: true, policy: DEFAULT_POLICY };
  if (compiled.Check(value)) return { ok: true, policy: value };
  return { ok: false, errors: [...compiled.Errors(value)].map((e) => `${e.path || "/"}: ${e.message}`) };
}

/** Whether the classifier should be consulted for a rule score under this policy. */
export function shouldConsultClassifier(policy: ContentSafetyPolicy, ruleScore: number): boolean {
  const c = policy.classifier;
  if (!c) return false;
  return (c.when ?? "uncertain") === "always" || (ruleScore >= 0.15 && ruleScore < (policy.threshold ?? 0.5));
}

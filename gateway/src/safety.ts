/**
 * Content safety in the gateway (issue 7; library `@crosslogic/safety`): per-environment policy
 * from the gateway config's `environment.contentSafety` (absent or `mode: off` → no work at all:
 * the policy lookup returns undefined and nothing else runs).
 *
 * - Input: the parsed request body is screened (jailbreaks, injection, harmful requests,
 *   obfuscations; URL and file-reference fields the model server would fetch are checked strictly
 *   — a metadata/private/loopback URL scores 0.95). At most SCREEN_MAX_CHARS characters per request
 *   are screened (the rest is skipped and a `screening_limit` verdict recorded): the cost is bounded.
 *   block → 400 `content_policy_violation`; monitor → allowed with `X-Content-Warning`.
 * - Classifier: when configured, a chat model on one of the environment's routes is consulted when
 *   the rules are unsure, with its timeout and fallback (rules | block) — after the limits have
 *   admitted the request (the rules run before them). Outcomes counted in
 *   `gateway_content_classifier_total{outcome}`.
 * - Output: completions are filtered (non-streamed: the whole body; streamed: the raw SSE bytes,
 *   streaming-aware) — see proxy.ts.
 * - Only verdicts (closed enums, rule ids, scores) are recorded: `content_flagged` audit events and
 *   `gateway_content_flags_total{direction,action,category}`; never text.
 */
import { request } from "undici";
import type { GatewayContentSafety } from "@crosslogic/crds";
import {
  modelRouteClassifier, screenRequest, screenWithClassifier, shouldConsultClassifier, type ClassifierOutcome, type ExternalClassifier, type ScreenResult, type Verdict,
} from "@crosslogic/safety";
import { extractUnits } from "@crosslogic/safety/input";
import type { AuditLog } from "./audit.ts";
import type { EnvironmentView } from "./config-store.ts";
import type { Backends } from "./upstream.ts";

/** Characters of a request screened at most (beyond: skipped, `screening_limit` verdict). */
export const SCREEN_MAX_CHARS = 32_768;
/** Characters sent to the classifier at most. */
const CLASSIFIER_MAX_CHARS = 8_192;

export interface SafetyPolicy {
  readonly input: "monitor" | "block";
  readonly output: "off" | "monitor" | "block";
  readonly normalize: boolean;
  readonly threshold: number;
  readonly classifier: GatewayContentSafety["classifier"];
  /** For the policy library's `shouldConsultClassifier`. */
  readonly lib: { input: "monitor" | "block"; output: "off" | "monitor" | "block"; threshold: number; classifier?: { model: string; timeoutMs?: number; fallback?: "rules" | "block" } };
}

const policies = new WeakMap<EnvironmentView, SafetyPolicy | null>();

/** The environment's policy, or undefined when content safety is off (the common case: one WeakMap lookup). */
export function policyOf(env: EnvironmentView): SafetyPolicy | undefined {
  let p = policies.get(env);
  if (p === undefined) {
    const c = env.doc.environment.contentSafety;
    if (!c || c.mode === "off") p = null;
    else {
      const threshold = c.threshold ?? 0.5;
      const output = c.outputFiltering ? c.mode : "off";
      p = {
        input: c.mode, output, normalize: c.normalizeOutput === true, threshold, classifier: c.classifier,
        lib: { input: c.mode, output, threshold, ...(c.classifier ? { classifier: { ...c.classifier } } : {}) },
      };
    }
    policies.set(env, p);
  }
  return p ?? undefined;
}

/** Verdicts as they may be recorded (the library's type has no text field; copied field by field anyway). */
export function recordable(verdicts: readonly Verdict[]): Array<Record<string, unknown>> {
  return verdicts.slice(0, 32).map((v) => ({ category: v.category, rule_id: v.ruleId, score: v.score, scope: v.scope, transform: v.transform, ...(v.index !== undefined ? { index: v.index } : {}) }));
}

export interface Flagger {
  flag(direction: "input" | "output", result: ScreenResult, ctx: { requestId: string; prefix: string | undefined; env: EnvironmentView; ip: string; endpoint: string; streamed?: boolean }): void;
}

export function createFlagger(audit: AuditLog, count: (direction: string, action: string, category: string) => void): Flagger {
  return {
    flag(direction, result, ctx) {
      const categories = [...new Set(result.verdicts.filter((v) => v.score > 0).map((v) => v.category))];
      for (const c of categories.length ? categories : ["none"]) count(direction, result.action, c);
      audit.write("content_flagged", {
        request_id: ctx.requestId, actor_id: ctx.prefix ?? null, tenant_id: ctx.env.doc.tenant.name, ip_address: ctx.ip,
        details: {
          direction, action: result.action, score: result.score, environment: ctx.env.id, endpoint: ctx.endpoint,
          ...(ctx.streamed !== undefined ? { streamed: ctx.streamed } : {}), verdicts: recordable(result.verdicts),
        },
      });
    },
  };
}

/**
 * A classifier backed by a chat model on one of the environment's routes, sent straight to the
 * backend: not through the limits, not metered, without the caller's headers. A route that is
 * missing (renamed, removed) or has no endpoint is an error, so the configured fallback applies.
 */
function routeClassifier(env: EnvironmentView, backends: Backends, model: string): ExternalClassifier {
  return modelRouteClassifier(model, async (body, signal) => {
    const route = env.routes.get(model);
    const backend = route ? backends.get(route) : undefined;
    const ep = backend?.pick();
    if (!backend || !ep) throw new Error("no classifier backend");
    const r = await request(`${ep.origin}${backend.basePath}/v1/chat/completions`, {
      method: "POST", dispatcher: ep.pool, signal, headers: { "content-type": "application/json" },
      body: JSON.stringify({ model, ...body }),
    });
    if (r.statusCode !== 200) { await r.body.dump(); throw new Error(`classifier answered ${r.statusCode}`); }
    const j = (await r.body.json()) as { choices?: Array<{ message?: { content?: unknown } }> };
    const text = j.choices?.[0]?.message?.content;
    if (typeof text !== "string") throw new Error("classifier reply without text");
    return text;
  });
}

/** The rules' verdict on a request body (synchronous; at most SCREEN_MAX_CHARS characters). */
export function screenRules(policy: SafetyPolicy, body: unknown): ScreenResult {
  return screenRequest(body, { mode: policy.input, threshold: policy.threshold, maxChars: SCREEN_MAX_CHARS, windowChars: SCREEN_MAX_CHARS });
}

/** Whether the classifier must still be asked: configured, and the rules are unsure (0.15 ≤ score < threshold). */
export function needsClassifier(policy: SafetyPolicy, rules: ScreenResult): boolean {
  return policy.classifier !== undefined && shouldConsultClassifier(policy.lib as Parameters<typeof shouldConsultClassifier>[0], rules.score);
}

/**
 * Asks the environment's classifier about a body the rules were unsure about and combines the
 * verdicts (never rejects: timeout, error, a missing route → the fallback). The gateway calls it
 * only once the request has been admitted by the limits, so a caller over its limits cannot make
 * the gateway call the classifier, and the call runs under the key's concurrency lease.
 * `outcome` is told how the call went (flagged | clean | timeout | error), for a metric.
 */
export function classifyInput(policy: SafetyPolicy, env: EnvironmentView, backends: Backends, body: unknown, rules: ScreenResult, outcome?: (o: ClassifierOutcome) => void): Promise<ScreenResult> {
  const c = policy.classifier!;
  let left = CLASSIFIER_MAX_CHARS;
  const texts: string[] = [];
  for (const u of extractUnits(body).units) {
    if (left <= 0) break;
    const t = u.text.slice(0, left);
    left -= t.length;
    texts.push(t);
  }
  return screenWithClassifier(rules, routeClassifier(env, backends, c.model), { direction: "input", texts }, {
    mode: policy.input, threshold: policy.threshold, timeoutMs: c.timeoutMs ?? 300, fallback: c.fallback ?? "rules", ...(outcome ? { onOutcome: outcome } : {}),
  });
}

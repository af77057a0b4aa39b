/**
 * Pricing plans and the limits they imply. A Tenant's `spec.plan` picks a row; explicit
 * `spec.limits` on a Tenant, Environment or ApiKey override it field by field. Per minute; 0 means
 * unlimited. The operator resolves these into the gateway config, so the gateway never sees plans.
 */
export const Plans = ["free", "pro", "enterprise"] as const;
export type Plan = (typeof Plans)[number];
export const DEFAULT_PLAN: Plan = "free";

export interface PlanLimits {
  tenant: { requestsPerMinute: number; tokensPerMinute: number };
  environment: { requestsPerMinute: number; tokensPerMinute: number };
  apiKey: { requestsPerMinute: number; tokensPerMinute: number; concurrency: number };
}

/** Tenant 50,000 requests/min, environment 10,000/min and key concurrency 10 are the security document's defaults. */
export const PLAN_LIMITS: Readonly<Record<Plan, Readonly<PlanLimits>>> = Object.freeze({
  free: { tenant: { requestsPerMinute: 50_000, tokensPerMinute: 0 }, environment: { requestsPerMinute: 10_000, tokensPerMinute: 0 }, apiKey: { requestsPerMinute: 600, tokensPerMinute: 0, concurrency: 10 } },
  pro: { tenant: { requestsPerMinute: 200_000, tokensPerMinute: 0 }, environment: { requestsPerMinute: 10_000, tokensPerMinute: 0 }, apiKey: { requestsPerMinute: 3_000, tokensPerMinute: 0, concurrency: 10 } },
  enterprise: { tenant: { requestsPerMinute: 1_000_000, tokensPerMinute: 0 }, environment: { requestsPerMinute: 10_000, tokensPerMinute: 0 }, apiKey: { requestsPerMinute: 0, tokensPerMinute: 0, concurrency: 10 } },
});

export function planLimits(plan: string | undefined): Readonly<PlanLimits> {
  return PLAN_LIMITS[(Plans as readonly string[]).includes(plan ?? "") ? (plan as Plan) : DEFAULT_PLAN];
}

export const DEFAULT_ENVIRONMENT_REQUESTS_PER_MINUTE = 10_000;
export const DEFAULT_KEY_CONCURRENCY = 10;

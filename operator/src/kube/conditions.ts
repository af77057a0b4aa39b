/**
 * Status conditions (metav1.Condition). A condition keeps its lastTransitionTime while its status
 * does not change, so recomputing the same status yields an identical object and no write.
 */
export interface Condition {
  type: string;
  status: "True" | "False" | "Unknown";
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime: string;
}

export type ConditionInput = Omit<Condition, "lastTransitionTime" | "observedGeneration">;

/** Merges wanted conditions into the existing list: transition times kept unless the status flips. */
export function mergeConditions(existing: Condition[] | undefined, wanted: ConditionInput[], generation: number | undefined, now: Date): Condition[] {
  return wanted.map((w) => {
    const prev = existing?.find((c) => c.type === w.type);
    const lastTransitionTime = prev && prev.status === w.status ? prev.lastTransitionTime : now.toISOString().replace(/\.\d{3}Z$/, "Z");
    return { ...w, ...(generation === undefined ? {} : { observedGeneration: generation }), lastTransitionTime };
  });
}

/** Ready is True when every other condition is True; otherwise it carries the first failure. */
export function readyCondition(conditions: ConditionInput[], okMessage: string): ConditionInput {
  const failed = conditions.find((c) => c.status !== "True");
  if (failed) return { type: "Ready", status: failed.status, reason: failed.reason, message: failed.message };
  return { type: "Ready", status: "True", reason: "Reconciled", message: okMessage };
}

export function findCondition(conditions: Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

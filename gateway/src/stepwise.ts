/**
 * Long synchronous work split into steps (a generator that yields between them), so the event loop
 * keeps serving requests: `stepwise` runs one step per macrotask, `atOnce` all of them now.
 */
export const yieldTurn = (): Promise<void> => new Promise<void>((r) => setImmediate(r));

/** Runs a stepwise task one step per macrotask. */
export async function stepwise<R>(task: Generator<void, R>): Promise<R> {
  for (let s = task.next(); ; s = task.next()) {
    if (s.done) return s.value;
    await yieldTurn();
  }
}

/** Runs a stepwise task to the end now. */
export function atOnce<R>(task: Generator<void, R>): R {
  for (let s = task.next(); ; s = task.next()) if (s.done) return s.value;
}

/** A start-up failure with one clear, user-facing cause (no stack trace needed to understand it). */
export class StartError extends Error {
  override readonly name = "StartError";
}

/**
 * A `node --import` preload that shifts this process's wall clock (`Date.now()`, `new Date()`) by
 * CLOCK_SKEW_MS milliseconds: a replica whose clock is wrong. Monotonic time (performance.now) and
 * Redis TIME are untouched.
 */
const skew = Number(process.env.CLOCK_SKEW_MS ?? "0");
const RealDate = Date;
const realNow = RealDate.now.bind(RealDate);

class SkewedDate extends RealDate {
  constructor(...args: unknown[]) {
    if (args.length === 0) super(realNow() + skew);
    else super(...(args as [string]));
  }
}
Object.defineProperty(SkewedDate, "now", { value: () => realNow() + skew, writable: true, configurable: true });
(globalThis as { Date: DateConstructor }).Date = SkewedDate as unknown as DateConstructor;

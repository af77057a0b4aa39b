/**
 * Event-loop stall probe, preloaded into a process under test (`node --import
 * ./bench/gateway/stall-probe.ts …`, spawned with an IPC channel). It keeps Node's
 * monitorEventLoopDelay at a 1 ms resolution and answers the parent's messages:
 *   "stall:reset" → clears the histogram, replies { type: "stall:reset" }
 *   "stall:read"  → replies { type: "stall", maxMs, p99Ms, count }
 *
 * monitorEventLoopDelay records the time between consecutive ticks of a timer of period
 * `resolution`, not the delay beyond it: an idle loop records ~resolution, and a block of s ms
 * records between s and s + resolution. So the longest stall lies in [max − resolution, max];
 * `maxMs` is max − resolution (a lower bound within 1 ms). prom-client's
 * nodejs_eventloop_lag_max_seconds uses a 10 ms resolution and reports the raw max: an idle
 * gateway shows ~10 ms there, and a 12 ms reading means a stall of 2–12 ms.
 *
 * With STALL_TRACE_MS=n, every gap longer than n ms is also written to stderr with its time
 * (performance.now() of the probe's process), to line stalls up with --trace-gc output.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";

const RESOLUTION_MS = 1;
const histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
histogram.enable();

const traceMs = Number(process.env.STALL_TRACE_MS ?? 0);
if (traceMs > 0) {
  let last = performance.now();
  const tick = () => {
    const now = performance.now();
    if (now - last - RESOLUTION_MS > traceMs) process.stderr.write(`${JSON.stringify({ probe: "stall", at: +now.toFixed(1), ms: +(now - last - RESOLUTION_MS).toFixed(1) })}\n`);
    last = now;
    setTimeout(tick, RESOLUTION_MS).unref();
  };
  setTimeout(tick, RESOLUTION_MS).unref();
}

if (process.send) {
  process.on("message", (m) => {
    if (m === "stall:reset") {
      histogram.reset();
      process.send!({ type: "stall:reset" });
    } else if (m === "stall:read") {
      const ms = (ns: number) => +Math.max(0, ns / 1e6 - RESOLUTION_MS).toFixed(1);
      process.send!({ type: "stall", maxMs: ms(histogram.max), p99Ms: ms(histogram.percentile(99)), count: histogram.count });
    }
  });
  process.channel?.unref();
}

/**
 * Counters and histograms for the request path: a child per label set is created once and cached
 * by the caller, and counting is a field increment (prom-client hashes the label object on every
 * `inc`/`observe`). They render through a prom-client registry like any other metric.
 */
import type client from "prom-client";

interface Sample { metricName?: string; labels: Record<string, string | number>; value: number }

export class CounterChild {
  value = 0;
  readonly labels: Readonly<Record<string, string>>;
  constructor(labels: Record<string, string>) { this.labels = labels; }
  inc(n = 1): void { this.value += n; }
}

export class HistogramChild {
  readonly labels: Readonly<Record<string, string>>;
  readonly counts: Float64Array;
  readonly bounds: readonly number[];
  sum = 0;
  count = 0;
  constructor(labels: Record<string, string>, bounds: readonly number[]) { this.labels = labels; this.bounds = bounds; this.counts = new Float64Array(bounds.length); }
  observe(v: number): void {
    this.sum += v;
    this.count++;
    const b = this.bounds;
    for (let i = 0; i < b.length; i++) if (v <= b[i]!) { this.counts[i]!++; return; }
  }
}

abstract class Family<C extends { labels: Readonly<Record<string, string>> }> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  readonly aggregator = "sum";
  protected readonly series = new Map<string, C>();
  constructor(name: string, help: string, labelNames: readonly string[], registry: client.Registry) {
    this.name = name; this.help = help; this.labelNames = labelNames;
    registry.registerMetric(this as unknown as client.Metric);
  }
  protected abstract make(labels: Record<string, string>): C;
  /** The child for these label values (cache it on the hot path). */
  labels(...values: string[]): C {
    const id = values.join("\u0000");
    let c = this.series.get(id);
    if (!c) {
      const labels: Record<string, string> = {};
      this.labelNames.forEach((n, i) => { labels[n] = values[i] ?? ""; });
      c = this.make(labels);
      this.series.set(id, c);
    }
    return c;
  }
  reset(): void { this.series.clear(); }
}

export class FastCounter extends Family<CounterChild> {
  readonly type = "counter";
  protected make(labels: Record<string, string>): CounterChild { return new CounterChild(labels); }
  get(): { name: string; help: string; type: string; aggregator: string; values: Sample[] } {
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: [...this.series.values()].map((c) => ({ labels: c.labels, value: c.value })) };
  }
}

export class FastHistogram extends Family<HistogramChild> {
  readonly type = "histogram";
  readonly bounds: readonly number[];
  constructor(name: string, help: string, labelNames: readonly string[], bounds: readonly number[], registry: client.Registry) {
    super(name, help, labelNames, registry);
    this.bounds = [...bounds].sort((a, b) => a - b);
  }
  protected make(labels: Record<string, string>): HistogramChild { return new HistogramChild(labels, this.bounds); }
  get(): { name: string; help: string; type: string; aggregator: string; values: Sample[] } {
    const values: Sample[] = [];
    for (const c of this.series.values()) {
      let acc = 0;
      this.bounds.forEach((le, i) => { acc += c.counts[i]!; values.push({ metricName: `${this.name}_bucket`, labels: { ...c.labels, le }, value: acc }); });
      values.push({ metricName: `${this.name}_bucket`, labels: { ...c.labels, le: "+Inf" }, value: c.count });
      values.push({ metricName: `${this.name}_sum`, labels: c.labels, value: c.sum });
      values.push({ metricName: `${this.name}_count`, labels: c.labels, value: c.count });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

/**
 * A small metrics registry: counters, gauges and histograms, optionally labelled, rendered in the
 * Prometheus text exposition format (version 0.0.4) for a `/metrics` endpoint.
 *
 *   const m = new Metrics();
 *   m.counter("converge_messages_sent_total", "Messages sent");
 *   m.increment("converge_messages_sent_total", { agent: "ab12" });
 *   m.set("converge_inbox_size", 3);           // an undeclared name becomes a gauge on `set`
 *   m.histogram("converge_task_duration_seconds", "Claim to finish", [0.1, 1, 10]);
 *   m.observe("converge_task_duration_seconds", 0.42, { outcome: "completed" });
 *   m.render();                                 // "# HELP ...\n# TYPE ...\n..."
 *
 * `increment` on an undeclared name declares a counter, `set` a gauge (help text = the name).
 * Counters only go up; gauges may be set, incremented or decremented. A histogram renders as
 * Prometheus expects: cumulative `_bucket{le="…"}` series ending with `le="+Inf"`, then `_sum` and
 * `_count`. Code that observes on a hot path keeps its own `Histogram` (one array increment per
 * observation) and adds it to a registry when scraped (`addHistogram`).
 *
 * Hand-written rather than prom-client: the registry is rebuilt from the runtime's own counters on
 * each scrape, and this is the whole of the format we need (about 250 lines, no dependency).
 */
import { ConvergeError } from "../core/errors.ts";

export type MetricType = "counter" | "gauge" | "histogram";
export type Labels = Readonly<Record<string, string | number | boolean>>;

/** The Content-Type of `render()`'s output. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** A misuse of the registry: bad name, type clash, counter going down. */
export class MetricsError extends ConvergeError {}

export interface MetricSnapshot {
  name: string;
  type: MetricType;
  help: string;
  /** For a histogram, `value` is its count, with `sum` and the cumulative `buckets` beside it. */
  series: {
    labels: Record<string, string>;
    value: number;
    sum?: number;
    buckets?: { le: number; count: number }[];
  }[];
}

/** Upper bounds (seconds) for durations from a millisecond to an hour: tasks, waits, requests. */
export const DURATION_BUCKETS: readonly number[] = Object.freeze([
  0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600,
]);

/**
 * Observations counted into buckets by upper bound (`le`), with their sum and count: what a
 * Prometheus histogram series holds. `counts[i]` counts values in (bounds[i-1], bounds[i]]; the
 * last one, values above every bound.
 */
export class Histogram {
  readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(readonly bounds: readonly number[] = DURATION_BUCKETS) {
    if (bounds.length === 0) throw new MetricsError("a histogram needs at least one bucket bound");
    for (let i = 0; i < bounds.length; i++) {
      if (!Number.isFinite(bounds[i]) || (i > 0 && bounds[i]! <= bounds[i - 1]!))
        throw new MetricsError(`histogram bucket bounds must be finite and increasing, got ${bounds.join(", ")}`);
    }
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  observe(value: number): void {
    if (Number.isNaN(value)) throw new MetricsError("a histogram cannot observe NaN");
    const b = this.bounds;
    let i = 0;
    while (i < b.length && value > b[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }

  /** Adds another histogram's observations (same bounds). */
  add(other: Histogram): void {
    if (!sameBounds(this.bounds, other.bounds))
      throw new MetricsError(`histogram bounds differ: ${this.bounds.join(",")} and ${other.bounds.join(",")}`);
    for (let i = 0; i < this.counts.length; i++) this.counts[i]! += other.counts[i]!;
    this.sum += other.sum;
    this.count += other.count;
  }
}

function sameBounds(a: readonly number[], b: readonly number[]): boolean {
  return a === b || (a.length === b.length && a.every((v, i) => v === b[i]));
}

interface Series {
  labels: [string, string][];
  value: number;
  histogram?: Histogram;
}

interface Metric {
  name: string;
  type: MetricType;
  help: string;
  series: Map<string, Series>;
  /** A histogram's bucket bounds. */
  bounds?: readonly number[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export class Metrics {
  readonly #metrics = new Map<string, Metric>();

  /** Declares a counter (idempotent for the same type). */
  counter(name: string, help?: string): this {
    this.#declare(name, "counter", help);
    return this;
  }

  /** Declares a gauge (idempotent for the same type). */
  gauge(name: string, help?: string): this {
    this.#declare(name, "gauge", help);
    return this;
  }

  /** Declares a histogram with these bucket upper bounds (default DURATION_BUCKETS, in seconds). */
  histogram(name: string, help?: string, bounds: readonly number[] = DURATION_BUCKETS): this {
    new Histogram(bounds); // checks them
    const m = this.#declare(name, "histogram", help);
    if (m.bounds && !sameBounds(m.bounds, bounds))
      throw new MetricsError(`histogram ${name} is already declared with other bucket bounds`);
    m.bounds = bounds;
    return this;
  }

  /** Counts one value into a declared histogram's series. */
  observe(name: string, value: number, labels?: Labels): void {
    if (Number.isNaN(value)) throw new MetricsError(`histogram ${name} cannot observe NaN`);
    this.#histogramSeries(name, labels).observe(value);
  }

  /** Adds what a Histogram kept elsewhere observed to a declared histogram's series. */
  addHistogram(name: string, from: Histogram, labels?: Labels): void {
    this.#histogramSeries(name, labels).add(from);
  }

  #histogramSeries(name: string, labels?: Labels): Histogram {
    const m = this.#metrics.get(name);
    if (m?.type !== "histogram")
      throw new MetricsError(`${name} is ${m ? `a ${m.type}` : "not declared"}; declare it with histogram() first`);
    if (labels && "le" in labels) throw new MetricsError(`histogram ${name}: the label "le" is reserved for buckets`);
    const s = this.#series(m, labels);
    s.histogram ??= new Histogram(m.bounds);
    return s.histogram;
  }

  /** Adds `by` (default 1); a counter only accepts `by >= 0`. */
  increment(name: string, labels?: Labels, by = 1): void {
    const m = this.#metrics.get(name) ?? this.#declare(name, "counter");
    if (m.type === "histogram") throw new MetricsError(`${name} is a histogram; use observe`);
    if (!Number.isFinite(by)) throw new MetricsError(`metric ${name}: increment must be a finite number, got ${by}`);
    if (m.type === "counter" && by < 0)
      throw new MetricsError(`counter ${name} cannot go down (increment by ${by}); use a gauge`);
    const s = this.#series(m, labels);
    s.value += by;
  }

  /** Subtracts `by` (default 1) from a gauge. */
  decrement(name: string, labels?: Labels, by = 1): void {
    const m = this.#metrics.get(name) ?? this.#declare(name, "gauge");
    if (m.type !== "gauge") throw new MetricsError(`${name} is a ${m.type}; only gauges can be decremented`);
    this.increment(name, labels, -by);
  }

  /** Sets a gauge's value. */
  set(name: string, value: number, labels?: Labels): void {
    const m = this.#metrics.get(name) ?? this.#declare(name, "gauge");
    if (m.type !== "gauge") throw new MetricsError(`${name} is a ${m.type}; only gauges can be set`);
    if (typeof value !== "number" || Number.isNaN(value))
      throw new MetricsError(`gauge ${name}: value must be a number, got ${String(value)}`);
    this.#series(m, labels).value = value;
  }

  /** The current value of one series (a histogram's: its count), or undefined when it has never been written. */
  get(name: string, labels?: Labels): number | undefined {
    const s = this.#metrics.get(name)?.series.get(seriesKey(normaliseLabels(name, labels)));
    return s?.histogram ? s.histogram.count : s?.value;
  }

  /** The type of a declared metric. */
  typeOf(name: string): MetricType | undefined {
    return this.#metrics.get(name)?.type;
  }

  /** Every metric as plain data (e.g. for a JSON health view), in declaration order. */
  snapshot(): MetricSnapshot[] {
    return [...this.#metrics.values()].map((m) => ({
      name: m.name,
      type: m.type,
      help: m.help,
      series: [...m.series.values()].map((s) => {
        const labels = Object.fromEntries(s.labels);
        const h = s.histogram;
        if (!h) return { labels, value: s.value };
        let below = 0;
        const buckets = [...h.bounds, Infinity].map((le, i) => ({ le, count: (below += h.counts[i]!) }));
        return { labels, value: h.count, sum: h.sum, buckets };
      }),
    }));
  }

  /** Every metric in the Prometheus text exposition format, in declaration order; ends with a newline. */
  render(): string {
    const lines: string[] = [];
    for (const m of this.#metrics.values()) {
      lines.push(`# HELP ${m.name} ${escapeHelp(m.help)}`, `# TYPE ${m.name} ${m.type}`);
      for (const s of m.series.values()) {
        const pairs = s.labels.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`);
        if (s.histogram) {
          renderHistogram(lines, m.name, pairs, s.histogram);
          continue;
        }
        lines.push(`${m.name}${pairs.length === 0 ? "" : `{${pairs.join(",")}}`} ${formatValue(s.value)}`);
      }
    }
    return lines.length === 0 ? "" : `${lines.join("\n")}\n`;
  }

  #declare(name: string, type: MetricType, help?: string): Metric {
    if (!METRIC_NAME.test(name))
      throw new MetricsError(`invalid metric name "${name}" (letters, digits, _ and :, not starting with a digit)`);
    const existing = this.#metrics.get(name);
    if (existing) {
      if (existing.type !== type) throw new MetricsError(`metric ${name} is already a ${existing.type}, not a ${type}`);
      if (help !== undefined) existing.help = help;
      return existing;
    }
    const m: Metric = { name, type, help: help ?? name, series: new Map() };
    this.#metrics.set(name, m);
    return m;
  }

  #series(m: Metric, labels?: Labels): Series {
    const normal = normaliseLabels(m.name, labels);
    const key = seriesKey(normal);
    let s = m.series.get(key);
    if (!s) m.series.set(key, (s = { labels: normal, value: 0 }));
    return s;
  }
}

/** Cumulative `_bucket` lines (`le` last, as Prometheus writes it), then `_sum` and `_count`. */
function renderHistogram(lines: string[], name: string, pairs: string[], h: Histogram): void {
  const prefix = pairs.length === 0 ? "" : `${pairs.join(",")},`;
  const plain = pairs.length === 0 ? "" : `{${pairs.join(",")}}`;
  let below = 0;
  for (let i = 0; i <= h.bounds.length; i++) {
    below += h.counts[i]!;
    const le = i < h.bounds.length ? formatValue(h.bounds[i]!) : "+Inf";
    lines.push(`${name}_bucket{${prefix}le="${le}"} ${below}`);
  }
  lines.push(`${name}_sum${plain} ${formatValue(h.sum)}`, `${name}_count${plain} ${h.count}`);
}

function normaliseLabels(metric: string, labels?: Labels): [string, string][] {
  if (!labels) return [];
  const out: [string, string][] = [];
  for (const [k, v] of Object.entries(labels)) {
    if (!LABEL_NAME.test(k) || k.startsWith("__"))
      throw new MetricsError(`metric ${metric}: invalid label name "${k}"`);
    out.push([k, String(v)]);
  }
  return out.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

function seriesKey(labels: [string, string][]): string {
  return JSON.stringify(labels);
}

/** Label values escape backslash, double quote and line feed. */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** HELP text escapes backslash and line feed. */
function escapeHelp(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function formatValue(v: number): string {
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  if (Number.isNaN(v)) return "NaN";
  return String(v);
}

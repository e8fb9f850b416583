/**
 * A small metrics registry: counters and gauges, optionally labelled, rendered in the Prometheus
 * text exposition format (version 0.0.4) for a `/metrics` endpoint.
 *
 *   const m = new Metrics();
 *   m.counter("converge_messages_sent_total", "Messages sent");
 *   m.increment("converge_messages_sent_total", { agent: "ab12" });
 *   m.set("converge_inbox_size", 3);           // an undeclared name becomes a gauge on `set`
 *   m.render();                                 // "# HELP ...\n# TYPE ...\n..."
 *
 * `increment` on an undeclared name declares a counter, `set` a gauge (help text = the name).
 * Counters only go up; gauges may be set, incremented or decremented.
 */
import { ConvergeError } from "../core/errors.ts";

export type MetricType = "counter" | "gauge";
export type Labels = Readonly<Record<string, string | number | boolean>>;

/** The Content-Type of `render()`'s output. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** A misuse of the registry: bad name, type clash, counter going down. */
export class MetricsError extends ConvergeError {}

export interface MetricSnapshot {
  name: string;
  type: MetricType;
  help: string;
  series: { labels: Record<string, string>; value: number }[];
}

interface Series {
  labels: [string, string][];
  value: number;
}

interface Metric {
  name: string;
  type: MetricType;
  help: string;
  series: Map<string, Series>;
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

  /** Adds `by` (default 1); a counter only accepts `by >= 0`. */
  increment(name: string, labels?: Labels, by = 1): void {
    const m = this.#metrics.get(name) ?? this.#declare(name, "counter");
    if (!Number.isFinite(by)) throw new MetricsError(`metric ${name}: increment must be a finite number, got ${by}`);
    if (m.type === "counter" && by < 0)
      throw new MetricsError(`counter ${name} cannot go down (increment by ${by}); use a gauge`);
    const s = this.#series(m, labels);
    s.value += by;
  }

  /** Subtracts `by` (default 1) from a gauge. */
  decrement(name: string, labels?: Labels, by = 1): void {
    const m = this.#metrics.get(name) ?? this.#declare(name, "gauge");
    if (m.type !== "gauge") throw new MetricsError(`${name} is a counter; only gauges can be decremented`);
    this.increment(name, labels, -by);
  }

  /** Sets a gauge's value. */
  set(name: string, value: number, labels?: Labels): void {
    const m = this.#metrics.get(name) ?? this.#declare(name, "gauge");
    if (m.type !== "gauge") throw new MetricsError(`${name} is a counter; only gauges can be set`);
    if (typeof value !== "number" || Number.isNaN(value))
      throw new MetricsError(`gauge ${name}: value must be a number, got ${String(value)}`);
    this.#series(m, labels).value = value;
  }

  /** The current value of one series, or undefined when it has never been written. */
  get(name: string, labels?: Labels): number | undefined {
    const m = this.#metrics.get(name);
    return m?.series.get(seriesKey(normaliseLabels(name, labels)))?.value;
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
      series: [...m.series.values()].map((s) => ({ labels: Object.fromEntries(s.labels), value: s.value })),
    }));
  }

  /** Every metric in the Prometheus text exposition format, in declaration order; ends with a newline. */
  render(): string {
    const lines: string[] = [];
    for (const m of this.#metrics.values()) {
      lines.push(`# HELP ${m.name} ${escapeHelp(m.help)}`, `# TYPE ${m.name} ${m.type}`);
      for (const s of m.series.values()) {
        const labels =
          s.labels.length === 0 ? "" : `{${s.labels.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(",")}}`;
        lines.push(`${m.name}${labels} ${formatValue(s.value)}`);
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

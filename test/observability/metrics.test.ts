import { describe, expect, test } from "bun:test";
import {
  Histogram,
  Metrics,
  MetricsError,
  PROMETHEUS_CONTENT_TYPE,
  escapeLabelValue,
} from "../../src/observability/metrics.ts";

describe("Metrics", () => {
  test("counters count per label set and get reads each series", () => {
    const m = new Metrics().counter("sent_total", "Messages sent");
    m.increment("sent_total", { agent: "a" });
    m.increment("sent_total", { agent: "a" }, 2);
    m.increment("sent_total", { agent: "b" });
    expect(m.get("sent_total", { agent: "a" })).toBe(3);
    expect(m.get("sent_total", { agent: "b" })).toBe(1);
    expect(m.get("sent_total", { agent: "c" })).toBeUndefined();
    expect(m.get("sent_total")).toBeUndefined();
  });

  test("label order does not matter: the same labels are the same series", () => {
    const m = new Metrics();
    m.increment("x_total", { a: "1", b: "2" });
    m.increment("x_total", { b: "2", a: "1" });
    expect(m.get("x_total", { b: 2, a: 1 })).toBe(2);
  });

  test("counters cannot go down", () => {
    const m = new Metrics();
    m.increment("c_total");
    expect(() => m.increment("c_total", undefined, -1)).toThrow(MetricsError);
    expect(() => m.decrement("c_total")).toThrow(/only gauges/);
    expect(m.get("c_total")).toBe(1);
  });

  test("gauges can be set, incremented and decremented", () => {
    const m = new Metrics().gauge("inbox", "Inbox size");
    m.set("inbox", 5);
    m.increment("inbox");
    m.decrement("inbox", undefined, 3);
    expect(m.get("inbox")).toBe(3);
  });

  test("an undeclared name becomes a counter on increment and a gauge on set; types cannot clash", () => {
    const m = new Metrics();
    m.increment("a_total");
    m.set("b", 1);
    expect(m.typeOf("a_total")).toBe("counter");
    expect(m.typeOf("b")).toBe("gauge");
    expect(() => m.set("a_total", 2)).toThrow(/only gauges can be set/);
    expect(() => m.counter("b")).toThrow(/already a gauge/);
  });

  test("invalid metric and label names are refused", () => {
    const m = new Metrics();
    expect(() => m.increment("1bad")).toThrow(MetricsError);
    expect(() => m.increment("has-dash")).toThrow(MetricsError);
    expect(() => m.increment("ok_total", { "bad-label": "x" })).toThrow(/invalid label name/);
    expect(() => m.increment("ok_total", { __reserved: "x" })).toThrow(/invalid label name/);
  });

  test("render writes HELP and TYPE lines and one sample per series", () => {
    const m = new Metrics();
    m.counter("converge_messages_sent_total", "Messages sent by agents.");
    m.increment("converge_messages_sent_total", { agent: "a1", transport: "tcp" }, 4);
    m.gauge("converge_inbox_size", "Messages waiting.");
    m.set("converge_inbox_size", 2.5);
    expect(m.render()).toBe(
      [
        "# HELP converge_messages_sent_total Messages sent by agents.",
        "# TYPE converge_messages_sent_total counter",
        'converge_messages_sent_total{agent="a1",transport="tcp"} 4',
        "# HELP converge_inbox_size Messages waiting.",
        "# TYPE converge_inbox_size gauge",
        "converge_inbox_size 2.5",
        "",
      ].join("\n"),
    );
  });

  test("render escapes backslash, double quote and newline in label values, and backslash and newline in help", () => {
    const m = new Metrics().counter("e_total", "line one\nback\\slash");
    m.increment("e_total", { path: 'C:\\dir "x"\nnext' });
    const out = m.render();
    expect(out).toContain("# HELP e_total line one\\nback\\\\slash\n");
    expect(out).toContain('e_total{path="C:\\\\dir \\"x\\"\\nnext"} 1\n');
    expect(out.split("\n").filter((l) => l !== "")).toHaveLength(3);
  });

  test("escapeLabelValue leaves plain text alone", () => {
    expect(escapeLabelValue("plain value")).toBe("plain value");
  });

  test("infinite gauge values render as +Inf and -Inf; an empty registry renders nothing", () => {
    const m = new Metrics();
    expect(m.render()).toBe("");
    m.set("g", Infinity, { s: "p" });
    m.set("g", -Infinity, { s: "n" });
    expect(m.render()).toContain('g{s="p"} +Inf\ng{s="n"} -Inf\n');
  });

  test("snapshot gives every metric and series as plain data", () => {
    const m = new Metrics().counter("a_total", "A");
    m.increment("a_total", { k: "v" }, 3);
    m.set("g", 7);
    expect(m.snapshot()).toEqual([
      { name: "a_total", type: "counter", help: "A", series: [{ labels: { k: "v" }, value: 3 }] },
      { name: "g", type: "gauge", help: "g", series: [{ labels: {}, value: 7 }] },
    ]);
  });

  test("the content type is the Prometheus text format 0.0.4", () => {
    expect(PROMETHEUS_CONTENT_TYPE).toBe("text/plain; version=0.0.4; charset=utf-8");
  });
});

describe("histograms", () => {
  test("a histogram renders cumulative _bucket series with le last and +Inf at the end, then _sum and _count", () => {
    const m = new Metrics().histogram("d_seconds", "Durations", [0.1, 1, 10]);
    for (const v of [0.05, 0.1, 0.5, 3, 42]) m.observe("d_seconds", v, { cap: "x" });
    m.observe("d_seconds", 2);
    expect(m.render()).toBe(
      [
        "# HELP d_seconds Durations",
        "# TYPE d_seconds histogram",
        'd_seconds_bucket{cap="x",le="0.1"} 2',
        'd_seconds_bucket{cap="x",le="1"} 3',
        'd_seconds_bucket{cap="x",le="10"} 4',
        'd_seconds_bucket{cap="x",le="+Inf"} 5',
        'd_seconds_sum{cap="x"} 45.65',
        'd_seconds_count{cap="x"} 5',
        'd_seconds_bucket{le="0.1"} 0',
        'd_seconds_bucket{le="1"} 0',
        'd_seconds_bucket{le="10"} 1',
        'd_seconds_bucket{le="+Inf"} 1',
        "d_seconds_sum 2",
        "d_seconds_count 1",
        "",
      ].join("\n"),
    );
    expect(m.get("d_seconds", { cap: "x" })).toBe(5);
  });

  test("a Histogram kept elsewhere adds into a registry's series, and two of them add up", () => {
    const a = new Histogram([1, 2]);
    const b = new Histogram([1, 2]);
    a.observe(0.5);
    b.observe(1.5);
    b.observe(9);
    const m = new Metrics().histogram("h", "H", [1, 2]);
    m.addHistogram("h", a, { w: "1" });
    m.addHistogram("h", b, { w: "1" });
    expect(m.snapshot()).toEqual([
      {
        name: "h",
        type: "histogram",
        help: "H",
        series: [
          {
            labels: { w: "1" },
            value: 3,
            sum: 11,
            buckets: [
              { le: 1, count: 1 },
              { le: 2, count: 2 },
              { le: Infinity, count: 3 },
            ],
          },
        ],
      },
    ]);
    expect(() => m.addHistogram("h", new Histogram([1, 3]))).toThrow(/bounds differ/);
  });

  test("histograms refuse NaN, the le label, undeclared names, bad bounds and other metric operations", () => {
    const m = new Metrics().histogram("h", "H", [1]);
    expect(() => m.observe("h", Number.NaN)).toThrow(MetricsError);
    expect(() => m.observe("h", 1, { le: "2" })).toThrow(/reserved/);
    expect(() => m.observe("nope", 1)).toThrow(/not declared/);
    expect(() => new Histogram([2, 1])).toThrow(/increasing/);
    expect(() => new Histogram([])).toThrow(/at least one/);
    expect(() => m.histogram("h", "H", [5])).toThrow(/other bucket bounds/);
    expect(() => m.increment("h")).toThrow(/histogram/);
    expect(() => m.set("h", 1)).toThrow(/only gauges/);
    expect(m.render()).toBe("# HELP h H\n# TYPE h histogram\n");
  });

  test("a value equal to a bound counts in that bound's bucket (le means less than or equal)", () => {
    const h = new Histogram([1, 2]);
    h.observe(1);
    h.observe(2);
    h.observe(2.0001);
    expect(h.counts).toEqual([1, 1, 1]);
  });
});

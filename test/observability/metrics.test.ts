import { describe, expect, test } from "bun:test";
import { Metrics, MetricsError, PROMETHEUS_CONTENT_TYPE, escapeLabelValue } from "../../src/observability/metrics.ts";

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

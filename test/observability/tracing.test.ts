import { afterEach, describe, expect, test } from "bun:test";
import { configureLogging, logger, logLevel, type Level, type LogSink } from "../../src/observability/log.ts";
import { startSpan, traced } from "../../src/observability/tracing.ts";

const original = { level: logLevel() };
let lines: string[] = [];
const sink: LogSink = { write: (l) => void lines.push(l) };
function capture(level: Level) {
  lines = [];
  configureLogging({ level, format: "json", sink });
}
afterEach(() =>
  configureLogging({ level: original.level, format: "text", sink: { write: (l) => process.stderr.write(l) } }),
);

describe("tracing", () => {
  test("a span reports its name, fields and duration at debug level, once", async () => {
    capture("debug");
    const span = startSpan(logger("t"), "decide", { agent: "a1" });
    await new Promise((r) => setTimeout(r, 5));
    const ms = span.end({ decisions: 2 });
    expect(span.end()).toBe(ms);
    expect(ms).toBeGreaterThanOrEqual(4);
    expect(lines).toHaveLength(1);
    const rec = JSON.parse(lines[0]!);
    expect(rec).toMatchObject({ level: "debug", logger: "t", msg: "span decide", agent: "a1", decisions: 2 });
    expect(rec.durationMs).toBeGreaterThanOrEqual(4);
  });

  test("spans are silent above debug level", () => {
    capture("info");
    startSpan(logger("t"), "quiet").end();
    expect(lines).toEqual([]);
  });

  test("traced returns the function's value and reports the span", async () => {
    capture("debug");
    expect(await traced(logger("t"), "work", async () => 42)).toBe(42);
    expect(JSON.parse(lines[0]!).msg).toBe("span work");
  });

  test("traced reports a thrown error on the span and rethrows it", async () => {
    capture("debug");
    await expect(
      traced(logger("t"), "boom", () => {
        throw new Error("bad input");
      }),
    ).rejects.toThrow("bad input");
    expect(JSON.parse(lines[0]!)).toMatchObject({ msg: "span boom", err: "bad input" });
  });
});

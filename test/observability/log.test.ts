import { afterEach, describe, expect, test } from "bun:test";
import { RateLimitedLog, configureLogging, logger } from "../../src/observability/log.ts";
import { captureLogs } from "../support/transport-util.ts";
import { until } from "../support/wait.ts";

let restore: (() => void) | undefined;
afterEach(() => {
  configureLogging({ format: "text" });
  restore?.();
  restore = undefined;
});

function capture(level: "debug" | "warn" = "debug"): string[] {
  const logs = captureLogs(level);
  restore = logs.restore;
  return logs.lines;
}

const forged = "x\n2026-12-01T00:00:00.000Z INFO  run: all good";

describe("text log lines", () => {
  test("when a field value or the message carries a newline, the entry is still one line, with it escaped", () => {
    const lines = capture();
    logger("t").warn(`closed ${forged}`, { remote: forged, nested: { k: forged } });
    expect(lines).toHaveLength(1);
    expect(lines[0]!.split("\n")).toEqual([expect.any(String), ""]);
    expect(lines[0]).toContain("closed x\\n2026-12-01T00:00:00.000Z INFO  run: all good");
    expect(lines[0]).toContain("remote=x\\n2026");
    expect(lines[0]).not.toContain("\u001b");
  });

  test("when a field value is long, it is cut and its length is said, so one entry stays a bounded line", () => {
    const lines = capture();
    logger("t").info("big", { value: "v".repeat(2_000_000) });
    expect(lines[0]!.length).toBeLessThan(1000);
    expect(lines[0]).toContain("… (2000000 chars)");
  });

  test("in JSON, control characters are escaped by JSON itself and long strings are cut too", () => {
    const lines = capture();
    configureLogging({ format: "json" });
    logger("t").info(forged, { value: "v".repeat(100_000) });
    expect(lines).toHaveLength(1);
    const entry = JSON.parse(lines[0]!);
    expect(entry.msg).toBe(forged);
    expect(entry.value.length).toBeLessThan(1000);
  });
});

describe("RateLimitedLog", () => {
  test("when a warning repeats, the first few are written and the rest become one line with their count", async () => {
    const lines = capture("warn");
    const limited = new RateLimitedLog(logger("t"), { windowMs: 200, burst: 2 });
    for (let i = 0; i < 1000; i++) limited.write(`bad connection ${i}`, { n: i });
    expect(lines.map((l) => l.replace(/^\S+ /, ""))).toEqual([
      "WARN  t: bad connection 0 n=0\n",
      "WARN  t: bad connection 1 n=1\n",
    ]);
    await until(() => lines.length === 3, "the count at the end of the window");
    expect(lines[2]).toMatch(/WARN {2}t: 998 more like this in the last 0\.2 s: bad connection 999 n=999\n$/);
    expect(limited.suppressed).toBe(998);
    // A new window writes again.
    limited.write("bad connection again");
    expect(lines.at(-1)).toContain("bad connection again");
  });

  test("flush writes the count at once (a listener that stops) and nothing when nothing was held back", () => {
    const lines = capture("warn");
    const limited = new RateLimitedLog(logger("t"), { windowMs: 60_000, burst: 1 });
    limited.flush();
    expect(lines).toEqual([]);
    limited.write("one");
    limited.write("two");
    limited.write("three");
    limited.flush();
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatch(/2 more like this in the last [\d.]+ s: three/);
  });

  test("below its level nothing is counted or written", () => {
    const lines = capture("warn");
    const limited = new RateLimitedLog(logger("t"), { level: "debug" });
    limited.write("quiet");
    limited.flush();
    expect({ lines, suppressed: limited.suppressed }).toEqual({ lines: [], suppressed: 0 });
  });
});

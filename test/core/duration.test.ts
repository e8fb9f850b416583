import { describe, expect, test } from "bun:test";
import { formatDuration, parseDuration } from "../../src/core/duration.ts";

describe("durations", () => {
  test("a number and a unit, or several in a row, are milliseconds", () => {
    expect(parseDuration("30s", "x")).toBe(30_000);
    expect(parseDuration("15m", "x")).toBe(900_000);
    expect(parseDuration("7d", "x")).toBe(7 * 86_400_000);
    expect(parseDuration("2w", "x")).toBe(14 * 86_400_000);
    expect(parseDuration("1h30m", "x")).toBe(5_400_000);
    expect(parseDuration("500ms", "x")).toBe(500);
    expect(parseDuration(" 1.5s ", "x")).toBe(1500);
  });

  test("a bare number is seconds only where seconds are the option's unit", () => {
    expect(parseDuration("90", "--timeout", { bareSeconds: true })).toBe(90_000);
    expect(parseDuration("0.5", "--delay", { bareSeconds: true })).toBe(500);
    expect(() => parseDuration("90", "--older-than")).toThrow(
      '--older-than must be a duration such as 30s, 15m, 2h or 7d, got "90"',
    );
  });

  test("anything else is refused with the accepted forms, its text escaped", () => {
    for (const bad of ["7 days", "1M", "-5s", "", "s", "5s5", "1y"])
      expect(() => parseDuration(bad, "--x")).toThrow(/--x must be a duration such as 30s/);
    expect(() => parseDuration("1\nx", "--x")).toThrow('got "1\\nx"');
    expect(() => parseDuration("40000w", "--x")).toThrow("--x may be at most 100 years");
  });

  test("formatting picks the largest whole unit", () => {
    expect([604_800_000, 86_400_000, 7_200_000, 90_000, 1500, 0, 60_000].map(formatDuration)).toEqual([
      "1w",
      "1d",
      "2h",
      "90s",
      "1.5s",
      "0ms",
      "1m",
    ]);
  });

  test("a formatted duration reads back as the same milliseconds", () => {
    for (const ms of [1, 999, 1500, 90_000, 5_400_000, 86_400_000, 604_800_000, 1_234_567])
      expect(parseDuration(formatDuration(ms), "x")).toBe(ms);
  });
});

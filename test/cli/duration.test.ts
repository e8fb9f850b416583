import { describe, expect, test } from "bun:test";
import { formatDuration, parseDuration } from "../../src/cli/duration.ts";
import { ConfigError } from "../../src/core/errors.ts";

describe("durations on the command line", () => {
  test("amounts of ms, s, m, h and d are read, alone or combined", () => {
    expect(parseDuration("500ms", "--every")).toBe(500);
    expect(parseDuration("30s", "--every")).toBe(30_000);
    expect(parseDuration("1h30m", "--every")).toBe(5_400_000);
    expect(parseDuration("1.5h", "--every")).toBe(5_400_000);
    expect(parseDuration(" 2d ", "--every")).toBe(172_800_000);
  });

  test("a number without a unit, an unknown unit or anything else is refused, naming the option", () => {
    for (const text of ["60", "5 m", "1w", "-1s", "s", "", "1s 2", `${"1".repeat(70)}s`]) {
      expect(() => parseDuration(text, "--every")).toThrow(ConfigError);
      expect(() => parseDuration(text, "--every")).toThrow(/^--every takes a duration such as 30s/);
    }
  });

  test("a duration is shown in the largest units that divide it, and reads back the same", () => {
    for (const [ms, text] of [
      [1000, "1s"],
      [90_000, "1m30s"],
      [1500, "1s500ms"],
      [86_400_000, "1d"],
    ] as const) {
      expect(formatDuration(ms)).toBe(text);
      expect(parseDuration(text, "--every")).toBe(ms);
    }
  });
});

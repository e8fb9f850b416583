import { describe, expect, test } from "bun:test";
import { initOf, parseTime, specOfLine } from "../../src/cli/task-spec.ts";

describe("task fields of tasks submit (options and JSON lines)", () => {
  test("a line's fields, with - or _, become the task; the options are defaults a line overrides", () => {
    const spec = specOfLine(
      { id: "a", inputs: { x: 1 }, capabilities: "gpu, ocr", priority: 3, "max-retries": 2, delay: "1m" },
      "f line 1",
    );
    const defaults = { pool: "p", capabilities: ["cpu"], constraints: { timeout_sec: 5, max_retries: 9 }, priority: 1 };
    expect(initOf(spec, defaults, 1_000)).toEqual({
      id: "a",
      objective: "",
      inputs: { x: 1 },
      poolId: "p",
      requiredCapabilities: ["gpu", "ocr"],
      constraints: { timeout_sec: 5, max_retries: 2 },
      priority: 3,
      notBefore: 61_000,
    });
    // The defaults' delay applies to a line without a time of its own; not_before is epoch ms or ISO 8601.
    expect(initOf(specOfLine({}, "l"), { delayMs: 5000 }, 1_000).notBefore).toBe(6_000);
    expect(initOf(specOfLine({ not_before: 42 }, "l"), { delayMs: 5000 }, 1_000).notBefore).toBe(42);
  });

  test("bad lines are refused naming the line and the field", () => {
    const cases: [unknown, string][] = [
      [[1], 'l: a line must be a JSON object such as {"inputs": {"x": 1}}'],
      [{ priority: 1.5 }, "l: priority must be an integer (higher runs first), got 1.5"],
      [{ capabilities: [1] }, 'l: capabilities must be a list of strings (or "a,b"), got [1]'],
      [{ inputs: [] }, "l: inputs must be a JSON object, got []"],
      [
        { delay: "soon" },
        'l: delay must be a duration such as 30s, 15m, 2h or 7d (or a number of seconds), got "soon"',
      ],
      [{ delay: 1, not_before: 2 }, "l: give delay or not_before, not both"],
      [{ max_retries: -1 }, "l: max_retries must be a whole number of at least 0, got -1"],
      [{ claim_ttl_sec: 0 }, "l: claim_ttl_sec must be greater than 0"],
      [{ id: null }, "l: id must not be null"],
      [{ "evil\nfield": 1 }, 'l: unknown field "evil\\nfield"; a line may hold objective, inputs, id, pool'],
    ];
    for (const [line, message] of cases) expect(() => specOfLine(line, "l")).toThrow(message);
  });

  test("times: ISO 8601 with a zone, UTC without one, or epoch milliseconds", () => {
    expect(parseTime("2030-01-02T03:04:05Z", "t")).toBe(Date.UTC(2030, 0, 2, 3, 4, 5));
    expect(parseTime("2030-01-02T03:04:05+02:00", "t")).toBe(Date.UTC(2030, 0, 2, 1, 4, 5));
    expect(parseTime("2030-01-02 03:04", "t")).toBe(Date.UTC(2030, 0, 2, 3, 4));
    expect(parseTime("2030-01-02", "t")).toBe(Date.UTC(2030, 0, 2));
    expect(parseTime("1900000000000", "t")).toBe(1_900_000_000_000);
    expect(() => parseTime("tomorrow", "--not-before")).toThrow(
      '--not-before must be an ISO 8601 time such as 2030-01-02T03:04:05Z, or epoch milliseconds; got "tomorrow"',
    );
  });
});

import { describe, expect, test } from "bun:test";
import { ConfigError } from "../../src/core/errors.ts";
import { checkTiming, nextAfter, planAt, type Timing } from "../../src/coordination/schedule-times.ts";

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
const at = (text: string) => Date.parse(text);

/** The first `n` due times after `from`, stepping with nextAfter. */
function runs(timing: Timing, from: string, n: number): string[] {
  const out: string[] = [];
  let t = at(from);
  for (let i = 0; i < n; i++) {
    t = nextAfter(timing, t)!;
    out.push(iso(t)!);
  }
  return out;
}

describe("due times", () => {
  test("an interval is due on its multiples since the epoch, strictly after the time given", () => {
    const every = { everyMs: 60_000 };
    expect(iso(nextAfter(every, at("2026-01-01T10:00:30.000Z")))).toBe("2026-01-01T10:01:00.000Z");
    expect(iso(nextAfter(every, at("2026-01-01T10:01:00.000Z")))).toBe("2026-01-01T10:02:00.000Z");
    expect(runs({ everyMs: 1000 }, "2026-01-01T00:00:00.400Z", 2)).toEqual([
      "2026-01-01T00:00:01.000Z",
      "2026-01-01T00:00:02.000Z",
    ]);
  });

  test("a cron expression keeps its wall time in its zone when the zone changes to summer time", () => {
    // New York moved to EDT (UTC-4) on 2025-03-09: 09:00 local is 14:00Z before, 13:00Z after.
    expect(runs({ cron: "0 9 * * *", timezone: "America/New_York" }, "2025-03-07T12:00:00Z", 4)).toEqual([
      "2025-03-07T14:00:00.000Z",
      "2025-03-08T14:00:00.000Z",
      "2025-03-09T13:00:00.000Z",
      "2025-03-10T13:00:00.000Z",
    ]);
  });

  test("a fixed-time run in a spring-forward gap runs at the end of the gap, and once in a repeated hour", () => {
    // Berlin: 2025-03-30 02:00 CET → 03:00 CEST (no 02:30); 2025-10-26 03:00 CEST → 02:00 CET (02:30 twice).
    const daily = { cron: "30 2 * * *", timezone: "Europe/Berlin" };
    expect(runs(daily, "2025-03-29T00:00:00Z", 3)).toEqual([
      "2025-03-29T01:30:00.000Z",
      "2025-03-30T01:00:00.000Z", // 03:00 CEST
      "2025-03-31T00:30:00.000Z",
    ]);
    expect(runs(daily, "2025-10-25T00:00:00Z", 3)).toEqual([
      "2025-10-25T00:30:00.000Z",
      "2025-10-26T00:30:00.000Z", // 02:30 CEST, not again at 02:30 CET
      "2025-10-27T01:30:00.000Z",
    ]);
  });

  test("an interval-like cron skips the gap and runs on both occurrences of a repeated hour", () => {
    const halfHourly = { cron: "*/30 * * * *", timezone: "Europe/Berlin" };
    // 01:30 CET, then 03:00 CEST: 02:00 and 02:30 do not exist that day.
    expect(runs(halfHourly, "2025-03-30T00:15:00Z", 2)).toEqual([
      "2025-03-30T00:30:00.000Z",
      "2025-03-30T01:00:00.000Z",
    ]);
    // 02:00 and 02:30 CEST, then 02:00 and 02:30 CET: four distinct instants.
    expect(runs(halfHourly, "2025-10-25T23:45:00Z", 4)).toEqual([
      "2025-10-26T00:00:00.000Z",
      "2025-10-26T00:30:00.000Z",
      "2025-10-26T01:00:00.000Z",
      "2025-10-26T01:30:00.000Z",
    ]);
  });
});

describe("what is due at a time", () => {
  const every = { everyMs: 60_000 };
  const t0 = at("2026-01-01T10:00:00.000Z");

  test("nothing is due before the next run, and a run is due at exactly its time", () => {
    expect(planAt(every, t0, t0 - 1, 0)).toEqual({ due: [], next: t0 });
    expect(planAt(every, t0, t0, 0)).toEqual({ due: [t0], next: t0 + 60_000 });
    const cron = { cron: "0 * * * * *", timezone: "UTC" };
    expect(planAt(cron, t0, t0, 0)).toEqual({ due: [t0], next: t0 + 60_000 });
  });

  test("after downtime only the latest due time is due, and earlier ones only as far as catch-up allows", () => {
    const now = t0 + 10 * 60_000 + 5000; // ten periods later
    expect(planAt(every, t0, now, 0).due.map(iso)).toEqual(["2026-01-01T10:10:00.000Z"]);
    expect(planAt(every, t0, now, 2).due.map(iso)).toEqual([
      "2026-01-01T10:08:00.000Z",
      "2026-01-01T10:09:00.000Z",
      "2026-01-01T10:10:00.000Z",
    ]);
    expect(planAt(every, t0, now, 0).next).toBe(t0 + 11 * 60_000);
    const cron = { cron: "* * * * *", timezone: "Europe/Berlin" };
    expect(planAt(cron, t0, now, 2)).toEqual(planAt(every, t0, now, 2));
  });

  test("catch-up never reaches back before the schedule's next run", () => {
    const now = t0 + 2 * 60_000;
    expect(planAt(every, t0, now, 100).due).toEqual([t0, t0 + 60_000, t0 + 120_000]);
    expect(planAt({ cron: "* * * * *", timezone: "UTC" }, t0, now, 100).due).toEqual([t0, t0 + 60_000, t0 + 120_000]);
  });

  test("after a year of downtime a plan holds the catch-up bound, not a year of runs", () => {
    const year = 365 * 86_400_000;
    expect(planAt({ everyMs: 1000 }, t0, t0 + year, 3).due.length).toBe(4);
    expect(planAt({ cron: "* * * * * *", timezone: "UTC" }, t0, t0 + year, 3).due.length).toBe(4);
  });
});

describe("checking a timing", () => {
  const now = at("2026-01-01T00:00:00Z");
  const bad = (t: Timing) => {
    try {
      checkTiming(t, now);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as Error).message;
    }
    throw new Error(`accepted ${JSON.stringify(t)}`);
  };

  test("well-formed cron expressions with and without seconds, and nicknames, are accepted", () => {
    for (const cron of ["0 9 * * 1-5", "*/5 * * * * *", "@daily", "0 0 0 1 1 * 2030"])
      expect(() => checkTiming({ cron, timezone: "Asia/Kolkata" }, now)).not.toThrow();
  });

  test("a malformed expression, a date, one that never fires and an unknown zone are refused, naming the problem", () => {
    expect(bad({ cron: "every day", timezone: "UTC" })).toMatch(/bad cron expression "every day"/);
    expect(bad({ cron: "61 * * * *", timezone: "UTC" })).toMatch(/bad cron expression/);
    expect(bad({ cron: "2027-01-01T00:00:00", timezone: "UTC" })).toMatch(/is a date, not a repeating/);
    expect(bad({ cron: "0 0 30 2 *", timezone: "UTC" })).toMatch(/never fires/);
    expect(bad({ cron: "0 0 0 1 1 * 2020", timezone: "UTC" })).toMatch(/never fires/);
    expect(bad({ cron: "* * * * *", timezone: "Mars/Olympus" })).toMatch(/unknown time zone "Mars\/Olympus"/);
    expect(bad({ cron: `* * * * *${" ".repeat(300)}`, timezone: "UTC" })).toMatch(/at most 256 characters/);
    expect(bad({ cron: "* * * * *\n", timezone: "UTC" })).toBe(
      'a cron expression must not contain control characters: "* * * * *\\n"',
    );
  });

  test("an interval shorter than a second, or not whole milliseconds, is refused", () => {
    expect(bad({ everyMs: 999 })).toMatch(/at least 1000/);
    expect(bad({ everyMs: 1500.5 })).toMatch(/whole milliseconds/);
  });
});

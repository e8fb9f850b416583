/**
 * When a schedule is due: a cron expression read in an IANA time zone (parsed and stepped by
 * croner, DST included), or a fixed interval aligned to the Unix epoch (every 1 h runs on the
 * hour in UTC, every 1 s on whole seconds), so that every process computes the same due times
 * from the same record, whatever its own zone or start time.
 *
 * croner's DST rules: a fixed-time pattern (single second, minute and hour, e.g. `30 2 * * *`)
 * whose local time falls in a spring-forward gap runs at the first valid time after the gap, and
 * once when a fall-back hour repeats; other patterns (`*\/30 * * * *`) skip the times in a gap and
 * run on both occurrences of a repeated time. Each due time is an instant, so each is distinct.
 */
import { Cron } from "croner";
import { ConfigError } from "../core/errors.ts";
import { printable, quoted } from "../core/text.ts";

/** How a schedule repeats: exactly one of the two. */
export type Timing = { cron: string; timezone: string } | { everyMs: number };

/** The shortest interval: below that, a schedule would mostly measure the store's round trips. */
const MIN_EVERY_MS = 1000;
/** The longest cron expression accepted (a real one is a few dozen characters). */
const MAX_CRON_LENGTH = 256;

const crons = new Map<string, Cron>();
/** Parsed patterns kept for reuse; a fleet has a handful, and the cap keeps hostile input bounded. */
const MAX_CACHED = 1000;

/** A parsed cron (never scheduled: croner only computes times here). */
function cronFor(pattern: string, timezone: string): Cron {
  const key = `${timezone}\u0000${pattern}`;
  let c = crons.get(key);
  if (!c) {
    c = new Cron(pattern, { timezone, paused: true });
    if (crons.size >= MAX_CACHED) crons.clear();
    crons.set(key, c);
  }
  return c;
}

/** The time zone of this process (a schedule added without one keeps it, so every process agrees). */
export function localTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

/** Throws ConfigError unless `zone` is an IANA time zone name this runtime knows (or UTC). */
function checkTimeZone(zone: string): void {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone });
  } catch {
    throw new ConfigError(`unknown time zone ${quoted(zone)}; use an IANA name such as Europe/Berlin or UTC`);
  }
}

/**
 * Throws ConfigError unless the timing is usable: a cron expression croner accepts (5 to 7 fields,
 * or a nickname such as @daily) that fires again after `now`, in a known zone; or an interval of
 * at least MIN_EVERY_MS whole milliseconds.
 */
export function checkTiming(t: Timing, now: number): void {
  if ("everyMs" in t) {
    if (!Number.isSafeInteger(t.everyMs) || t.everyMs < MIN_EVERY_MS)
      throw new ConfigError(`an interval must be whole milliseconds of at least ${MIN_EVERY_MS}, got ${t.everyMs}`);
    return;
  }
  if (typeof t.cron !== "string" || t.cron.trim() === "")
    throw new ConfigError("a cron expression must be a non-empty string, e.g. '0 9 * * *'");
  if (t.cron.length > MAX_CRON_LENGTH)
    throw new ConfigError(`a cron expression may be at most ${MAX_CRON_LENGTH} characters, got ${t.cron.length}`);
  if (CONTROL.test(t.cron))
    throw new ConfigError(`a cron expression must not contain control characters: ${quoted(t.cron)}`);
  checkTimeZone(t.timezone);
  let c: Cron;
  try {
    c = new Cron(t.cron, { timezone: t.timezone, paused: true });
  } catch (err) {
    throw new ConfigError(`bad cron expression ${quoted(t.cron)}: ${printable(cronMessage(err))}`);
  }
  if (c.getPattern() === undefined)
    throw new ConfigError(
      `${quoted(t.cron)} is a date, not a repeating cron expression; submit a delayed task instead`,
    );
  if (c.nextRun(new Date(now)) === null) throw new ConfigError(`the cron expression ${quoted(t.cron)} never fires`);
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** croner's messages start with the class that threw ("CronPattern: ..."): the rest is what users need. */
function cronMessage(err: unknown): string {
  return ((err as Error)?.message ?? String(err)).replace(/^Cron\w*:\s*/, "");
}

/** The first due time strictly after `t`, or null when a cron expression fires no more. */
export function nextAfter(timing: Timing, t: number): number | null {
  if ("everyMs" in timing) return (Math.floor(t / timing.everyMs) + 1) * timing.everyMs;
  return cronFor(timing.cron, timing.timezone).nextRun(new Date(t))?.getTime() ?? null;
}

export interface Plan {
  /** The due times to submit now, oldest first: the latest one due, after up to `catchUp` missed ones. */
  due: number[];
  /** The first due time after `now` (null: a cron expression that fires no more). */
  next: number | null;
}

/**
 * What is due at `now` for a schedule whose next run is `nextRunAt`: every due time from
 * `nextRunAt` to `now` has passed; the latest of them is the run due now (however late), the
 * earlier ones were missed (no runner saw them in time) and only the latest `catchUp` of those are
 * kept. The cost is bounded by `catchUp`, not by how long the runners were down.
 */
export function planAt(timing: Timing, nextRunAt: number, now: number, catchUp: number): Plan {
  if (nextRunAt > now) return { due: [], next: nextRunAt };
  if ("everyMs" in timing) {
    const every = timing.everyMs;
    const passed = Math.floor((now - nextRunAt) / every) + 1;
    const latest = nextRunAt + (passed - 1) * every;
    const count = Math.min(passed, catchUp + 1);
    const due = Array.from({ length: count }, (_, i) => latest - (count - 1 - i) * every);
    return { due, next: latest + every };
  }
  const c = cronFor(timing.cron, timing.timezone);
  // previousRuns looks strictly before its reference: now + 1 includes a run at exactly now.
  const due = c
    .previousRuns(catchUp + 1, new Date(now + 1))
    .map((d) => d.getTime())
    .filter((t) => t >= nextRunAt)
    .reverse();
  // A pattern croner can step forward always has the run that made nextRunAt due; keep it if not.
  if (due.length === 0) due.push(nextRunAt);
  return { due, next: nextAfter(timing, now) };
}

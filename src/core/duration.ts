/**
 * Durations as people write them in options and config files: a number and a unit, `500ms`, `30s`,
 * `15m`, `2h`, `7d`, `1w`, or several in a row (`1h30m`). Hand-written rather than a dependency:
 * the grammar is these six units, and what matters is that anything else is refused with a message
 * that shows the accepted forms (a lenient parser that read `7 days` or `1M` some way would not).
 */
import { ConfigError } from "./errors.ts";
import { quoted } from "./text.ts";

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;
/** The longest duration accepted: 100 years (far beyond any retention or wait, and exact in a double). */
export const MAX_DURATION_MS = 100 * 365 * UNIT_MS.d;
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/y;

/**
 * Milliseconds of `text` (e.g. "30s", "7d", "1h30m"); `what` names the option or key in errors.
 * With `bareSeconds`, a plain number ("90", "1.5") means seconds, as for `--timeout SEC`.
 */
export function parseDuration(text: string, what: string, options: { bareSeconds?: boolean } = {}): number {
  const s = text.trim();
  const bad = () =>
    new ConfigError(
      `${what} must be a duration such as 30s, 15m, 2h or 7d${options.bareSeconds ? " (or a number of seconds)" : ""}` +
        `, got ${quoted(text, 40)}`,
    );
  let ms: number;
  if (options.bareSeconds && /^\d+(\.\d+)?$/.test(s)) ms = Number(s) * 1000;
  else {
    if (s === "") throw bad();
    ms = 0;
    PART.lastIndex = 0;
    while (PART.lastIndex < s.length) {
      const m = PART.exec(s);
      if (!m) throw bad();
      ms += Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
    }
  }
  if (!Number.isFinite(ms) || ms > MAX_DURATION_MS)
    throw new ConfigError(`${what} may be at most 100 years, got ${quoted(text, 40)}`);
  return Math.round(ms);
}

/** A duration for people: the largest whole unit that fits ("7d", "90s", "1500ms"), else seconds. */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [
    ["w", UNIT_MS.w],
    ["d", UNIT_MS.d],
    ["h", UNIT_MS.h],
    ["m", UNIT_MS.m],
    ["s", UNIT_MS.s],
  ] as const)
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  return ms < 1000 ? `${ms}ms` : `${+(ms / 1000).toFixed(3)}s`;
}

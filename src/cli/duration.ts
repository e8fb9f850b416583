/**
 * Durations on the command line: `500ms`, `30s`, `5m`, `1h30m`, `1d`. Hand-written because it is a
 * dozen lines and must be strict: a number without a unit is refused (is `60` seconds or
 * milliseconds?), as is anything but whole or decimal amounts of ms, s, m, h and d.
 */
import { ConfigError } from "../core/errors.ts";
import { quoted } from "../core/text.ts";

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const WHOLE = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/;
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/g;

/** Milliseconds in `text`, or ConfigError naming `option` (e.g. "--every"). */
export function parseDuration(text: string, option: string): number {
  const t = text.trim();
  if (t.length > 64 || !WHOLE.test(t))
    throw new ConfigError(`${option} takes a duration such as 30s, 5m, 1h30m or 1d, got ${quoted(text)}`);
  let ms = 0;
  for (const [, n, unit] of t.matchAll(PART)) ms += Number(n) * UNIT_MS[unit!]!;
  return Math.round(ms);
}

/** `ms` in the largest units that divide it: 90000 → "1m30s", 1500 → "1s500ms". */
export function formatDuration(ms: number): string {
  if (ms <= 0) return "0s";
  let left = ms;
  let out = "";
  for (const [unit, size] of Object.entries(UNIT_MS).reverse()) {
    const n = Math.floor(left / size);
    if (n > 0) {
      out += `${n}${unit}`;
      left -= n * size;
    }
  }
  return out;
}

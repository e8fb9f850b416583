/** Rules every backend applies to keys, index names and channel names. */
import { StoreError } from "../core/errors.ts";

/**
 * Keys must be well-formed Unicode: a lone surrogate has no UTF-8 form, so SQLite, Redis and file
 * names would all store it as U+FFFD and two different keys would silently become one.
 */
export function checkKey(key: string, what = "key"): void {
  if (typeof key !== "string") throw new StoreError(`a store ${what} must be a string, got ${typeof key}`);
  if (!key.isWellFormed())
    throw new StoreError(
      `the store ${what} ${JSON.stringify(key)} contains a lone UTF-16 surrogate; use well-formed Unicode`,
    );
}

/** Checks the index named in `UpdateOptions.index` before anything is read or written. */
export function checkIndexUpdate(index: { name: string; member: string; keep: unknown }): void {
  checkKey(index.name, "index name");
  checkKey(index.member, "index member");
  if (typeof index.keep !== "function") throw new StoreError("update's index option needs a keep(value) function");
}

/**
 * The smallest string greater than every string starting with `prefix`, in code point order
 * (which is UTF-8 byte order, SQLite's BINARY collation), or undefined when there is none.
 * Lets a prefix listing be a range over the primary-key index instead of a scan.
 */
export function prefixUpperBound(prefix: string): string | undefined {
  const cps = [...prefix].map((c) => c.codePointAt(0)!);
  while (cps.length > 0) {
    let last = cps.pop()! + 1;
    if (last >= 0xd800 && last <= 0xdfff) last = 0xe000; // surrogates are not characters: skip them
    if (last <= 0x10ffff) return String.fromCodePoint(...cps, last);
  }
  return undefined;
}

/** Sorts keys by code point (UTF-8 byte) order, the same order in every backend. */
export function sortKeys(keys: string[]): string[] {
  return keys.sort(compareCodePoints);
}

function compareCodePoints(a: string, b: string): number {
  // UTF-16 order differs from code point order only when a surrogate meets a unit in U+E000..U+FFFF.
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys) return xs ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}

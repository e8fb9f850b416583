/** JSON (de)serialisation of records, with errors that name the key; and frozen plain values. */
import { CorruptRecordError, StoreError } from "../core/errors.ts";
import { quoted } from "../core/text.ts";

export function serialise(key: string, value: unknown): string {
  if (value === undefined) throw new StoreError(`cannot store undefined under ${quoted(key)}; use delete`);
  // JSON.stringify(promise) is "{}": an async update callback would silently wipe the record.
  if (value instanceof Promise) {
    throw new StoreError(`cannot store a Promise under ${quoted(key)}; update callbacks must be synchronous`);
  }
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new StoreError(`value for ${quoted(key)} is not JSON-serialisable: ${(err as Error).message}`);
  }
  // A function or symbol at the top level stringifies to undefined: nothing could be read back.
  if (text === undefined) throw new StoreError(`value for ${quoted(key)} is not JSON-serialisable: a ${typeof value}`);
  return text;
}

export function parseRecord(key: string, text: unknown): unknown {
  if (typeof text !== "string") {
    throw new CorruptRecordError(key, `the record ${quoted(key)} is corrupt (not JSON text); repair or delete it`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new CorruptRecordError(key, `the record ${quoted(key)} is corrupt (not valid JSON); repair or delete it`);
  }
}

/** Freezes a plain value and everything in it; returns it. */
function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/**
 * `value` as the JSON backends would store it (checked, copied, normalised), deep-frozen. Plain
 * data (the common case: objects, arrays, strings, finite numbers, booleans, null) is copied in one
 * walk; anything else (a Date, a toJSON method, undefined members, -0, NaN, cycles) takes the JSON
 * round trip, whose rules are the definition. `key` names the value in errors (a function: built
 * only then).
 */
export function frozenCopy(key: string | (() => string), value: unknown): unknown {
  const fast = plainFrozen(value, 0);
  if (fast !== NOT_PLAIN) return fast;
  return deepFreeze(JSON.parse(serialise(typeof key === "string" ? key : key(), value)));
}

const NOT_PLAIN: unique symbol = Symbol("not plain");

function plainFrozen(v: unknown, depth: number): unknown {
  switch (typeof v) {
    case "string":
    case "boolean":
      return v;
    case "number":
      return Number.isFinite(v) && !Object.is(v, -0) ? v : NOT_PLAIN;
    case "object": {
      if (v === null) return null;
      if (depth > 64) return NOT_PLAIN; // deep, or a cycle: the round trip says which
      if (Array.isArray(v)) {
        const out = new Array(v.length);
        for (let i = 0; i < v.length; i++) {
          const x = plainFrozen(v[i], depth + 1);
          if (x === NOT_PLAIN || x === undefined) return NOT_PLAIN;
          out[i] = x;
        }
        return Object.freeze(out);
      }
      const proto = Object.getPrototypeOf(v);
      if ((proto !== Object.prototype && proto !== null) || "toJSON" in v) return NOT_PLAIN;
      const out: Record<string, unknown> = {};
      for (const k in v) {
        if (!Object.hasOwn(v, k)) continue;
        const x = plainFrozen((v as Record<string, unknown>)[k], depth + 1);
        if (x === NOT_PLAIN || x === undefined) return NOT_PLAIN;
        out[k] = x;
      }
      return Object.freeze(out);
    }
    default:
      return NOT_PLAIN;
  }
}

/** A mutable copy of a stored plain value. */
export function thaw<T>(value: T): T {
  return typeof value === "object" && value !== null ? JSON.parse(JSON.stringify(value)) : value;
}

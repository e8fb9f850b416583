/** JSON (de)serialisation of records, with errors that name the key. */
import { StoreError } from "../core/errors.ts";

export function serialise(key: string, value: unknown): string {
  if (value === undefined) throw new StoreError(`cannot store undefined under "${key}"; use delete`);
  // JSON.stringify(promise) is "{}": an async update callback would silently wipe the record.
  if (value instanceof Promise)
    throw new StoreError(`cannot store a Promise under "${key}"; update callbacks must be synchronous`);
  try {
    return JSON.stringify(value);
  } catch (err) {
    throw new StoreError(`value for "${key}" is not JSON-serialisable: ${(err as Error).message}`);
  }
}

export function parseRecord(key: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new StoreError(`the record "${key}" is corrupt (not valid JSON); repair or delete it`);
  }
}

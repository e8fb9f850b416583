/**
 * The Driver contract: what a storage backend implements. A driver holds raw values and makes
 * them atomic and shared; the one front (front.ts) does everything else the Store contract asks:
 * key checks, the closed state, (de)serialisation, declines and hints, wake-up listeners in this
 * process, health. (unstorage's shape: a small driver, one front.)
 *
 * Values are of one of two kinds, the driver's `codec`:
 * - "json": JSON text; the front serialises on write and parses on read (sqlite, redis, file);
 * - "frozen": deep-frozen plain values, kept by reference and shared (memory: no JSON per write
 *   or read on the task path; the front still hands callers of `get` their own copy).
 *
 * A driver may also bring a native task queue (`tasks`, see task-queue.ts): the claim path of its
 * backend, kept exact by the backend's own atomicity (one Lua script, one SQLite transaction).
 */
import type { TaskQueue } from "./task-queue.ts";

/** One change of an index set made in the same atomic step as a record write. */
export interface IndexChange {
  name: string;
  member: string;
  add: boolean;
}

/** What an update writes: the new value, and index changes that commit with it. */
export interface Write<S> {
  value: S;
  index?: IndexChange;
}

/**
 * The step an update runs on the current value (undefined: absent). It returns the write, or
 * undefined to decline; it may throw. A driver may run it more than once (optimistic backends
 * retry on conflict, and a hint is tried before the real value): the last run is the one whose
 * outcome stands.
 */
export type UpdateStep<S> = (current: S | undefined) => Write<S> | undefined;

export interface Driver<S = string> {
  /** How values are held: JSON text, or deep-frozen plain values (see above). */
  readonly codec: "json" | "frozen";
  /** For people: `sqlite /var/lib/converge.db`; never a password. */
  readonly description: string;

  get(key: string): S | undefined | Promise<S | undefined>;
  /** Optional: several keys in few round trips; the front falls back to `get` per key. */
  getMany?(keys: readonly string[]): (S | undefined)[] | Promise<(S | undefined)[]>;
  set(key: string, value: S): void | Promise<void>;
  /** Writes only when absent; true when this call wrote. Atomic across every process sharing the backend. */
  setIfAbsent(key: string, value: S): boolean | Promise<boolean>;
  /** True when the key existed. */
  delete(key: string): boolean | Promise<boolean>;
  /** Keys starting with `prefix`, in any order (the front sorts them). */
  list(prefix: string): string[] | Promise<string[]>;
  /**
   * Atomic read-modify-write of one key (see UpdateStep). `hint`: the caller's guess of the
   * current value (null: absent), which a driver paying a round trip per read may run the step on
   * first, comparing and setting against it; a decline or an error on the hint is never final (the
   * driver reads the real value and runs the step again). Local drivers ignore it.
   */
  update(key: string, step: UpdateStep<S>, hint?: S | null): Promise<void> | void;

  indexAdd(name: string, members: readonly string[]): void | Promise<void>;
  indexRemove(name: string, members: readonly string[]): void | Promise<void>;
  indexMembers(name: string): string[] | Promise<string[]>;

  /** Tells other processes sharing the backend (the front wakes this process's listeners itself). */
  publish(channel: string): void | Promise<void>;
  /** Starts hearing other processes' notifications on `channel`: `heard(channel)` on each (spurious ones allowed). */
  watch(channel: string, heard: (channel: string) => void): void;
  /** Stops hearing `channel`. */
  unwatch(channel: string): void;

  /** Epoch ms from the backend's clock (so hosts with skewed clocks agree on leases). */
  now(): number | Promise<number>;
  /** Optional: something wrong that a write probe cannot see (the file was replaced, pages are corrupt), or null. */
  check?(): string | null | Promise<string | null>;
  /** Optional: the backend's native task queue. */
  readonly tasks?: TaskQueue;
  close(): void | Promise<void>;
}

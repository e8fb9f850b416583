/**
 * The Store contract: an asynchronous key-value store of JSON-serialisable plain data, shared by
 * every agent and every process that points at the same backend. Every backend passes the one
 * contract suite in test/store/contract.ts.
 *
 * Beyond the key-value core, a store keeps named index sets (so that listing pending work costs in
 * proportion to the pending set, not to every record ever written), wake-up channels (so that idle
 * agents in other processes notice new work at once), and one clock for leases.
 *
 * Keys, prefixes, index names, members and channels are any well-formed Unicode strings (`/`, `..`,
 * NUL and very long keys included); a lone UTF-16 surrogate is refused with a StoreError, because
 * its UTF-8 form would be U+FFFD and two keys would silently become one.
 */

import type { TaskQueue } from "./task-queue.ts";

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** What an `update` callback returns to decline: nothing is written and `update` returns the current value. */
export const DECLINE: unique symbol = Symbol("converge.store.decline");
export type Decline = typeof DECLINE;

/** As `UpdateOptions.expected`: the caller expects the key to be absent (e.g. a create). */
export const ABSENT: unique symbol = Symbol("converge.store.absent");
export type Absent = typeof ABSENT;

export interface UpdateOptions<T = unknown> {
  /**
   * A hint of the current value: the record as the caller last saw it, or ABSENT when it expects
   * no record (undefined = no hint). A backend that pays a round trip to read (redis) may run `fn`
   * on the hint and compare-and-set against it directly, reading the real value only when the hint
   * was wrong; local backends ignore it. The hint never changes the outcome: what is written (or
   * declined, or returned) is always decided by `fn` on the real current value. A wrong hint costs
   * at most a round trip, never correctness.
   */
  expected?: T | Absent;
  /**
   * An index set kept in the same atomic step as the record: when the update writes a value v,
   * `member` is added to the index `name` if `keep(v)`, else removed from it. When `fn` declines,
   * the index is left as it is. (`keep` gets the value as stored and, like `fn`, may run more than once.)
   */
  index?: { name: string; member: string; keep: (value: T) => boolean };
}

export interface Store {
  /** A short description for people, e.g. `sqlite /var/lib/converge.db` (never a password). */
  readonly description: string;

  get<T = unknown>(key: string): Promise<T | undefined>;
  /**
   * Optional: the values of several keys at once, in the order of `keys` (undefined where absent),
   * as `get` of each would give them, corrupt records included (an error naming the key); each
   * value is as of some moment during the call, not one snapshot of them all. A backend that pays a
   * round trip per read (redis) answers in a few; callers use `getMany(store, keys)` below, which
   * falls back to one `get` per key for a store without it.
   */
  getMany?<T = unknown>(keys: readonly string[]): Promise<(T | undefined)[]>;
  put(key: string, value: unknown): Promise<void>;
  /** True when the key existed. */
  delete(key: string): Promise<boolean>;
  /** Every key starting with `prefix`, in ascending code point order (= UTF-8 byte order) in every backend. */
  list(prefix: string): Promise<string[]>;
  /** Writes only when the key is absent; true when this call wrote it. Atomic. */
  putIfAbsent(key: string, value: unknown): Promise<boolean>;
  /**
   * Atomic read-modify-write of one key: `fn` gets the current value (undefined when absent) and
   * returns the new one, or DECLINE to write nothing. `fn` may run more than once (optimistic
   * backends retry on conflict), so it must not have side effects. Returns the stored value after.
   * See UpdateOptions for a hint of the current value and for an index set kept in the same step.
   */
  update<T = unknown>(
    key: string,
    fn: (current: T | undefined) => T | Decline,
    options?: UpdateOptions<T>,
  ): Promise<T | undefined>;

  /** Adds members to a named index set. */
  indexAdd(index: string, ...members: string[]): Promise<void>;
  /** Removes members from a named index set. */
  indexRemove(index: string, ...members: string[]): Promise<void>;
  /** The members of a named index set, in no particular order. */
  indexMembers(index: string): Promise<string[]>;

  /** Wakes every subscriber of `channel`, in this process and in others sharing the store. */
  notify(channel: string): Promise<void>;
  /**
   * Calls `listener` after notifications on `channel` (possibly coalesced, possibly spurious, e.g.
   * after a reconnect); returns the unsubscribe function. A throwing listener is logged and does not
   * stop the others. Throws StoreError once the store is closed.
   */
  subscribe(channel: string, listener: () => void): () => void;

  /** Epoch ms from the store's clock, so hosts with skewed clocks agree on leases. */
  now(): Promise<number>;

  /**
   * Optional: null while the store works, else why not in one line (a real write failed, the
   * backend's file was replaced or is corrupt, a probe did not come back). `/healthz` reports it.
   */
  health?(): Promise<string | null>;

  /** Optional: the backend's native task queue (TaskManager falls back to one over this contract). */
  readonly tasks?: TaskQueue;

  /** Releases connections and timers; idempotent. Calls after close reject with StoreError. */
  close(): Promise<void>;
}

/** `store.getMany(keys)` when the store has it, else one `get` per key (concurrently). */
export function getMany<T = unknown>(store: Store, keys: readonly string[]): Promise<(T | undefined)[]> {
  if (store.getMany) return store.getMany<T>(keys);
  return Promise.all(keys.map((k) => store.get<T>(k)));
}

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

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** What an `update` callback returns to decline: nothing is written and `update` returns the current value. */
export const DECLINE: unique symbol = Symbol("converge.store.decline");
export type Decline = typeof DECLINE;

export interface Store {
  /** A short description for people, e.g. `sqlite /var/lib/converge.db` (never a password). */
  readonly description: string;

  get<T = unknown>(key: string): Promise<T | undefined>;
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
   */
  update<T = unknown>(key: string, fn: (current: T | undefined) => T | Decline): Promise<T | undefined>;

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

  /** Releases connections and timers; idempotent. Calls after close reject with StoreError. */
  close(): Promise<void>;
}

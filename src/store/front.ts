/**
 * The one Store front over a Driver (driver.ts): every backend gets the same key checks, closed
 * state, (de)serialisation, decline and hint handling, index checks, wake-up listeners and health
 * from here, so a driver keeps only raw storage and its native fast paths.
 *
 * Health (`health()`): a write probe is not enough (a disk that is full may still take a tiny
 * record), so the front also remembers whether the last real write failed, the task queue's
 * included (submits, claims, reports); the driver may add what it alone can see (a database file
 * replaced or corrupt).
 */
import { randomUUID } from "node:crypto";
import { StoreClosedError, StoreError } from "../core/errors.ts";
import type { Driver, IndexChange, Write } from "./driver.ts";
import { frozenCopy, parseRecord, serialise, thaw } from "./json.ts";
import { checkIndexUpdate, checkKey, sortKeys } from "./keys.ts";
import { Listeners } from "./listeners.ts";
import { ABSENT, DECLINE, type Decline, type Store, type UpdateOptions } from "./store.ts";
import type { Answer, TaskQueue } from "./task-queue.ts";

/** How long a failed real write keeps the store unhealthy when no write has succeeded since. */
const WRITE_FAILURE_MEMORY_MS = 60_000;
const PROBE_TIMEOUT_MS = 1000;

type Outcome<T> = { declined: true; current: T | undefined } | { declined: false; value: T };

export class StoreFront implements Store {
  readonly #driver: Driver<unknown>;
  readonly #json: boolean;
  readonly #listeners = new Listeners();
  readonly #probeKey = `health:${randomUUID()}`;
  #closed = false;
  #probed = false;
  #tasks: TaskQueue | undefined;
  #lastWriteOk = -Infinity;
  #lastWriteFailed: { at: number; reason: string } | undefined;

  constructor(driver: Driver<unknown>) {
    this.#driver = driver;
    this.#json = driver.codec === "json";
  }

  get description(): string {
    return this.#driver.description;
  }

  /** The backend's native task queue, when it has one (TaskManager uses it); its writes count for health. */
  get tasks(): TaskQueue | undefined {
    const queue = this.#driver.tasks;
    if (!queue) return undefined;
    // In memory a write cannot fail for want of a disk: nothing to watch, only the closed check.
    const watched = this.#json ? { ok: this.#wrote, failed: this.#writeFailed } : undefined;
    this.#tasks ??= guardQueue(queue, this.#refused, watched);
    return this.#tasks;
  }

  readonly #wrote = (): void => {
    this.#lastWriteOk = performance.now();
  };

  readonly #writeFailed = (err: unknown): void => {
    if (err instanceof StoreError && !this.#closed) {
      this.#lastWriteFailed = { at: performance.now(), reason: err.message };
    }
  };

  #open(): void {
    if (this.#closed) throw this.#closedError();
  }

  #closedError(): StoreClosedError {
    return new StoreClosedError(`the store ${this.description} is closed`);
  }

  /** For promise-returning paths: a rejection once closed, else undefined. */
  readonly #refused = (): Promise<never> | undefined =>
    this.#closed ? Promise.reject(this.#closedError()) : undefined;

  /** The stored form of a value: JSON text, or a frozen copy. */
  #encode(key: string, value: unknown): unknown {
    return this.#json ? serialise(key, value) : frozenCopy(key, value);
  }

  /** What callers get: a fresh value they may change. */
  #decode<T>(key: string, stored: unknown): T {
    return (this.#json ? parseRecord(key, stored) : thaw(stored)) as T;
  }

  /** Runs a write, remembering for `health()` whether real writes succeed. */
  async #write<T>(work: () => T | Promise<T>): Promise<T> {
    try {
      const out = await work();
      this.#wrote();
      return out;
    } catch (err) {
      this.#writeFailed(err);
      throw err;
    }
  }

  async get<T>(key: string): Promise<T | undefined> {
    this.#open();
    checkKey(key);
    const stored = await this.#driver.get(key);
    return stored === undefined ? undefined : this.#decode<T>(key, stored);
  }

  async getMany<T>(keys: readonly string[]): Promise<(T | undefined)[]> {
    this.#open();
    for (const key of keys) checkKey(key);
    const d = this.#driver;
    const stored = d.getMany ? await d.getMany(keys) : await Promise.all(keys.map((k) => d.get(k)));
    return stored.map((s, i) => (s === undefined ? undefined : this.#decode<T>(keys[i]!, s)));
  }

  async put(key: string, value: unknown): Promise<void> {
    this.#open();
    checkKey(key);
    const stored = this.#encode(key, value);
    await this.#write(() => this.#driver.set(key, stored));
  }

  async delete(key: string): Promise<boolean> {
    this.#open();
    checkKey(key);
    return this.#write(() => this.#driver.delete(key));
  }

  async list(prefix: string): Promise<string[]> {
    this.#open();
    checkKey(prefix, "prefix");
    return sortKeys([...(await this.#driver.list(prefix))]);
  }

  async putIfAbsent(key: string, value: unknown): Promise<boolean> {
    this.#open();
    checkKey(key);
    const stored = this.#encode(key, value);
    return this.#write(() => this.#driver.setIfAbsent(key, stored));
  }

  async update<T>(
    key: string,
    fn: (current: T | undefined) => T | Decline,
    options?: UpdateOptions<T>,
  ): Promise<T | undefined> {
    this.#open();
    checkKey(key);
    const index = options?.index;
    if (index) checkIndexUpdate(index);
    const hint = this.#hint(key, options?.expected);
    let outcome: Outcome<T> | undefined;
    await this.#write(() =>
      this.#driver.update(
        key,
        (stored): Write<unknown> | undefined => {
          const current = stored === undefined ? undefined : this.#decode<T>(key, stored);
          const next = fn(current);
          if (next === DECLINE) {
            outcome = { declined: true, current };
            return undefined;
          }
          const value = this.#encode(key, next);
          const after = (this.#json ? JSON.parse(value as string) : value) as T;
          // keep runs before the write: one that throws writes nothing.
          const change: IndexChange | undefined = index && {
            name: index.name,
            member: index.member,
            add: index.keep(after),
          };
          outcome = { declined: false, value: after };
          return { value, index: change };
        },
        hint,
      ),
    );
    if (!outcome) throw new StoreError(`the store ${this.description} did not run the update of ${key}`);
    if (outcome.declined) return outcome.current;
    return this.#json ? outcome.value : thaw(outcome.value);
  }

  /** The hint in the stored form (null: absent; undefined: none or unusable). Only JSON drivers use one. */
  #hint(key: string, expected: unknown): unknown {
    if (!this.#json || expected === undefined) return undefined;
    if (expected === ABSENT) return null;
    try {
      return serialise(key, expected);
    } catch {
      return undefined; // not JSON: no hint
    }
  }

  async indexAdd(index: string, ...members: string[]): Promise<void> {
    this.#open();
    checkKey(index, "index name");
    for (const m of members) checkKey(m, "index member");
    await this.#write(() => this.#driver.indexAdd(index, members));
  }

  async indexRemove(index: string, ...members: string[]): Promise<void> {
    this.#open();
    checkKey(index, "index name");
    for (const m of members) checkKey(m, "index member");
    await this.#write(() => this.#driver.indexRemove(index, members));
  }

  async indexMembers(index: string): Promise<string[]> {
    this.#open();
    checkKey(index, "index name");
    return [...(await this.#driver.indexMembers(index))];
  }

  async notify(channel: string): Promise<void> {
    this.#open();
    checkKey(channel, "channel");
    await this.#driver.publish(channel);
    this.#listeners.fire(channel);
  }

  subscribe(channel: string, listener: () => void): () => void {
    this.#open();
    checkKey(channel, "channel");
    if (!this.#listeners.has(channel)) this.#driver.watch(channel, (c) => this.#listeners.fire(c));
    return this.#listeners.add(channel, listener, (c) => {
      if (!this.#closed) this.#driver.unwatch(c);
    });
  }

  async now(): Promise<number> {
    this.#open();
    return this.#driver.now();
  }

  /**
   * Null while the store works; else why not, in a line for people: the backend's own check, then
   * a real write that failed with none succeeding since, then a probe written and read back.
   */
  async health(): Promise<string | null> {
    if (this.#closed) return `the store ${this.description} is closed`;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve(`did not answer within ${PROBE_TIMEOUT_MS} ms`), PROBE_TIMEOUT_MS);
    });
    try {
      const why = await Promise.race([this.#health(), timeout]);
      return why === null ? null : `store ${this.description}: ${why}`;
    } finally {
      clearTimeout(timer);
    }
  }

  async #health(): Promise<string | null> {
    try {
      const problem = await this.#driver.check?.();
      if (problem) return problem;
      const failed = this.#lastWriteFailed;
      if (failed && failed.at > this.#lastWriteOk && performance.now() - failed.at < WRITE_FAILURE_MEMORY_MS) {
        return `the last write failed (${failed.reason})`;
      }
      // The probe goes to the driver directly: its success says nothing about real writes.
      const value = this.#encode(this.#probeKey, { at: Date.now() });
      this.#probed = true;
      await this.#driver.set(this.#probeKey, value);
      const back = await this.#driver.get(this.#probeKey);
      const same = this.#json ? back === value : JSON.stringify(back) === JSON.stringify(value);
      return same ? null : "it did not return what was written";
    } catch (err) {
      return `it failed: ${(err as Error).message}`;
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#probed) {
      try {
        await this.#driver.delete(this.#probeKey);
      } catch {
        // best effort: a leftover probe record is tiny
      }
    }
    this.#listeners.clear();
    await this.#driver.close();
  }
}

/**
 * The queue as callers get it. Every call first checks the store is open (`refused` is a rejection
 * once it is closed), so a closed store says so with StoreClosedError rather than in the backend's
 * own words, or not at all (the memory queue answers without a promise). With `watched`, its writes
 * are watched too: the caller gets the queue's own answer (no extra step on the task path) and a
 * handler beside it notes success or failure.
 */
function guardQueue(
  queue: TaskQueue,
  refused: () => Promise<never> | undefined,
  watched?: { ok: () => void; failed: (err: unknown) => void },
): TaskQueue {
  const watch = !watched
    ? <A>(a: A): A => a
    : <A extends Answer<unknown>>(a: A): A => {
        if (a instanceof Promise) a.then(watched.ok, watched.failed);
        else watched.ok();
        return a;
      };
  return {
    // What costs nothing stays as it is (TaskManager reads these without a promise).
    clock: queue.clock,
    peek: queue.peek?.bind(queue),
    submit: (tasks, now) => refused() ?? watch(queue.submit(tasks, now)),
    claim: (id, claim, token) => refused() ?? watch(queue.claim(id, claim, token)),
    claimNext: (claim) => refused() ?? watch(queue.claimNext(claim)),
    transition: (id, expect, next, now, then, options) =>
      refused() ?? watch(queue.transition(id, expect, next, now, then, options)),
    remove: (ids) => refused() ?? watch(queue.remove(ids)),
    get: (id) => refused() ?? queue.get(id),
    getMany: (ids) => refused() ?? queue.getMany(ids),
    pending: (visibility, now, limit) => refused() ?? queue.pending(visibility, now, limit),
    expired: (now, limit) => refused() ?? queue.expired(now, limit),
    open: () => refused() ?? queue.open(),
    finished: (state, before, limit) => refused() ?? queue.finished(state, before, limit),
    finishedSince: (since, limit) => refused() ?? queue.finishedSince(since, limit),
    counts: () => refused() ?? queue.counts(),
  };
}

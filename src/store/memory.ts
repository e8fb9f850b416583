/**
 * The embedded default: a Map in this process. Values are stored as JSON text, so callers never
 * share mutable objects with the store, exactly as with the persistent backends.
 * Keys are bucketed by their prefix up to the last ':' so that `list("task:")` reads only that bucket.
 */
import { StoreError } from "../core/errors.ts";
import { DECLINE, type Decline, type Store, type UpdateOptions } from "./store.ts";
import { parseRecord, serialise } from "./json.ts";
import { checkIndexUpdate, checkKey, sortKeys } from "./keys.ts";
import { Listeners } from "./listeners.ts";

export class MemoryStore implements Store {
  readonly description = "memory";
  readonly #data = new Map<string, string>();
  readonly #buckets = new Map<string, Set<string>>();
  readonly #indexes = new Map<string, Set<string>>();
  readonly #listeners = new Listeners();
  #closed = false;

  #check(key?: string, what?: string): void {
    if (this.#closed) throw new StoreError("the memory store is closed");
    if (key !== undefined) checkKey(key, what);
  }

  async get<T>(key: string): Promise<T | undefined> {
    this.#check(key);
    const text = this.#data.get(key);
    return text === undefined ? undefined : (parseRecord(key, text) as T);
  }

  async getMany<T>(keys: readonly string[]): Promise<(T | undefined)[]> {
    this.#check();
    for (const key of keys) checkKey(key);
    return keys.map((key) => {
      const text = this.#data.get(key);
      return text === undefined ? undefined : (parseRecord(key, text) as T);
    });
  }

  async put(key: string, value: unknown): Promise<void> {
    this.#check(key);
    this.#set(key, serialise(key, value));
  }

  #set(key: string, text: string): void {
    if (!this.#data.has(key)) {
      const b = bucketOf(key);
      let set = this.#buckets.get(b);
      if (!set) this.#buckets.set(b, (set = new Set()));
      set.add(key);
    }
    this.#data.set(key, text);
  }

  async delete(key: string): Promise<boolean> {
    this.#check(key);
    if (!this.#data.delete(key)) return false;
    const b = bucketOf(key);
    const set = this.#buckets.get(b)!;
    set.delete(key);
    if (set.size === 0) this.#buckets.delete(b);
    return true;
  }

  async list(prefix: string): Promise<string[]> {
    this.#check(prefix, "prefix");
    // A key in bucket b starts with b; it can start with `prefix` only if one of b, prefix extends the other.
    const out: string[] = [];
    for (const [b, keys] of this.#buckets) {
      if (b.startsWith(prefix)) out.push(...keys);
      else if (prefix.startsWith(b)) for (const k of keys) if (k.startsWith(prefix)) out.push(k);
    }
    return sortKeys(out);
  }

  async putIfAbsent(key: string, value: unknown): Promise<boolean> {
    this.#check(key);
    if (this.#data.has(key)) return false;
    this.#set(key, serialise(key, value));
    return true;
  }

  /** The hint (`options.expected`) is ignored: reading here costs nothing. */
  async update<T>(
    key: string,
    fn: (current: T | undefined) => T | Decline,
    options?: UpdateOptions<T>,
  ): Promise<T | undefined> {
    this.#check(key);
    const index = options?.index;
    if (index) checkIndexUpdate(index);
    const text = this.#data.get(key);
    const current = text === undefined ? undefined : (parseRecord(key, text) as T);
    const next = fn(current);
    if (next === DECLINE) return current;
    const out = serialise(key, next);
    const stored = JSON.parse(out) as T;
    const keep = index ? index.keep(stored) : false; // before any write: a throwing keep writes nothing
    this.#set(key, out);
    if (index) {
      if (keep) this.#indexAdd(index.name, index.member);
      else this.#indexRemove(index.name, index.member);
    }
    return stored;
  }

  async indexAdd(index: string, ...members: string[]): Promise<void> {
    this.#check(index, "index name");
    for (const m of members) checkKey(m, "index member");
    this.#indexAdd(index, ...members);
  }

  #indexAdd(index: string, ...members: string[]): void {
    let set = this.#indexes.get(index);
    if (!set) this.#indexes.set(index, (set = new Set()));
    for (const m of members) set.add(m);
  }

  async indexRemove(index: string, ...members: string[]): Promise<void> {
    this.#check(index, "index name");
    this.#indexRemove(index, ...members);
  }

  #indexRemove(index: string, ...members: string[]): void {
    const set = this.#indexes.get(index);
    if (!set) return;
    for (const m of members) set.delete(m);
    if (set.size === 0) this.#indexes.delete(index);
  }

  async indexMembers(index: string): Promise<string[]> {
    this.#check(index, "index name");
    return [...(this.#indexes.get(index) ?? [])];
  }

  async notify(channel: string): Promise<void> {
    this.#check(channel, "channel");
    this.#listeners.fire(channel);
  }

  subscribe(channel: string, listener: () => void): () => void {
    this.#check(channel, "channel");
    return this.#listeners.add(channel, listener);
  }

  async now(): Promise<number> {
    this.#check();
    return Date.now();
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#listeners.clear();
  }
}

function bucketOf(key: string): string {
  const i = key.lastIndexOf(":");
  return i < 0 ? "" : key.slice(0, i + 1);
}

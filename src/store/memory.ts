/**
 * The embedded default: a Map in this process. Values are stored as JSON text, so callers never
 * share mutable objects with the store, exactly as with the persistent backends.
 * Keys are bucketed by their prefix up to the last ':' so that `list("task:")` reads only that bucket.
 */
import { StoreError } from "../core/errors.ts";
import { DECLINE, type Decline, type Store } from "./store.ts";
import { parseRecord, serialise } from "./json.ts";

export class MemoryStore implements Store {
  readonly description = "memory";
  readonly #data = new Map<string, string>();
  readonly #buckets = new Map<string, Set<string>>();
  readonly #indexes = new Map<string, Set<string>>();
  readonly #listeners = new Map<string, Set<() => void>>();
  #closed = false;

  #check(): void {
    if (this.#closed) throw new StoreError("the memory store is closed");
  }

  async get<T>(key: string): Promise<T | undefined> {
    this.#check();
    const text = this.#data.get(key);
    return text === undefined ? undefined : (parseRecord(key, text) as T);
  }

  async put(key: string, value: unknown): Promise<void> {
    this.#check();
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
    this.#check();
    if (!this.#data.delete(key)) return false;
    const b = bucketOf(key);
    const set = this.#buckets.get(b)!;
    set.delete(key);
    if (set.size === 0) this.#buckets.delete(b);
    return true;
  }

  async list(prefix: string): Promise<string[]> {
    this.#check();
    // A key in bucket b starts with b; it can start with `prefix` only if one of b, prefix extends the other.
    const out: string[] = [];
    for (const [b, keys] of this.#buckets) {
      if (b.startsWith(prefix)) out.push(...keys);
      else if (prefix.startsWith(b)) for (const k of keys) if (k.startsWith(prefix)) out.push(k);
    }
    return out.sort();
  }

  async putIfAbsent(key: string, value: unknown): Promise<boolean> {
    this.#check();
    if (this.#data.has(key)) return false;
    this.#set(key, serialise(key, value));
    return true;
  }

  async update<T>(key: string, fn: (current: T | undefined) => T | Decline): Promise<T | undefined> {
    this.#check();
    const text = this.#data.get(key);
    const current = text === undefined ? undefined : (parseRecord(key, text) as T);
    const next = fn(current);
    if (next === DECLINE) return current;
    const out = serialise(key, next);
    this.#set(key, out);
    return JSON.parse(out) as T;
  }

  async indexAdd(index: string, ...members: string[]): Promise<void> {
    this.#check();
    let set = this.#indexes.get(index);
    if (!set) this.#indexes.set(index, (set = new Set()));
    for (const m of members) set.add(m);
  }

  async indexRemove(index: string, ...members: string[]): Promise<void> {
    this.#check();
    const set = this.#indexes.get(index);
    if (!set) return;
    for (const m of members) set.delete(m);
    if (set.size === 0) this.#indexes.delete(index);
  }

  async indexMembers(index: string): Promise<string[]> {
    this.#check();
    return [...(this.#indexes.get(index) ?? [])];
  }

  async notify(channel: string): Promise<void> {
    this.#check();
    const set = this.#listeners.get(channel);
    if (!set) return;
    queueMicrotask(() => {
      for (const l of set) l();
    });
  }

  subscribe(channel: string, listener: () => void): () => void {
    let set = this.#listeners.get(channel);
    if (!set) this.#listeners.set(channel, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  async now(): Promise<number> {
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

/**
 * The embedded default: a Map in this process. Values are kept deep-frozen and shared, never
 * copied on the task path (the front hands `get` callers their own copy, as the persistent
 * backends do). Keys are bucketed by their prefix up to the last ':' so that `list("task:")`
 * reads only that bucket.
 */
import type { Driver } from "./driver.ts";
import { StoreFront } from "./front.ts";
import { MemoryTaskQueue } from "./memory-queue.ts";

const TASK = "task:";

/**
 * The records and index sets of one memory store. Task records (`task:<id>`) live apart, keyed by
 * id, so that the task queue (memory-queue.ts) reaches them without building the key string: on
 * the claim path that string costs more than the lookup. Every other key is in `records`.
 */
export class MemoryData {
  readonly records = new Map<string, unknown>();
  /** Task records by id; their keys are `task:<id>`. */
  readonly tasks = new Map<string, unknown>();
  readonly #buckets = new Map<string, Set<string>>();
  readonly indexes = new Map<string, Set<string>>();

  get(key: string): unknown {
    return key.startsWith(TASK) ? this.tasks.get(key.slice(TASK.length)) : this.records.get(key);
  }

  has(key: string): boolean {
    return key.startsWith(TASK) ? this.tasks.has(key.slice(TASK.length)) : this.records.has(key);
  }

  set(key: string, value: unknown): void {
    if (key.startsWith(TASK)) {
      this.tasks.set(key.slice(TASK.length), value);
      return;
    }
    const size = this.records.size;
    this.records.set(key, value);
    if (this.records.size === size) return; // replaced: already in its bucket
    const b = bucketOf(key);
    let set = this.#buckets.get(b);
    if (!set) this.#buckets.set(b, (set = new Set()));
    set.add(key);
  }

  delete(key: string): boolean {
    if (key.startsWith(TASK)) return this.tasks.delete(key.slice(TASK.length));
    if (!this.records.delete(key)) return false;
    const b = bucketOf(key);
    const set = this.#buckets.get(b)!;
    set.delete(key);
    if (set.size === 0) this.#buckets.delete(b);
    return true;
  }

  list(prefix: string): string[] {
    // A key in bucket b starts with b; it can start with `prefix` only if one of b, prefix extends the other.
    const out: string[] = [];
    for (const [b, keys] of this.#buckets) {
      if (b.startsWith(prefix)) out.push(...keys);
      else if (prefix.startsWith(b)) for (const k of keys) if (k.startsWith(prefix)) out.push(k);
    }
    if (TASK.startsWith(prefix) || prefix.startsWith(TASK)) {
      for (const id of this.tasks.keys()) {
        const key = TASK + id;
        if (key.startsWith(prefix)) out.push(key);
      }
    }
    return out;
  }

  indexChange(name: string, members: readonly string[], add: boolean): void {
    let set = this.indexes.get(name);
    if (!set) {
      if (!add) return;
      this.indexes.set(name, (set = new Set()));
    }
    for (const m of members) add ? set.add(m) : set.delete(m);
    if (set.size === 0) this.indexes.delete(name);
  }
}

/** The memory driver: every operation is synchronous, so an update is atomic by construction. */
function memoryDriver(): Driver<unknown> {
  const data = new MemoryData();
  return {
    codec: "frozen",
    description: "memory",
    get: (key) => data.get(key),
    getMany: (keys) => keys.map((k) => data.get(k)),
    set: (key, value) => data.set(key, value),
    setIfAbsent(key, value) {
      if (data.has(key)) return false;
      data.set(key, value);
      return true;
    },
    delete: (key) => data.delete(key),
    list: (prefix) => data.list(prefix),
    update(key, step) {
      const write = step(data.get(key));
      if (!write) return;
      data.set(key, write.value);
      if (write.index) data.indexChange(write.index.name, [write.index.member], write.index.add);
    },
    indexAdd: (name, members) => data.indexChange(name, members, true),
    indexRemove: (name, members) => data.indexChange(name, members, false),
    indexMembers: (name) => [...(data.indexes.get(name) ?? [])],
    // One process: the front wakes its own listeners; there is no one else to tell.
    publish() {},
    watch() {},
    unwatch() {},
    now: () => Date.now(),
    tasks: new MemoryTaskQueue(data),
    close() {},
  };
}

export class MemoryStore extends StoreFront {
  constructor() {
    super(memoryDriver());
  }
}

function bucketOf(key: string): string {
  const i = key.lastIndexOf(":");
  return i < 0 ? "" : key.slice(0, i + 1);
}

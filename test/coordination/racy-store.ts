/**
 * A store whose `update` behaves like an optimistic backend (Redis WATCH/MULTI): it reads, yields,
 * runs the callback, and retries when the record changed in between. Concurrent callers then really
 * interleave, and callbacks really run more than once, as they may on a shared backend.
 */
import { MemoryStore } from "../../src/store/memory.ts";
import { DECLINE, type Decline, type Store, type UpdateOptions } from "../../src/store/store.ts";

export class RacyStore implements Store {
  readonly description = "racy memory";
  readonly inner = new MemoryStore();
  /** How many times an update callback had to run again after a conflict. */
  retries = 0;

  get<T>(key: string) {
    return this.inner.get<T>(key);
  }
  put(key: string, value: unknown) {
    return this.inner.put(key, value);
  }
  delete(key: string) {
    return this.inner.delete(key);
  }
  list(prefix: string) {
    return this.inner.list(prefix);
  }
  putIfAbsent(key: string, value: unknown) {
    return this.inner.putIfAbsent(key, value);
  }
  indexAdd(index: string, ...members: string[]) {
    return this.inner.indexAdd(index, ...members);
  }
  indexRemove(index: string, ...members: string[]) {
    return this.inner.indexRemove(index, ...members);
  }
  indexMembers(index: string) {
    return this.inner.indexMembers(index);
  }
  notify(channel: string) {
    return this.inner.notify(channel);
  }
  subscribe(channel: string, listener: () => void) {
    return this.inner.subscribe(channel, listener);
  }
  now() {
    return this.inner.now();
  }
  close() {
    return this.inner.close();
  }

  /** The hint is ignored (as a local backend may); an index change goes with the write that wins. */
  async update<T>(
    key: string,
    fn: (current: T | undefined) => T | Decline,
    options?: UpdateOptions<T>,
  ): Promise<T | undefined> {
    for (;;) {
      const before = await this.inner.get<T>(key);
      const seen = JSON.stringify(before);
      await new Promise<void>((resolve) => setImmediate(resolve));
      const next = fn(before === undefined ? undefined : (JSON.parse(seen) as T));
      let conflict = false;
      const after = await this.inner.update<T>(
        key,
        (current) => {
          conflict = JSON.stringify(current) !== seen;
          return conflict || next === DECLINE ? DECLINE : next;
        },
        { index: options?.index },
      );
      if (!conflict) return after;
      this.retries++;
    }
  }
}

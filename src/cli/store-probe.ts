/**
 * The store probe behind `/healthz`: a real write and read of a record of this process's own,
 * answered within a second, or the reason it was not.
 */
import { randomUUID } from "node:crypto";
import type { Store } from "../store/store.ts";

const PROBE_TIMEOUT_MS = 1000;

export interface StoreProbe {
  /** Null when the store answered; else why not. */
  check(): Promise<string | null>;
  /** Deletes the probe record (on stop). */
  clear(): Promise<void>;
}

export function storeProbe(store: Store, key = `health:${randomUUID()}`): StoreProbe {
  return {
    async check() {
      const value = { ts: Date.now() };
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<string>(
        (resolve) =>
          (timer = setTimeout(
            () => resolve(`store ${store.description} did not answer within ${PROBE_TIMEOUT_MS} ms`),
            PROBE_TIMEOUT_MS,
          )),
      );
      const probe = (async () => {
        await store.put(key, value);
        const back = await store.get<{ ts: number }>(key);
        return back?.ts === value.ts ? null : `store ${store.description} did not return what was written`;
      })().catch((err) => `store ${store.description} failed: ${(err as Error).message}`);
      try {
        return await Promise.race([probe, timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
    async clear() {
      await store.delete(key);
    },
  };
}

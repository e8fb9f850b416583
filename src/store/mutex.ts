/**
 * Serialises async work per key within this process. Optimistic backends use it so that concurrent
 * updates of one key from the same process queue up instead of conflicting with each other and
 * retrying; only conflicts with other processes remain.
 */
export class KeyedMutex {
  readonly #tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const prev = this.#tails.get(key);
    const result = prev ? prev.then(work, work) : work();
    const tail = result.catch(() => {});
    this.#tails.set(key, tail);
    // Forget the key once nothing is queued behind this call, so the map stays small.
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return result;
  }
}

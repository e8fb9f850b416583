/**
 * Time a test moves by hand: `now()` for TaskManager's clock, and timers (the shape of the
 * runtime's `timers` option) that fire only when `advance` passes their due time, in order. A test
 * then says "a lease of 200 ms, renewed every 100 ms, outlives 700 ms" without waiting 700 ms.
 */
export interface FakeTimer {
  id: number;
  at: number;
  every: number | null;
  fn: () => void;
}

export class FakeClock {
  #now: number;
  #seq = 0;
  readonly #timers = new Map<number, FakeTimer>();

  constructor(start = 1_800_000_000_000) {
    this.#now = start;
  }

  now = (): number => this.#now;

  readonly timers = {
    setTimeout: (fn: () => void, ms = 0): number => this.#add(fn, ms, null),
    setInterval: (fn: () => void, ms = 0): number => this.#add(fn, ms, Math.max(1, ms)),
    clearTimeout: (id: unknown): void => void this.#timers.delete(id as number),
    clearInterval: (id: unknown): void => void this.#timers.delete(id as number),
  };

  /** How many timers are waiting. */
  get pending(): number {
    return this.#timers.size;
  }

  /**
   * Moves time forward by `ms`, firing every timer that comes due on the way, in order of due time
   * (an interval as often as it comes due), and letting promises settle after each.
   */
  async advance(ms: number): Promise<void> {
    const end = this.#now + ms;
    for (;;) {
      const next = [...this.#timers.values()].sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!next || next.at > end) break;
      this.#now = next.at;
      if (next.every === null) this.#timers.delete(next.id);
      else next.at += next.every;
      next.fn();
      await settle();
    }
    this.#now = end;
    await settle();
  }

  #add(fn: () => void, ms: number, every: number | null): number {
    const id = ++this.#seq;
    this.#timers.set(id, { id, at: this.#now + Math.max(0, ms), every, fn });
    return id;
  }
}

/** Lets pending promise callbacks (and the ones they queue) run. */
export async function settle(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await Promise.resolve();
}

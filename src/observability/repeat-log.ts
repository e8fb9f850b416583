/**
 * One line for a burst of the same trouble: the first occurrence is logged, then at most one line
 * per window saying how many more there were ("998 more like this in the last 10 s"). Share one
 * instance among everything that would otherwise log the same line each (every agent of a process
 * while the store is down; every bad connection to a listener).
 */
import type { Logger } from "./log.ts";

export class RepeatLog {
  #lastAt = -Infinity;
  #held = 0;

  constructor(
    private readonly log: Logger,
    private readonly windowMs = 10_000,
    private readonly level: "warn" | "error" = "error",
  ) {}

  report(msg: string, fields?: Record<string, unknown>): void {
    const now = performance.now();
    if (now - this.#lastAt < this.windowMs) {
      this.#held++;
      return;
    }
    const more = this.#held
      ? { repeated: `${this.#held} more like this in the last ${Math.round(this.windowMs / 1000)} s` }
      : {};
    this.log[this.level](msg, { ...fields, ...more });
    this.#lastAt = now;
    this.#held = 0;
  }
}

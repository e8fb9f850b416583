/**
 * The timer behind ScheduleManager.start(): one pass, then sleep until the earliest next due time
 * over every schedule, woken early by the `schedules` channel (a schedule added or removed, here
 * or in another process). Passes never overlap within a process; a wake-up during a pass runs one
 * more pass after it. Sleeps are capped, so that a notification lost while the store reconnected
 * costs at most MAX_SLEEP_MS. Delays are measured on the manager's clock (the store's), so every
 * process wakes at the same due time and races for it; schedules.ts says why that is safe.
 */
import { type Logger, RateLimitedLog } from "../observability/log.ts";
import type { Clock } from "../store/clock.ts";

/** The longest sleep between passes. */
const MAX_SLEEP_MS = 60_000;
/** The pause after a failed pass (the store down, a corrupt record) before trying again. */
const RETRY_MS = 1000;

export interface RunnerParts {
  /** One pass; resolves with the earliest next due time (null: none). */
  tick: () => Promise<{
    submitted: { id: string }[];
    nextDueAt: number | null;
    failed: { scheduleId: string; err: unknown }[];
  }>;
  /** Subscribes to the wake-up channel; returns the unsubscribe function. */
  subscribe: (listener: () => void) => () => void;
  clock: Clock;
  log: Logger;
}

export class ScheduleRunner {
  #unsubscribe: (() => void) | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #pass: Promise<void> | undefined;
  #again = false;
  #running = false;
  readonly #failures: RateLimitedLog;

  constructor(private readonly parts: RunnerParts) {
    this.#failures = new RateLimitedLog(parts.log, { level: "warn" });
  }

  get running(): boolean {
    return this.#running;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#unsubscribe = this.parts.subscribe(() => this.#wake());
    this.#wake();
  }

  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    clearTimeout(this.#timer);
    await this.#pass;
  }

  #wake(): void {
    if (!this.#running) return;
    clearTimeout(this.#timer);
    if (this.#pass) {
      this.#again = true;
      return;
    }
    this.#pass = this.#loop().finally(() => {
      this.#pass = undefined;
    });
  }

  async #loop(): Promise<void> {
    let sleep = MAX_SLEEP_MS;
    do {
      this.#again = false;
      try {
        const { submitted, nextDueAt, failed } = await this.parts.tick();
        for (const t of submitted) this.parts.log.info("scheduled task submitted", { task: t.id });
        sleep = nextDueAt === null ? MAX_SLEEP_MS : nextDueAt - (await this.parts.clock());
        for (const f of failed) {
          this.#failures.write("a schedule's pass failed; it stays due", { schedule: f.scheduleId, err: f.err });
          sleep = Math.min(sleep, RETRY_MS);
        }
      } catch (err) {
        this.#failures.write("a pass over the schedules failed; trying again", { err });
        sleep = RETRY_MS;
      }
    } while (this.#again && this.#running);
    if (!this.#running) return;
    this.#timer = setTimeout(() => this.#wake(), Math.min(MAX_SLEEP_MS, Math.max(0, sleep)));
  }
}

/**
 * Watches a health check (a store's `health()`) every few seconds, whether or not anything serves
 * /healthz: one error line when it turns unhealthy (with the reason), one info line when it is
 * healthy again (with how long it was not), nothing while it stays either way, so that a store
 * deleted or full under a running fleet is said once, not once a second. /metrics shows the state
 * (`converge_store_healthy`, 1 or 0) and how often it turned (`converge_store_unhealthy_total`).
 */
import type { Logger } from "./log.ts";
import type { Metrics } from "./metrics.ts";

/** How often the store is checked (ms). */
export const HEALTH_WATCH_MS = 2000;

export interface HealthWatchOptions {
  /** Null when healthy, else why not, in a line for people. */
  check: () => Promise<string | null>;
  log: Logger;
  everyMs?: number;
}

export class HealthWatch {
  /** The last check's verdict: undefined before the first, then null (healthy) or the reason. */
  reason: string | null | undefined;
  /** How many times the check turned from healthy (or not yet checked) to unhealthy. */
  turnedUnhealthy = 0;
  /** Checks run. */
  checks = 0;
  readonly #options: HealthWatchOptions;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;
  #unhealthySince = 0;

  constructor(options: HealthWatchOptions) {
    this.#options = options;
  }

  /** Checks now, then every `everyMs` after each check ends. */
  start(): this {
    this.#stopped = false;
    void this.#tick();
    return this;
  }

  /** Stops checking; resolves once a check in flight has ended (so the store can close under none). */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  /** Runs one check and logs a change of state. */
  async checkNow(): Promise<void> {
    let why: string | null;
    try {
      why = await this.#options.check();
    } catch (err) {
      why = `the health check failed: ${(err as Error)?.message ?? String(err)}`;
    }
    if (this.#stopped) return; // the verdict of a check that outlived stop() is not news
    this.checks++;
    const before = this.reason;
    this.reason = why;
    if (why !== null && (before === null || before === undefined)) {
      this.turnedUnhealthy++;
      this.#unhealthySince = performance.now();
      this.#options.log.error("store unhealthy", { reason: why });
    } else if (why === null && typeof before === "string") {
      const seconds = Math.round((performance.now() - this.#unhealthySince) / 100) / 10;
      this.#options.log.info("store healthy again", { unhealthy_s: seconds });
    }
  }

  async #tick(): Promise<void> {
    this.#running = this.checkNow();
    await this.#running;
    this.#running = undefined;
    if (this.#stopped) return;
    this.#timer = setTimeout(() => void this.#tick(), this.#options.everyMs ?? HEALTH_WATCH_MS);
    this.#timer.unref?.();
  }

  addTo(m: Metrics): void {
    m.gauge("converge_store_healthy", "1 while the store's last health check passed, 0 after one failed")
      .counter("converge_store_unhealthy_total", "Times the store's health check turned from passing to failing")
      .counter("converge_store_health_checks_total", "Health checks of the store run by this process");
    if (this.reason !== undefined) m.set("converge_store_healthy", this.reason === null ? 1 : 0);
    m.increment("converge_store_unhealthy_total", undefined, this.turnedUnhealthy);
    m.increment("converge_store_health_checks_total", undefined, this.checks);
  }
}

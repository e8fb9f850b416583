/**
 * What the process costs, for /metrics: resident memory, CPU seconds, start time, and event-loop
 * lag. Lag is measured with a timer, never by blocking: every LAG_SAMPLE_MS a timeout is armed for
 * that long, and how much later than asked it fires is the lag (time the loop spent on other work,
 * a synchronous SQLite transaction, a big JSON parse, garbage collection). Samples go into a
 * histogram, and the largest of the last 10 to 20 s into a gauge. The timer is unref'd: it never
 * keeps a process alive.
 *
 * Names follow Prometheus' conventions for process metrics (`process_*`), so dashboards made for
 * other exporters work; the lag metrics are converge's own.
 */
import { Histogram, type Metrics } from "./metrics.ts";

/** How often the loop is sampled (ms). */
export const LAG_SAMPLE_MS = 100;
/** Lag bucket bounds (seconds): a millisecond to five seconds. */
export const LAG_BUCKETS: readonly number[] = Object.freeze([
  0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
]);
const MAX_WINDOW_MS = 10_000;

export class ProcessMetrics {
  readonly lag = new Histogram(LAG_BUCKETS);
  #timer: ReturnType<typeof setTimeout> | undefined;
  #due = 0;
  #windowStart = 0;
  /** Largest lag (ms) of the current window and of the one before. */
  #max = 0;
  #previousMax = 0;
  readonly #startedAt = Date.now() / 1000 - process.uptime();

  /** Starts sampling the event loop; idempotent. */
  start(): this {
    if (this.#timer) return this;
    this.#windowStart = performance.now();
    this.#arm();
    return this;
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** The largest lag seen in the last 10 to 20 s, in seconds. */
  get maxLagSeconds(): number {
    return Math.max(this.#max, this.#previousMax) / 1000;
  }

  #arm(): void {
    this.#due = performance.now() + LAG_SAMPLE_MS;
    this.#timer = setTimeout(() => this.#sample(), LAG_SAMPLE_MS);
    this.#timer.unref?.();
  }

  #sample(): void {
    const now = performance.now();
    const lagMs = Math.max(0, now - this.#due);
    this.lag.observe(lagMs / 1000);
    if (now - this.#windowStart >= MAX_WINDOW_MS) {
      this.#previousMax = this.#max;
      this.#max = 0;
      this.#windowStart = now;
    }
    if (lagMs > this.#max) this.#max = lagMs;
    this.#arm();
  }

  addTo(m: Metrics): void {
    const cpu = process.cpuUsage();
    m.gauge("process_resident_memory_bytes", "Resident memory size in bytes")
      .counter("process_cpu_seconds_total", "User and system CPU time spent, in seconds")
      .gauge("process_start_time_seconds", "Start time of the process since the Unix epoch, in seconds")
      .histogram(
        "converge_event_loop_lag_seconds",
        `How late a ${LAG_SAMPLE_MS} ms timer fired: time the event loop spent on other work`,
        LAG_BUCKETS,
      )
      .gauge("converge_event_loop_lag_max_seconds", "Largest event-loop lag in the last 10 to 20 s");
    m.set("process_resident_memory_bytes", process.memoryUsage.rss());
    m.increment("process_cpu_seconds_total", undefined, (cpu.user + cpu.system) / 1e6);
    m.set("process_start_time_seconds", Math.round(this.#startedAt));
    m.addHistogram("converge_event_loop_lag_seconds", this.lag);
    m.set("converge_event_loop_lag_max_seconds", this.maxLagSeconds);
  }
}

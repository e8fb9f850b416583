import { afterEach, expect, test } from "bun:test";
import { Metrics } from "../../src/observability/metrics.ts";
import { LAG_SAMPLE_MS, ProcessMetrics } from "../../src/observability/process-metrics.ts";
import { until } from "../support/wait.ts";

let running: ProcessMetrics | undefined;
afterEach(() => running?.stop());

function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // holds the event loop, as a long synchronous transaction would
  }
}

test("when the event loop is held for 300 ms, the lag histogram and the max gauge show at least that", async () => {
  running = new ProcessMetrics().start();
  await until(() => running!.lag.count >= 1, "a first sample", 5000);
  busy(300);
  const before = running.lag.count;
  await until(() => running!.lag.count > before, "the sample after the block", 5000);
  // The timer armed before the block fired at least 300 - LAG_SAMPLE_MS ms late.
  expect(running.maxLagSeconds).toBeGreaterThanOrEqual((300 - LAG_SAMPLE_MS) / 1000);
  const m = new Metrics();
  running.addTo(m);
  const text = m.render();
  expect(text).toContain("# TYPE converge_event_loop_lag_seconds histogram\n");
  expect(text).toMatch(/^converge_event_loop_lag_seconds_bucket\{le="0.1"\} \d+$/m);
  const inf = Number(/^converge_event_loop_lag_seconds_bucket\{le="\+Inf"\} (\d+)$/m.exec(text)![1]);
  const underTenth = Number(/^converge_event_loop_lag_seconds_bucket\{le="0.1"\} (\d+)$/m.exec(text)![1]);
  expect(inf - underTenth).toBeGreaterThanOrEqual(1); // the late sample is above 0.1 s
  expect(m.get("converge_event_loop_lag_max_seconds")).toBe(running.maxLagSeconds);
});

test("resident memory, CPU seconds and the start time are the process's own", () => {
  const m = new Metrics();
  const p = new ProcessMetrics();
  p.addTo(m);
  const cpuBefore = m.get("process_cpu_seconds_total")!;
  busy(50);
  const later = new Metrics();
  p.addTo(later);
  expect(m.get("process_resident_memory_bytes")).toBeGreaterThan(1024 * 1024);
  expect(later.get("process_cpu_seconds_total")!).toBeGreaterThan(cpuBefore);
  const start = m.get("process_start_time_seconds")!;
  expect(start).toBeLessThanOrEqual(Date.now() / 1000 + 1);
  expect(start).toBeGreaterThan(Date.now() / 1000 - process.uptime() - 2);
  expect(m.render()).toContain("# TYPE process_cpu_seconds_total counter\n");
});

test("a stopped sampler takes no more samples", async () => {
  running = new ProcessMetrics().start();
  await until(() => running!.lag.count >= 2, "two samples", 5000);
  running.stop();
  const n = running.lag.count;
  // Waiting for an event that comes after several sample periods: a timer of our own.
  await Bun.sleep(LAG_SAMPLE_MS * 3);
  expect(running.lag.count).toBe(n);
});

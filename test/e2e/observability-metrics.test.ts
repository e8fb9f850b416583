/**
 * End to end, on SQLite and on Redis: a `converge run` worker does tasks, and its /metrics shows
 * the store's tasks by state, task duration and queue wait as Prometheus histograms by capability
 * set, process metrics and the store's health; its log has one info line per finished task with
 * its attempt and duration.
 */
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { openChoice, type StoreChoice } from "../../src/cli/store-config.ts";
import { TaskManager } from "../../src/coordination/task-manager.ts";
import { startCli, stopAll } from "../support/cli.ts";
import { useE2eEnvironment } from "../support/e2e.ts";
import { until } from "../support/wait.ts";

const { tmp, redis } = useE2eEnvironment({ prefix: "converge-e2e-metrics-", redis: true, cleanup: [stopAll] });

const DOUBLE = join(import.meta.dir, "fixtures", "worker-modules", "double.js");
const N = 20;

/** One sample's value: `name{labels} value` with the labels exactly as written. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** Every bucket of a histogram series, in order: [le, cumulative count]. */
function buckets(text: string, name: string, labels: string): [string, number][] {
  const re = new RegExp(`^${name}_bucket\\{${labels},le="([^"]+)"\\} (\\d+)$`, "gm");
  return [...text.matchAll(re)].map((m) => [m[1]!, Number(m[2])]);
}

const backends: [string, () => Extract<StoreChoice, { location: string }>][] = [
  ["SQLite", () => ({ backend: "sqlite", location: join(tmp.path, "metrics.db") })],
  ["Redis", () => ({ backend: "redis", location: redis.url })],
];

describe.each(backends)("on %s", (name, choice) => {
  test("when a worker has done tasks, /metrics has them by state, their durations and waits, and the process", async () => {
    const c = choice();
    const cfg = join(tmp.path, `metrics-${name}.yaml`);
    writeFileSync(cfg, `agent: ${DOUBLE}\nstore_backend: ${c.backend}\nstore_path: ${c.location}\nhttp_port: 0\n`);
    const run = startCli(["run", "-c", cfg]);
    await run.waitFor("running, press Ctrl+C to stop");
    const url = /^health and metrics: (http:\/\/\S+)\/healthz/m.exec(run.stdout)![1]!;
    const store = await openChoice(c);
    try {
      const tasks = new TaskManager(store);
      const ids = await tasks.submitMany(
        Array.from({ length: N }, (_, i) => ({
          id: `${name}-${i}`,
          inputs: { x: i },
          requiredCapabilities: ["double"],
        })),
      );
      await until(async () => (await tasks.counts()).completed === N, `${N} tasks completed`, 20_000, 20);

      const text = await (await fetch(`${url}/metrics`)).text();
      expect(sample(text, 'converge_store_tasks{state="completed"}')).toBe(N);
      expect(sample(text, 'converge_store_tasks{state="pending"}')).toBe(0);

      const done = 'capabilities="double",outcome="completed"';
      expect(text).toContain("# TYPE converge_task_duration_seconds histogram\n");
      expect(sample(text, `converge_task_duration_seconds_count{${done}}`)).toBe(N);
      expect(sample(text, `converge_task_duration_seconds_sum{${done}}`)).toBeGreaterThanOrEqual(0);
      const d = buckets(text, "converge_task_duration_seconds", done);
      expect(d.at(-1)).toEqual(["+Inf", N]);
      for (let i = 1; i < d.length; i++) expect(d[i]![1]).toBeGreaterThanOrEqual(d[i - 1]![1]); // cumulative

      expect(text).toContain("# TYPE converge_task_queue_wait_seconds histogram\n");
      expect(sample(text, 'converge_task_queue_wait_seconds_count{capabilities="double"}')).toBe(N);
      expect(buckets(text, "converge_task_queue_wait_seconds", 'capabilities="double"').at(-1)).toEqual(["+Inf", N]);

      expect(sample(text, "process_resident_memory_bytes")).toBeGreaterThan(1024 * 1024);
      expect(sample(text, "process_cpu_seconds_total")).toBeGreaterThan(0);
      expect(text).toContain("# TYPE converge_event_loop_lag_seconds histogram\n");
      // The loop is sampled every 100 ms: a fast run may be scraped before the first sample.
      await until(
        async () => sample(await (await fetch(`${url}/metrics`)).text(), "converge_event_loop_lag_seconds_count")! > 0,
        "a first event-loop lag sample",
        5000,
        50,
      );
      expect(sample(text, "converge_event_loop_lag_max_seconds")).toBeGreaterThanOrEqual(0);
      expect(sample(text, "converge_store_healthy")).toBe(1);
      expect(sample(text, "converge_tasks_completed_total")).toBe(N); // the counters that were there stay

      // One info line per task, with its attempt and duration.
      const lines = run.stderr.split("\n").filter((l) => l.includes("worker: task completed"));
      expect(lines).toHaveLength(N);
      for (const l of lines)
        expect(l).toMatch(/ INFO {2}worker: task completed agent=\w{12} task=\S+ attempt=1 duration_ms=\d+$/);
      expect(new Set(lines.map((l) => /task=(\S+)/.exec(l)![1])).size).toBe(ids.length);
    } finally {
      await store.close();
    }
    expect(await run.stop()).toBe(0);
  });
});

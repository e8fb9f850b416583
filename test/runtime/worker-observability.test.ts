/**
 * What a worker tells about the tasks it runs: one info line per finished attempt (with its
 * attempt and duration), and, through collectMetrics, duration and queue-wait histograms by
 * capability set.
 */
import { afterEach, expect, test } from "bun:test";
import { Agent, type TaskContext } from "../../src/core/agent.ts";
import type { Task } from "../../src/core/task.ts";
import { TaskManager } from "../../src/coordination/task-manager.ts";
import { configureLogging } from "../../src/observability/log.ts";
import { Metrics } from "../../src/observability/metrics.ts";
import { collectMetrics, StoreTaskCounts } from "../../src/runtime/metrics.ts";
import { AgentRuntime } from "../../src/runtime/runtime.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import { captureLogs } from "../support/transport-util.ts";
import { until } from "../support/wait.ts";

let restore: (() => void) | undefined;
afterEach(() => {
  configureLogging({ format: "text" });
  restore?.();
  restore = undefined;
});

class Worker extends Agent {
  constructor(readonly handler: (task: Task, ctx: TaskContext) => unknown) {
    super({ capabilities: ["ocr", "pdf"] });
  }
  override onTask = (task: Task, ctx: TaskContext) => this.handler(task, ctx);
}

async function run(tm: TaskManager, handler: (task: Task) => unknown, ids: string[]): Promise<AgentRuntime> {
  const r = new AgentRuntime(new Worker(handler), { taskManager: tm });
  await r.start();
  await until(
    async () =>
      (await Promise.all(ids.map((id) => tm.get(id)))).every((t) => t?.state === "completed" || t?.state === "failed"),
    "every task finished",
  );
  return r;
}

test("a completed and a failed task each log one info line with their attempt and duration", async () => {
  const logs = captureLogs("info");
  restore = logs.restore;
  const tm = new TaskManager(new MemoryStore());
  await tm.submit({ id: "good", requiredCapabilities: ["ocr"] });
  await tm.submit({ id: "bad", requiredCapabilities: ["ocr"], constraints: { max_retries: 1, retry_backoff_ms: 0 } });
  const r = await run(
    tm,
    (t) => {
      if (t.id === "bad") throw new Error("no luck");
      return "ok";
    },
    ["good", "bad"],
  );
  await r.stop();
  const about = (id: string) => logs.lines.filter((l) => l.includes(`task=${id} `));
  expect(about("good")).toEqual([
    expect.stringMatching(/ INFO {2}worker: task completed agent=[0-9a-f]{12} task=good attempt=1 duration_ms=\d+\n$/),
  ]);
  expect(about("bad")).toEqual([
    expect.stringMatching(
      / INFO {2}worker: task attempt failed; will retry .*task=bad attempt=1 duration_ms=\d+ err=no luck\n$/,
    ),
    expect.stringMatching(/ INFO {2}worker: task failed .*task=bad attempt=2 duration_ms=\d+ err=no luck\n$/),
  ]);
});

test("in JSON the completion line carries task, attempt and duration_ms as fields", async () => {
  const logs = captureLogs("info");
  restore = logs.restore;
  configureLogging({ format: "json" });
  const tm = new TaskManager(new MemoryStore());
  await tm.submit({ id: "j" });
  const r = await run(tm, () => 1, ["j"]);
  await r.stop();
  const line = logs.lines.map((l) => JSON.parse(l)).find((e) => e.msg === "task completed");
  expect(line).toEqual(
    expect.objectContaining({
      level: "info",
      logger: "worker",
      task: "j",
      attempt: 1,
      duration_ms: expect.any(Number),
    }),
  );
});

test("/metrics has duration and queue-wait histograms by capability set and outcome, and the store's counts", async () => {
  const logs = captureLogs("warn");
  restore = logs.restore;
  const tm = new TaskManager(new MemoryStore());
  for (let i = 0; i < 5; i++) await tm.submit({ id: `p${i}`, requiredCapabilities: ["pdf", "ocr"] });
  await tm.submit({ id: "f", requiredCapabilities: ["ocr"] });
  const r = await run(
    tm,
    (t) => {
      if (t.id === "f") throw new Error("x");
      return null;
    },
    ["p0", "p1", "p2", "p3", "p4", "f"],
  );
  await r.stop();
  const m = collectMetrics([r]);
  await new StoreTaskCounts(tm).addTo(m);
  const text = m.render();
  expect(text).toContain("# TYPE converge_task_duration_seconds histogram\n");
  expect(text).toContain('converge_task_duration_seconds_count{capabilities="ocr,pdf",outcome="completed"} 5\n');
  expect(text).toContain(
    'converge_task_duration_seconds_bucket{capabilities="ocr,pdf",outcome="completed",le="+Inf"} 5\n',
  );
  expect(text).toContain('converge_task_duration_seconds_count{capabilities="ocr",outcome="failed"} 1\n');
  expect(text).toContain('converge_task_queue_wait_seconds_count{capabilities="ocr,pdf"} 5\n');
  expect(text).toContain('converge_task_queue_wait_seconds_count{capabilities="ocr"} 1\n');
  expect(text).toContain('converge_store_tasks{state="completed"} 5\n');
  expect(text).toContain('converge_store_tasks{state="failed"} 1\n');
  expect(text).toContain('converge_store_tasks{state="pending"} 0\n');
});

test("the store's counts are read at most once a second however many scrapes come", async () => {
  const tm = new TaskManager(new MemoryStore());
  let reads = 0;
  const counts = tm.counts.bind(tm);
  tm.counts = () => (reads++, counts());
  const c = new StoreTaskCounts(tm);
  await tm.submit({ id: "a" });
  const scrapes = await Promise.all(
    Array.from({ length: 50 }, async () => {
      const m = new Metrics();
      await c.addTo(m);
      return m.get("converge_store_tasks", { state: "pending" });
    }),
  );
  expect(scrapes.every((n) => n === 1)).toBe(true);
  expect(reads).toBe(1);
});

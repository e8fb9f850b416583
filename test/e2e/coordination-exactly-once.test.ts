/**
 * Exactly once across OS processes: 4 processes with 4 worker agents each share one SQLite file or
 * one Redis and race for 2,000 tasks. Every task must be handled once, reported once and completed
 * in the store with the result of the one lease that handled it.
 *
 * Handlers wait until a file exists, so each process fills its slots and no process can take all
 * the work (a warm process chaining report-and-claim-next did, once, under load): every process is
 * seen holding its full share before the file is made and the race runs free.
 */
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { TaskManager } from "../../src/coordination/task-manager.ts";
import type { Task } from "../../src/core/task.ts";
import { openChoice } from "../../src/cli/store-config.ts";
import { SqliteStore } from "../../src/store/sqlite.ts";
import { useE2eEnvironment } from "../support/e2e.ts";
import { until } from "../support/wait.ts";
import { counts, killAll, readJournals, WorkerProcess } from "./fixtures/cluster.ts";
import type { Config } from "./fixtures/coordination-worker.ts";

const PROCESSES = 4;
const AGENTS = 4;
const TASKS = 2000;
const CONCURRENCY = 2;

const { tmp, redis } = useE2eEnvironment({ prefix: "converge-e2e-once-", redis: true, cleanup: [killAll] });

async function exactlyOnce(backend: "sqlite" | "redis", location: string, outDir: string): Promise<void> {
  const store = await openChoice({ backend, location });
  const tm = new TaskManager(store);
  const workers: WorkerProcess[] = [];
  const go = join(outDir, "go");
  try {
    for (let p = 0; p < PROCESSES; p++) {
      const config: Config = {
        backend,
        location,
        name: `p${p}`,
        outDir,
        agents: Array.from({ length: AGENTS }, (_, a) => ({ name: `a${a}` })),
        concurrency: CONCURRENCY,
        pollIntervalMs: 5000,
        holdUntil: go,
        events: true,
      };
      workers.push(new WorkerProcess(config));
    }
    await Promise.all(workers.map((w) => w.ready()));
    // Submitted while every agent is already hunting for work, in concurrent batches.
    for (let i = 0; i < TASKS; i += 50) {
      await Promise.all(
        Array.from({ length: 50 }, (_, j) =>
          tm.submit({ id: `t${String(i + j).padStart(4, "0")}`, inputs: { x: i + j } }),
        ),
      );
    }
    const full = AGENTS * CONCURRENCY;
    await until(() => workers.every((w) => w.starts().length >= full), `every process to hold ${full} tasks`, 20_000);
    expect(workers.map((w) => w.starts().length)).toEqual(workers.map(() => full)); // no more than its slots
    writeFileSync(go, "");
    await until(async () => (await tm.openTasks()).length === 0, "every task to be final", 50_000, 50);
    const codes = await Promise.all(workers.map((w) => w.stop()));
    expect(codes).toEqual(workers.map(() => 0));

    const journal = readJournals(outDir);
    const handled = journal.filter((l) => l.kind === "H");
    const reported = journal.filter((l) => l.kind === "R");
    expect(journal.filter((l) => l.kind === "L")).toEqual([]);
    expect(handled.length).toBe(TASKS);
    expect(counts(handled.map((l) => l.task)).size).toBe(TASKS);
    expect(reported.length).toBe(TASKS);
    expect(counts(reported.map((l) => l.task)).size).toBe(TASKS);
    // Every process took part.
    expect(new Set(handled.map((l) => l.who.split(".")[0])).size).toBe(PROCESSES);

    const byTask = new Map(handled.map((l) => [l.task, l]));
    const tasks = (await Promise.all(
      Array.from({ length: TASKS }, (_, i) => tm.get(`t${String(i).padStart(4, "0")}`)),
    )) as Task[];
    for (const t of tasks) {
      expect(t.state).toBe("completed");
      expect(t.attempts).toBe(1);
      const h = byTask.get(t.id)!;
      const r = t.result as { doubled: number; agent: string; attempt: number; token: string };
      expect(r.doubled).toBe(Number(t.inputs.x) * 2);
      expect(r.token).toBe(h.token);
      expect(h.who.endsWith(`.${r.agent}`)).toBe(true);
    }
  } finally {
    await Promise.all(workers.map((w) => w.stop(2000)));
    await store.close();
  }
}

describe("exactly once across processes", () => {
  test("sqlite: 4 processes x 4 agents complete 2,000 tasks, each exactly once", async () => {
    const path = join(tmp.path, "once.db");
    await new SqliteStore(path).close(); // the schema, once, before the race
    await exactlyOnce("sqlite", path, join(tmp.path, "sqlite-out"));
  }, 60_000);

  test("redis: 4 processes x 4 agents complete 2,000 tasks, each exactly once", async () => {
    await exactlyOnce("redis", `${redis.url.replace(/\/0$/, "")}/1`, join(tmp.path, "redis-out"));
  }, 60_000);
});

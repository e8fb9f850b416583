/**
 * Scoping across OS processes: tasks with `poolId` or `requiredCapabilities` are claimed only by
 * eligible agents, whatever mix of agents two processes host; unscoped tasks go to anyone.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { TaskManager } from "../../src/coordination/task-manager.ts";
import type { Task, TaskInit } from "../../src/core/task.ts";
import { openChoice } from "../../src/cli/store-config.ts";
import { SqliteStore } from "../../src/store/sqlite.ts";
import { useE2eEnvironment } from "../support/e2e.ts";
import { until } from "../support/wait.ts";
import { counts, killAll, readJournals, WorkerProcess } from "./fixtures/cluster.ts";
import type { AgentSpec } from "./fixtures/coordination-worker.ts";

const { tmp } = useE2eEnvironment({ prefix: "converge-e2e-scoping-", cleanup: [killAll] });

const PROCESSES: Record<string, AgentSpec[]> = {
  p0: [{ name: "gpu", capabilities: ["gpu"] }, { name: "red", pools: ["red"] }, { name: "plain" }],
  p1: [
    { name: "gpu-ssd", capabilities: ["gpu", "ssd"] },
    { name: "blue", pools: ["blue"] },
    { name: "red-ssd", capabilities: ["ssd"], pools: ["red"] },
  ],
};

const KINDS: { name: string; scope: Pick<TaskInit, "poolId" | "requiredCapabilities">; eligible: string[] }[] = [
  { name: "any", scope: {}, eligible: ["p0.gpu", "p0.red", "p0.plain", "p1.gpu-ssd", "p1.blue", "p1.red-ssd"] },
  { name: "gpu", scope: { requiredCapabilities: ["gpu"] }, eligible: ["p0.gpu", "p1.gpu-ssd"] },
  { name: "gpu+ssd", scope: { requiredCapabilities: ["gpu", "ssd"] }, eligible: ["p1.gpu-ssd"] },
  { name: "red", scope: { poolId: "red" }, eligible: ["p0.red", "p1.red-ssd"] },
  { name: "blue", scope: { poolId: "blue" }, eligible: ["p1.blue"] },
  { name: "red+ssd", scope: { poolId: "red", requiredCapabilities: ["ssd"] }, eligible: ["p1.red-ssd"] },
];

test("sqlite, two processes: pool and capability scoped tasks are only ever claimed by eligible agents", async () => {
  const path = join(tmp.path, "scoping.db");
  await new SqliteStore(path).close();
  const outDir = join(tmp.path, "out");
  const store = await openChoice({ backend: "sqlite", location: path });
  const tm = new TaskManager(store);
  const workers = Object.entries(PROCESSES).map(
    ([name, agents]) =>
      new WorkerProcess({ backend: "sqlite", location: path, name, outDir, agents, concurrency: 2, delayMs: 2 }),
  );
  const PER_KIND = 40;
  try {
    await Promise.all(workers.map((w) => w.ready()));
    const kindOf = new Map<string, (typeof KINDS)[number]>();
    // Interleaved, so every agent sees scoped work it must leave alone next to work it may take.
    for (let i = 0; i < PER_KIND; i++) {
      for (const k of KINDS) {
        const t = await tm.submit({ id: `${k.name}-${i}`, inputs: { x: i }, ...k.scope });
        kindOf.set(t.id, k);
      }
    }
    const N = PER_KIND * KINDS.length;
    await until(async () => (await tm.openTasks()).length === 0, "every task to be final", 20_000, 50);
    expect(await Promise.all(workers.map((w) => w.stop()))).toEqual([0, 0]);

    const handled = readJournals(outDir).filter((l) => l.kind === "H");
    expect(handled.length).toBe(N);
    expect(counts(handled.map((l) => l.task)).size).toBe(N);
    const wrong = handled.filter((l) => !kindOf.get(l.task)!.eligible.includes(l.who));
    expect(wrong).toEqual([]);
    for (const id of kindOf.keys()) expect(((await tm.get(id)) as Task).state).toBe("completed");
    // The unscoped tasks were shared: more than one agent took some.
    expect(new Set(handled.filter((l) => l.task.startsWith("any-")).map((l) => l.who)).size).toBeGreaterThan(1);
  } finally {
    await Promise.all(workers.map((w) => w.stop(2000)));
    await store.close();
  }
}, 30_000);

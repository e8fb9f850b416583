/**
 * Wake-ups across OS processes: a task submitted here is picked up by an idle agent in another
 * process promptly. The worker polls only every 5 s, so a pickup well under that can only come
 * from the store's wake-up path (Redis pub/sub; SQLite's data_version check).
 * Also the edges of that path: work pending before a runtime starts is taken by its first pass,
 * a wake-up sent while a new Redis subscription is still being set up is not lost, and a pass
 * that follows a wake-up reads the open tasks afresh rather than sharing a read begun before it.
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { TaskManager } from "../../src/coordination/task-manager.ts";
import { Agent } from "../../src/core/agent.ts";
import type { Message } from "../../src/core/message.ts";
import type { Task } from "../../src/core/task.ts";
import { AgentRuntime } from "../../src/runtime/runtime.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import { RedisStore } from "../../src/store/redis.ts";
import { openChoice } from "../../src/cli/store-config.ts";
import { SqliteStore } from "../../src/store/sqlite.ts";
import { useE2eEnvironment } from "../support/e2e.ts";
import { killAll, WorkerProcess } from "./fixtures/cluster.ts";

const POLL_MS = 5000;
const PICKUPS = 5;

const { tmp, redis } = useE2eEnvironment({ prefix: "converge-e2e-wakeup-", redis: true, cleanup: [killAll] });

const clock = () => performance.timeOrigin + performance.now();

describe("wake-ups across processes", () => {
  for (const backend of ["sqlite", "redis"] as const) {
    test(`${backend}: an idle agent in another process picks up a new task within 500 ms (its poll is ${POLL_MS} ms)`, async () => {
      const location = backend === "redis" ? `${redis.url.replace(/\/0$/, "")}/1` : join(tmp.path, "wakeup.db");
      if (backend === "sqlite") await new SqliteStore(location).close();
      const store = await openChoice({ backend, location });
      const tm = new TaskManager(store);
      const w = new WorkerProcess({
        backend,
        location,
        name: "p0",
        outDir: join(tmp.path, `out-${backend}`),
        agents: [{ name: "a0" }, { name: "a1" }],
        pollIntervalMs: POLL_MS,
        releaseIntervalMs: 60_000,
        events: true,
      });
      try {
        await w.ready();
        const latencies: number[] = [];
        for (let i = 0; i < PICKUPS; i++) {
          const submitted = clock();
          await tm.submit({ id: `t${i}`, inputs: { x: i } });
          const start = await w.waitFor((e) => e.event === "start" && e.task === `t${i}`, POLL_MS * 2);
          latencies.push((start as { at: number }).at - submitted);
        }
        for (const ms of latencies) expect(ms).toBeLessThan(500);
      } finally {
        await w.stop(2000);
        await store.close();
      }
    }, 30_000);
  }
});

describe("wake-ups at start", () => {
  const POLL = 5000;
  class Idle extends Agent {
    taken: string[] = [];
    firstDecide = Promise.withResolvers<void>();
    override decide(_m: readonly Message[], _t: readonly Task[]) {
      this.firstDecide.resolve();
      return [];
    }
    override onTask = (task: Task) => void this.taken.push(task.id);
  }

  test("redis: a wake-up published right after subscribing, before the server registered the subscription, is not lost", async () => {
    // A runtime subscribes to "tasks" on start and then makes its first pass; a task submitted
    // elsewhere between that pass and the SUBSCRIBE reaching Redis must still wake it.
    const location = `${redis.url.replace(/\/0$/, "")}/2`;
    let missed = 0;
    for (let i = 0; i < 5; i++) {
      const mine = await RedisStore.open(location);
      const other = await RedisStore.open(location);
      try {
        const woken = Promise.withResolvers<boolean>();
        mine.subscribe("tasks", () => woken.resolve(true));
        await other.notify("tasks");
        const timer = setTimeout(() => woken.resolve(false), 1000);
        if (!(await woken.promise)) missed++;
        clearTimeout(timer);
      } finally {
        await mine.close();
        await other.close();
      }
    }
    expect(missed).toBe(0);
  }, 15_000);

  for (const backend of ["sqlite", "redis"] as const) {
    test(`${backend}: a runtime's first pass takes work that was pending before it started, without waiting for its poll`, async () => {
      const location = backend === "redis" ? `${redis.url.replace(/\/0$/, "")}/3` : join(tmp.path, "before-start.db");
      const tm = new TaskManager(await openChoice({ backend, location }));
      const agent = new Idle();
      const runtime = new AgentRuntime(agent, { taskManager: tm, pollIntervalMs: POLL, releaseIntervalMs: 60_000 });
      try {
        await tm.submit({ id: "waiting" });
        const t0 = Date.now();
        await runtime.start();
        while (!agent.taken.includes("waiting") && Date.now() - t0 < POLL + 1000) await Bun.sleep(5);
        expect(agent.taken).toEqual(["waiting"]);
        expect(Date.now() - t0).toBeLessThan(500);
      } finally {
        await runtime.stop();
        await tm.store.close();
      }
    }, 15_000);
  }
});

describe("shared open-task reads", () => {
  // Agents of one process share open-task reads. An agent woken by a submit must not be handed a
  // read that began before the submit: it would see nothing, go idle, and leave the task to its poll.
  class SlowIndex extends MemoryStore {
    gate: Promise<void> | undefined;
    override async indexMembers(index: string): Promise<string[]> {
      const members = await super.indexMembers(index);
      await this.gate; // the read has its members and is still in flight
      return members;
    }
  }

  test("after a submit through the same task manager, a listing does not share a read begun before it", async () => {
    const store = new SlowIndex();
    const tm = new TaskManager(store);
    const release = Promise.withResolvers<void>();
    store.gate = release.promise;
    const early = tm.openTasks();
    await Bun.sleep(1); // the early read is under way
    store.gate = undefined;
    await tm.submit({ id: "new" });
    const late = tm.pendingFor("agent");
    release.resolve();
    expect((await early).map((t) => t.id)).toEqual([]);
    expect((await late).map((t) => t.id)).toEqual(["new"]);
    await store.close();
  });

  test("after a wake-up for a task submitted elsewhere, a runtime's pass does not share a read begun before it", async () => {
    const store = new SlowIndex();
    const mine = new TaskManager(store);
    const elsewhere = new TaskManager(store); // another process, as far as this task manager knows
    const seen: string[][] = [];
    class Watcher extends Agent {
      override decide(_m: readonly Message[], tasks: readonly Task[]) {
        seen.push(tasks.map((t) => t.id));
        return [];
      }
    }
    const runtime = new AgentRuntime(new Watcher(), {
      taskManager: mine,
      pollIntervalMs: 5000,
      releaseIntervalMs: 60_000,
    });
    const release = Promise.withResolvers<void>();
    try {
      await runtime.start();
      while (seen.length === 0) await Bun.sleep(1); // the first pass is over
      store.gate = release.promise;
      const early = mine.openTasks(); // e.g. another agent's pass, under way
      await Bun.sleep(1);
      store.gate = undefined;
      await elsewhere.submit({ id: "new" });
      const t0 = Date.now();
      while (!seen.some((ids) => ids.includes("new")) && Date.now() - t0 < 1000) await Bun.sleep(2);
      expect(seen.at(-1)).toEqual(["new"]); // seen while the early read is still held up
      release.resolve();
      expect(await early).toEqual([]);
    } finally {
      release.resolve();
      await runtime.stop();
      await store.close();
    }
  });
});

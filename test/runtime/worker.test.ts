import { describe, expect, test } from "bun:test";
import { Agent, type TaskContext } from "../../src/core/agent.ts";
import type { Task } from "../../src/core/task.ts";
import { TaskManager } from "../../src/coordination/task-manager.ts";
import { AgentRuntime } from "../../src/runtime/runtime.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import { FakeClock } from "../support/fake-clock.ts";
import { captureLogs } from "../support/transport-util.ts";
import { until } from "../support/wait.ts";

class Worker extends Agent {
  handled: string[] = [];
  constructor(readonly handler: (task: Task, ctx: TaskContext) => unknown) {
    super();
  }
  override onTask = (task: Task, ctx: TaskContext) => {
    this.handled.push(task.id);
    return this.handler(task, ctx);
  };
}

const finalStates = async (tm: TaskManager) => (await tm.list()).map((t) => t.state);

describe("task workers", () => {
  test("workers complete every task exactly once with the handler's result", async () => {
    const tm = new TaskManager(new MemoryStore());
    const workers = Array.from({ length: 4 }, () => new Worker((t) => ({ doubled: Number(t.inputs.x) * 2 })));
    const runtimes = workers.map((w) => new AgentRuntime(w, { taskManager: tm, concurrency: 3 }));
    await Promise.all(runtimes.map((r) => r.start()));
    try {
      for (let i = 0; i < 200; i++) await tm.submit({ id: `t${i}`, inputs: { x: i } });
      await until(async () => (await finalStates(tm)).every((s) => s === "completed"), "all tasks completed");
      const handled = workers.flatMap((w) => w.handled);
      expect(handled.length).toBe(200);
      expect(new Set(handled).size).toBe(200);
      for (const t of await tm.list()) expect(t.result).toEqual({ doubled: Number(t.inputs.x) * 2 });
    } finally {
      await Promise.all(runtimes.map((r) => r.stop()));
    }
  });

  test("when the store is closed under a running handler, its outcome is given up at once, not retried", async () => {
    const store = new MemoryStore();
    let reports = 0;
    const tm = new (class extends TaskManager {
      override reportAndClaim(...args: Parameters<TaskManager["reportAndClaim"]>) {
        reports++;
        return super.reportAndClaim(...args);
      }
    })(store);
    const gate = Promise.withResolvers<void>();
    let started = false;
    const r = new AgentRuntime(
      new Worker(async () => {
        started = true;
        await gate.promise;
        return "done";
      }),
      { taskManager: tm },
    );
    const logs = captureLogs("warn");
    await r.start();
    try {
      await tm.submit({ id: "t" });
      await until(() => started, "the handler to start");
      await store.close();
      gate.resolve();
      await until(() => logs.lines.some((l) => l.includes("could not record")), "the outcome to be given up", 2000);
      await Bun.sleep(350); // a retry would have come after 100 ms, then 200 ms
      expect(reports).toBe(1);
      expect(logs.lines.filter((l) => l.includes("could not record"))).toEqual([
        expect.stringContaining("ERROR worker: could not record the task's outcome; its lease will expire"),
      ]);
    } finally {
      logs.restore();
      await r.stop();
    }
  });

  test("no more than `concurrency` handlers run at once", async () => {
    const clock = new FakeClock();
    const tm = new TaskManager(new MemoryStore(), { clock: clock.now });
    let now = 0;
    let peak = 0;
    const w = new Worker(async () => {
      peak = Math.max(peak, ++now);
      await new Promise<void>((done) => clock.timers.setTimeout(() => done(), 10)); // 10 ms of the test's time
      now--;
    });
    const r = new AgentRuntime(w, { taskManager: tm, concurrency: 3, timers: clock.timers });
    await r.start();
    try {
      for (let i = 0; i < 20; i++) await tm.submit({});
      // Handlers, not claims: a claimed task's handler starts once the event loop has had its turn.
      await until(() => now === 3, "three handlers running");
      for (let step = 0; step < 200 && (await finalStates(tm)).some((s) => s !== "completed"); step++) {
        await clock.advance(10);
        const refilled = async () => now === 3 || (await tm.counts()).pending === 0;
        await until(refilled, "the freed slots filled");
      }
      expect(await finalStates(tm)).toEqual(Array.from({ length: 20 }, () => "completed"));
      expect(peak).toBe(3);
    } finally {
      await r.stop();
    }
  });

  test("long tasks are renewed at half their lease and never taken over", async () => {
    const clock = new FakeClock();
    const tm = new TaskManager(new MemoryStore(), { clock: clock.now });
    let started = false;
    const w = new Worker(async () => {
      started = true;
      await new Promise<void>((done) => clock.timers.setTimeout(() => done(), 700)); // over three leases of 200 ms
      return "done";
    });
    const r = new AgentRuntime(w, { taskManager: tm, timers: clock.timers });
    await r.start();
    try {
      await tm.submit({ id: "long", constraints: { claim_ttl_sec: 0.2 } });
      await until(() => started, "the handler");
      for (let elapsed = 0; elapsed < 700; elapsed += 50) {
        await clock.advance(50);
        // The reaper, at this moment: a lease not renewed in time would go back to pending here.
        expect(await tm.releaseExpiredClaims(clock.now())).toEqual([]);
      }
      await until(async () => (await tm.get("long"))!.state === "completed", "the long task");
      const t = (await tm.get("long"))!;
      expect(t.attempts).toBe(1);
      expect(w.handled).toEqual(["long"]);
      expect(r.worker!.stats.leasesRenewed).toBeGreaterThanOrEqual(6); // every 100 ms of the 700
    } finally {
      await r.stop();
    }
  });

  test("a lost lease aborts the handler's signal and nothing is reported", async () => {
    const tm = new TaskManager(new MemoryStore());
    let aborted = false;
    const w = new Worker(async (_t, ctx) => {
      await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve()));
      aborted = true;
      return "too late";
    });
    const r = new AgentRuntime(w, { taskManager: tm });
    await r.start();
    try {
      await tm.submit({ id: "t", constraints: { claim_ttl_sec: 0.1 } });
      await until(async () => (await tm.get("t"))!.state === "assigned", "the claim");
      // another holder takes over, as after an expiry elsewhere
      await tm.store.update("task:t", (t: any) => ({ ...t, leaseToken: "someone-else", assignedTo: "other" }));
      await until(() => aborted, "the abort signal");
      await until(() => r.worker!.running.size === 0, "the handler to finish");
      const t = (await tm.get("t"))!;
      expect(t.state).toBe("assigned");
      expect(t.assignedTo).toBe("other");
      expect(r.worker!.stats.leasesLost).toBe(1);
      expect(r.worker!.stats.completed).toBe(0);
    } finally {
      await r.stop();
    }
  });

  test("a handler that fails twice then succeeds completes on the third attempt with max_retries 2", async () => {
    const tm = new TaskManager(new MemoryStore(), { retryBackoffMs: 10 });
    let calls = 0;
    const w = new Worker(() => {
      if (++calls <= 2) throw new Error(`flaky ${calls}`);
      return "ok";
    });
    const r = new AgentRuntime(w, { taskManager: tm, pollIntervalMs: 20 });
    await r.start();
    try {
      await tm.submit({ id: "t", constraints: { max_retries: 2 } });
      await until(async () => (await tm.get("t"))!.state === "completed", "completion");
      expect((await tm.get("t"))!.attempts).toBe(3);
      expect(r.worker!.stats.retried).toBe(2);
    } finally {
      await r.stop();
    }
  });

  test("with max_retries 1 the same handler ends failed with its error's message", async () => {
    const tm = new TaskManager(new MemoryStore(), { retryBackoffMs: 10 });
    let calls = 0;
    const w = new Worker(() => {
      throw new Error(`flaky ${++calls}`);
    });
    const r = new AgentRuntime(w, { taskManager: tm, pollIntervalMs: 20 });
    await r.start();
    try {
      await tm.submit({ id: "t", constraints: { max_retries: 1 } });
      await until(async () => (await tm.get("t"))!.state === "failed", "failure");
      const t = (await tm.get("t"))!;
      expect(t.error).toBe("flaky 2");
      expect(t.attempts).toBe(2);
    } finally {
      await r.stop();
    }
  });

  test("stop drains: unfinished handlers are aborted after the grace period and their tasks go back to pending", async () => {
    const tm = new TaskManager(new MemoryStore());
    const w = new Worker(async (t, ctx) => {
      if (t.inputs.quick) return "quick";
      await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
    });
    const r = new AgentRuntime(w, { taskManager: tm, concurrency: 3, shutdownGraceMs: 100 });
    await r.start();
    await tm.submit({ id: "slow1" });
    await tm.submit({ id: "slow2" });
    await until(() => r.worker!.running.size === 2, "both slow tasks running");
    await r.stop();
    for (const id of ["slow1", "slow2"]) {
      const t = (await tm.get(id))!;
      expect(t.state).toBe("pending");
      expect(t.attempts).toBe(0);
    }
    expect(r.worker!.stats.released).toBe(2);
  });
});

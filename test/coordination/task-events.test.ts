/**
 * TaskManager.waitFor and TaskManager.on (coordination/task-events.ts): in one process on the
 * memory store, and across two handles on one SQLite file and one Redis (the waiter's manager and
 * the worker's manager share nothing but the store).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { NotFoundError, StoreClosedError, WaitTimeoutError } from "../../src/core/errors.ts";
import type { Task } from "../../src/core/task.ts";
import { FINISHED_CHANNEL } from "../../src/coordination/task-events.ts";
import { TaskManager } from "../../src/coordination/task-manager.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import { RedisStore } from "../../src/store/redis.ts";
import { SqliteStore } from "../../src/store/sqlite.ts";
import type { Store } from "../../src/store/store.ts";
import { startRedis } from "../support/redis.ts";
import { captureLogs } from "../support/transport-util.ts";
import { tempDir } from "../support/tmp.ts";

const tmp = tempDir("converge-task-events-");
const redis = await startRedis();
afterAll(async () => {
  await redis.stop();
  tmp.cleanup();
});

/** Claims the task and finishes it as `how` says, as a worker (or an operator) would. */
async function finish(tm: TaskManager, id: string, how: "completed" | "failed" | "cancelled"): Promise<void> {
  if (how === "cancelled") return void (await tm.cancel(id));
  const lease = (await tm.claim(id, "worker"))!;
  const holder = { agentId: "worker", token: lease.token };
  if (how === "completed") await tm.report(id, { done: id }, holder);
  else await tm.fail(id, `${id} broke`, holder);
}

describe("waitFor and events in one process (memory)", () => {
  test("when a task completes, fails or is cancelled, waitFor resolves with the finished record", async () => {
    const tm = new TaskManager(new MemoryStore());
    for (const id of ["ok", "bad", "gone"]) await tm.submit({ id });
    const waits = ["ok", "bad", "gone"].map((id) => tm.waitFor(id));
    await finish(tm, "ok", "completed");
    await finish(tm, "bad", "failed");
    await finish(tm, "gone", "cancelled");
    const [ok, bad, gone] = await Promise.all(waits);
    expect(ok!.state).toBe("completed");
    expect(ok!.result).toEqual({ done: "ok" });
    expect(bad!.state).toBe("failed");
    expect(bad!.error).toBe("bad broke");
    expect(gone!.state).toBe("cancelled");
  });

  test("when the task is already finished, waitFor resolves at once", async () => {
    const tm = new TaskManager(new MemoryStore());
    await tm.submit({ id: "t" });
    await finish(tm, "t", "completed");
    expect((await tm.waitFor("t")).state).toBe("completed");
  });

  test("when time runs out, waitFor rejects with WaitTimeoutError naming the task and its state", async () => {
    const tm = new TaskManager(new MemoryStore());
    await tm.submit({ id: "slow" });
    const err = await tm.waitFor("slow", { timeoutMs: 30 }).catch((e) => e);
    expect(err).toBeInstanceOf(WaitTimeoutError);
    expect(err.exitCode).toBe(124);
    expect(err.taskId).toBe("slow");
    expect(err.state).toBe("pending");
    expect(err.message).toBe('task "slow" did not finish within 30 ms (it is pending)');
  });

  test("when the signal aborts, waitFor rejects with its reason; an unknown task is NotFoundError", async () => {
    const tm = new TaskManager(new MemoryStore());
    await tm.submit({ id: "t" });
    const abort = new AbortController();
    const waiting = tm.waitFor("t", { signal: abort.signal });
    abort.abort(new Error("no longer needed"));
    await expect(waiting).rejects.toThrow("no longer needed");
    await expect(tm.waitFor("t", { signal: abort.signal })).rejects.toThrow("no longer needed");
    await expect(tm.waitFor("nope")).rejects.toBeInstanceOf(NotFoundError);
  });

  test("a retried attempt does not end the wait; the last failure does", async () => {
    const tm = new TaskManager(new MemoryStore(), { retryBackoffMs: 0 });
    await tm.submit({ id: "t", constraints: { max_retries: 1 } });
    const waiting = tm.waitFor("t");
    const first = (await tm.claim("t", "w"))!;
    expect((await tm.fail("t", "first", { agentId: "w", token: first.token })).state).toBe("pending");
    const second = (await tm.claim("t", "w"))!;
    await tm.fail("t", "second", { agentId: "w", token: second.token });
    const done = await waiting;
    expect([done.state, done.error, done.attempts]).toEqual(["failed", "second", 2]);
  });

  test("listeners hear each task that reaches their state once, and nothing after unsubscribing", async () => {
    // Events start at the moment of subscribing, to the millisecond: the clock moves on between phases.
    let now = 1_800_000_000_000;
    const tm = new TaskManager(new MemoryStore(), { clock: () => now });
    const heard: string[] = [];
    const offs: (() => void)[] = [];
    const all = new Promise<void>((resolve) => {
      const note = (t: Task) => {
        heard.push(`${t.state} ${t.id}`);
        if (heard.length === 3) resolve();
      };
      offs.push(tm.on("completed", note), tm.on("failed", note), tm.on("cancelled", note));
    });
    for (const id of ["a", "b", "c", "d"]) await tm.submit({ id });
    await finish(tm, "a", "completed");
    await finish(tm, "b", "failed");
    await finish(tm, "c", "cancelled");
    await all;
    expect(heard.sort()).toEqual(["cancelled c", "completed a", "failed b"]);
    for (const off of offs) off();
    now += 1000;
    // A throwing listener is logged and the others still hear.
    const later: string[] = [];
    const off = tm.on("completed", () => {
      throw new Error("listener bug");
    });
    const next = new Promise<void>((resolve) =>
      tm.on("completed", (t) => {
        later.push(t.id);
        resolve();
      }),
    );
    await finish(tm, "d", "completed");
    await next;
    off();
    expect(later).toEqual(["d"]);
    expect(heard.length).toBe(3);
  });

  test("an unknown event name is refused", () => {
    const tm = new TaskManager(new MemoryStore());
    expect(() => tm.on("done" as never, () => {})).toThrow(/unknown task event "done"/);
  });

  test("finished wake-ups are coalesced: many reports in a burst send few, and settle sends the last", async () => {
    const store = new MemoryStore();
    const tm = new TaskManager(store);
    let wakes = 0;
    store.subscribe(FINISHED_CHANNEL, () => wakes++);
    const ids = Array.from({ length: 200 }, (_, i) => `t${i}`);
    for (const id of ids) await tm.submit({ id });
    const leases = await tm.claimNext("w", {}, 200);
    await Promise.all(leases.map((l) => tm.report(l.taskId, 1, { agentId: "w", token: l.token })));
    await tm.settle();
    expect(wakes).toBeGreaterThanOrEqual(1);
    expect(wakes).toBeLessThanOrEqual(2);
  });
});

const shared: [string, () => Promise<[Store, Store]>][] = [
  [
    "sqlite",
    async () => {
      const path = join(tmp.path, `events-${Math.random()}.db`);
      return [new SqliteStore(path), new SqliteStore(path)];
    },
  ],
  [
    "redis",
    async () => {
      const namespace = `{ev${Math.random()}}:`;
      return [await RedisStore.open(redis.url, { namespace }), await RedisStore.open(redis.url, { namespace })];
    },
  ],
];

for (const [name, open] of shared) {
  describe(`waitFor and events across two handles (${name})`, () => {
    test("when a worker on another handle finishes tasks, the waiter's waitFor and listeners hear it", async () => {
      const [a, b] = await open();
      try {
        const producer = new TaskManager(a);
        const worker = new TaskManager(b);
        const ids = Array.from({ length: 30 }, (_, i) => `x${i}`);
        await producer.submitMany(ids.map((id) => ({ id })));
        const heard = new Set<string>();
        const allHeard = new Promise<void>((resolve) =>
          producer.on("completed", (t) => {
            heard.add(t.id);
            if (heard.size === ids.length - 1) resolve();
          }),
        );
        const failed = producer.waitFor("x0");
        const waits = Promise.all(ids.slice(1).map((id) => producer.waitFor(id, { timeoutMs: 20_000 })));
        await finish(worker, "x0", "failed");
        for (const id of ids.slice(1)) await finish(worker, id, "completed");
        await worker.settle();
        expect((await failed).error).toBe("x0 broke");
        expect((await waits).map((t) => t.state)).toEqual(ids.slice(1).map(() => "completed"));
        await allHeard;
        expect([...heard].sort()).toEqual(ids.slice(1).sort());
      } finally {
        await a.close();
        await b.close();
      }
    });

    test("when the store is closed under a waiter, it rejects with StoreClosedError and nothing is logged", async () => {
      const [a, b] = await open();
      const logs = captureLogs("warn");
      try {
        const producer = new TaskManager(a);
        await producer.submit({ id: "c" });
        producer.on("completed", () => {});
        const outcome = producer.waitFor("c").then(
          () => "resolved",
          (err: unknown) => err,
        );
        await a.close();
        expect(await outcome).toBeInstanceOf(StoreClosedError);
        await Bun.sleep(1200); // past the sweep, which would have read the closed store again
        // Only this follower's lines: a rate-limited summary from an earlier test file may land meanwhile.
        expect(logs.lines.filter((l) => / tasks: /.test(l))).toEqual([]);
      } finally {
        logs.restore();
        await b.close();
      }
    });

    test("when the awaited task is removed, waitFor rejects with NotFoundError", async () => {
      const [a, b] = await open();
      try {
        const producer = new TaskManager(a);
        const other = new TaskManager(b);
        await producer.submit({ id: "r" });
        const lease = (await other.claim("r", "w"))!;
        await other.report("r", 1, { agentId: "w", token: lease.token });
        // Finished and removed before anyone waits for it: there is nothing to wait for.
        expect(await other.queue.remove(["r"])).toBe(1);
        await expect(producer.waitFor("r")).rejects.toThrow('task "r" does not exist');
      } finally {
        await a.close();
        await b.close();
      }
    });
  });
}

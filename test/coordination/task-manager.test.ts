import { describe, expect, test } from "bun:test";
import { LeaseLostError, TaskStateError } from "../../src/core/errors.ts";
import { TASKS_CHANNEL, TaskManager } from "../../src/coordination/task-manager.ts";
import { MemoryStore } from "../../src/store/memory.ts";

const setup = (opts = {}) => {
  const store = new MemoryStore();
  return { store, tm: new TaskManager(store, opts) };
};

describe("TaskManager", () => {
  test("submit stores a pending task and refuses a duplicate id", async () => {
    const { tm } = setup();
    const t = await tm.submit({ id: "t1", objective: "x", inputs: { a: 1 } });
    expect(t.state).toBe("pending");
    expect((await tm.get("t1"))!.inputs).toEqual({ a: 1 });
    await expect(tm.submit({ id: "t1" })).rejects.toThrow(/already exists/);
  });

  test("submit wakes subscribers of the tasks channel", async () => {
    const { store, tm } = setup();
    const woke = new Promise<void>((resolve) => store.subscribe(TASKS_CHANNEL, resolve));
    await tm.submit({});
    await woke;
  });

  test("of many concurrent claimers exactly one wins", async () => {
    const { tm } = setup();
    await tm.submit({ id: "t" });
    const leases = await Promise.all(Array.from({ length: 20 }, (_, i) => tm.claim("t", `agent-${i}`)));
    const winners = leases.filter((l) => l !== null);
    expect(winners.length).toBe(1);
    const t = (await tm.get("t"))!;
    expect(t.state).toBe("assigned");
    expect(t.assignedTo).toBe(winners[0]!.task.assignedTo);
    expect(t.attempts).toBe(1);
  });

  test("report needs the current lease token", async () => {
    const { tm } = setup();
    await tm.submit({ id: "t" });
    const lease = (await tm.claim("t", "a"))!;
    await expect(tm.report("t", 1, { agentId: "a", token: "forged" })).rejects.toThrow(LeaseLostError);
    await expect(tm.report("t", 1, { agentId: "b" })).rejects.toThrow(/only its assignee/);
    const done = await tm.report("t", { ok: true }, { agentId: "a", token: lease.token });
    expect(done.state).toBe("completed");
    expect(done.result).toEqual({ ok: true });
    await expect(tm.report("t", 2, { agentId: "a", token: lease.token })).rejects.toThrow(LeaseLostError);
  });

  test("an expired lease goes back to pending and its old holder can no longer report or fail", async () => {
    const { tm } = setup();
    await tm.submit({ id: "t", constraints: { claim_ttl_sec: 1 } });
    const old = (await tm.claim("t", "a"))!;
    expect(old.expiresAt).toBe(old.task.claimedAt! + 1000);
    expect(await tm.releaseExpiredClaims(old.expiresAt! - 1)).toEqual([]);
    expect(await tm.releaseExpiredClaims(old.expiresAt!)).toEqual(["t"]);
    const fresh = (await tm.claim("t", "b"))!;
    expect(fresh.task.attempts).toBe(2);
    await expect(tm.report("t", "stale", { agentId: "a", token: old.token })).rejects.toThrow(/lease lost/);
    await expect(tm.fail("t", "stale", { agentId: "a", token: old.token })).rejects.toThrow(LeaseLostError);
    await expect(tm.renew("t", old.token)).rejects.toThrow(LeaseLostError);
    await tm.report("t", "fresh", { agentId: "b", token: fresh.token });
    expect((await tm.get("t"))!.result).toBe("fresh");
  });

  test("renewing a lease keeps a long task from being released", async () => {
    const { tm } = setup();
    await tm.submit({ id: "t", constraints: { claim_ttl_sec: 1 } });
    const lease = (await tm.claim("t", "a"))!;
    await Bun.sleep(5);
    const renewed = await tm.renew("t", lease.token);
    expect(renewed.expiresAt!).toBeGreaterThan(lease.expiresAt!);
    expect(await tm.releaseExpiredClaims(lease.expiresAt!)).toEqual([]);
    expect((await tm.get("t"))!.state).toBe("assigned");
  });

  test("a task without claim_ttl_sec is never released, unless the manager has a default lease", async () => {
    const plain = setup();
    await plain.tm.submit({ id: "t" });
    await plain.tm.claim("t", "a");
    expect(await plain.tm.releaseExpiredClaims(Date.now() + 86_400_000)).toEqual([]);
    const withDefault = setup({ defaultClaimTtlSec: 2 });
    await withDefault.tm.submit({ id: "t" });
    const lease = (await withDefault.tm.claim("t", "a"))!;
    expect(await withDefault.tm.releaseExpiredClaims(lease.expiresAt!)).toEqual(["t"]);
  });

  test("failures retry with backoff while max_retries allows, then end failed with the message", async () => {
    const { tm } = setup({ retryBackoffMs: 1000 });
    await tm.submit({ id: "t", constraints: { max_retries: 1 } });
    const first = (await tm.claim("t", "a"))!;
    const retried = await tm.fail("t", "boom 1", { agentId: "a", token: first.token });
    expect(retried.state).toBe("pending");
    expect(retried.notBefore!).toBe(retried.updatedAt + 1000);
    expect(await tm.claim("t", "a")).toBeNull();
    expect(await tm.pendingFor("a", [], [], retried.notBefore! - 1)).toEqual([]);
    expect((await tm.pendingFor("a", [], [], retried.notBefore!)).map((t) => t.id)).toEqual(["t"]);
    // jump past the backoff: rewrite notBefore as if time passed
    await tm.store.update("task:t", (t: any) => ({ ...t, notBefore: 0 }));
    const second = (await tm.claim("t", "a"))!;
    const failed = await tm.fail("t", "boom 2", { agentId: "a", token: second.token });
    expect(failed.state).toBe("failed");
    expect(failed.error).toBe("boom 2");
    expect(failed.attempts).toBe(2);
  });

  test("the system may fail any open task; final tasks are refused", async () => {
    const { tm } = setup();
    await tm.submit({ id: "t" });
    expect((await tm.fail("t", "no agent can do this", "system")).state).toBe("failed");
    await expect(tm.fail("t", "again", "system")).rejects.toThrow(TaskStateError);
  });

  test("cancel and operator retry", async () => {
    const { tm } = setup();
    await tm.submit({ id: "t" });
    expect((await tm.cancel("t")).state).toBe("cancelled");
    await expect(tm.cancel("t")).rejects.toThrow(/already cancelled/);
    const back = await tm.retry("t");
    expect(back.state).toBe("pending");
    expect((await tm.pendingFor("a")).map((t) => t.id)).toEqual(["t"]);
    await expect(tm.retry("t")).rejects.toThrow(/only failed or cancelled/);
    await expect(tm.cancel("missing")).rejects.toThrow(/does not exist/);
  });

  test("release gives a claimed task back without counting the attempt", async () => {
    const { tm } = setup();
    await tm.submit({ id: "t" });
    const lease = (await tm.claim("t", "a"))!;
    const back = await tm.release("t", { agentId: "a", token: lease.token });
    expect(back.state).toBe("pending");
    expect(back.attempts).toBe(0);
    expect(back.assignedTo).toBeNull();
  });

  test("pool and capability scoping decide who sees a task", async () => {
    const { tm } = setup();
    await tm.submit({ id: "free" });
    await tm.submit({ id: "pooled", poolId: "p1" });
    await tm.submit({ id: "gpu", requiredCapabilities: ["gpu", "cuda"] });
    const ids = async (pools: string[], caps: string[]) =>
      (await tm.pendingFor("a", pools, caps)).map((t) => t.id).sort();
    expect(await ids([], [])).toEqual(["free"]);
    expect(await ids(["p1"], [])).toEqual(["free", "pooled"]);
    expect(await ids([], ["gpu"])).toEqual(["free"]);
    expect(await ids(["p2"], ["gpu", "cuda", "x"])).toEqual(["free", "gpu"]);
  });

  test("finished tasks leave the open set, so finding work ignores history", async () => {
    const { tm } = setup();
    for (let i = 0; i < 50; i++) {
      await tm.submit({ id: `done-${i}` });
      const l = (await tm.claim(`done-${i}`, "a"))!;
      await tm.report(`done-${i}`, i, { agentId: "a", token: l.token });
    }
    await tm.submit({ id: "open-1" });
    expect((await tm.openTasks()).map((t) => t.id)).toEqual(["open-1"]);
    expect((await tm.list("completed")).length).toBe(50);
    expect((await tm.list("pending")).map((t) => t.id)).toEqual(["open-1"]);
    expect((await tm.list()).length).toBe(51);
    expect(await tm.counts()).toEqual({ pending: 1, assigned: 0, running: 0, completed: 50, failed: 0, cancelled: 0 });
    await expect(tm.list("bogus" as never)).rejects.toThrow(/unknown task state/);
  });
});

describe("task constraints", () => {
  test("constraints converge acts on are checked at submit", async () => {
    const { tm } = setup();
    await expect(tm.submit({ constraints: { claim_ttl_sec: -5 } })).rejects.toThrow(
      /claim_ttl_sec must be a number of seconds greater than 0, got -5/,
    );
    await expect(tm.submit({ constraints: { claim_ttl_sec: "30" } })).rejects.toThrow(/claim_ttl_sec/);
    await expect(tm.submit({ constraints: { max_retries: 1.5 } })).rejects.toThrow(
      /max_retries must be a whole number/,
    );
    await expect(tm.submit({ constraints: { retry_backoff_ms: -1 } })).rejects.toThrow(/retry_backoff_ms/);
    expect((await tm.submit({ constraints: { claim_ttl_sec: 0.5, max_retries: 0, gpu: "any" } })).state).toBe(
      "pending",
    );
  });

  test("every transition moves the task to its place in the same step, with no separate store calls", async () => {
    const { store, tm } = setup();
    const calls: string[] = [];
    for (const name of ["indexAdd", "indexRemove", "putIfAbsent", "put", "update"] as const) {
      const inner = (store[name] as (...a: unknown[]) => Promise<unknown>).bind(store);
      (store as unknown as Record<string, unknown>)[name] = (...a: unknown[]) => (calls.push(name), inner(...a));
    }
    const open = async (id: string) => (await tm.openTasks()).some((t) => t.id === id);
    await tm.submit({ id: "t", constraints: { max_retries: 1, retry_backoff_ms: 0 } });
    expect(await open("t")).toBe(true);
    let lease = (await tm.claim("t", "a"))!;
    expect((await tm.fail("t", "once", { agentId: "a", token: lease.token })).state).toBe("pending");
    expect(await open("t")).toBe(true);
    lease = (await tm.claim("t", "a"))!;
    expect((await tm.fail("t", "twice", { agentId: "a", token: lease.token })).state).toBe("failed");
    expect(await open("t")).toBe(false);
    expect((await tm.list("failed")).map((t) => t.id)).toEqual(["t"]);
    await tm.retry("t");
    expect(await open("t")).toBe(true);
    lease = (await tm.claim("t", "a"))!;
    await tm.release("t", { agentId: "a", token: lease.token });
    expect(await open("t")).toBe(true);
    await tm.cancel("t");
    expect(await open("t")).toBe(false);
    await tm.retry("t");
    lease = (await tm.claim("t", "a"))!;
    await tm.report("t", 1, { agentId: "a", token: lease.token });
    expect(await open("t")).toBe(false);
    expect(calls).toEqual([]);
  });

  test("a holder's renew, progress and report read nothing first: each is one step of the store", async () => {
    const { tm } = setup();
    let reads = 0;
    const get = tm.queue.get.bind(tm.queue);
    tm.queue.get = (id: string) => (reads++, get(id));
    await tm.submit({ id: "t", constraints: { claim_ttl_sec: 60 } });
    const lease = (await tm.claim("t", "a"))!;
    await tm.renew("t", lease.token);
    await tm.progress("t", 0.5, { agentId: "a", token: lease.token });
    await tm.report("t", 1, { agentId: "a", token: lease.token });
    expect(reads).toBe(0);
    expect((await tm.get("t"))!.state).toBe("completed");
  });
});

import { describe, expect, test } from "bun:test";
import { PENDING_LIMIT } from "../../src/coordination/pending-view.ts";
import { TaskManager } from "../../src/coordination/task-manager.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import { until } from "../support/wait.ts";

/** One shared store; each TaskManager stands for one process, `ops` for an operator's CLI. */
function setup() {
  const store = new MemoryStore();
  let reads = 0;
  const get = store.get.bind(store);
  store.get = (<T>(key: string) => {
    reads++;
    return get<T>(key);
  }) as typeof store.get;
  // Records read, one by one or in a batch.
  const getMany = store.getMany.bind(store);
  store.getMany = (<T>(keys: readonly string[]) => {
    reads += keys.length;
    return getMany<T>(keys);
  }) as typeof store.getMany;
  return {
    store,
    a: new TaskManager(store),
    b: new TaskManager(store),
    ops: new TaskManager(store),
    reads: () => reads,
  };
}

const ids = (tasks: { id: string }[]) => tasks.map((t) => t.id).sort();

describe("TaskManager.pendingFor reads a view of the open tasks", () => {
  test("finding work does not read every open record on every pass", async () => {
    const { a, ops, reads } = setup();
    for (let i = 0; i < 1000; i++) await ops.submit({ id: `t${String(i).padStart(4, "0")}` });
    const before = reads();
    const began = performance.now();
    expect((await a.pendingFor("x")).length).toBe(1000); // the first look reads them all
    // (and, when its second refresh comes a few ms after the first, the oldest 256 again: the window agents try)
    expect(reads() - before).toBeGreaterThanOrEqual(1000);
    expect(reads() - before).toBeLessThanOrEqual(1000 + 256);
    for (let i = 0; i < 50; i++) {
      const visible = await a.pendingFor("x");
      const lease = await a.claim(visible[0]!.id, "x");
      await a.report(lease!.taskId, null, { agentId: "x", token: lease!.token });
    }
    // 50 claims and reports read their own records; the views in between read next to nothing but
    // the window agents try (the oldest 256), at most once per 2 ms.
    const windows = Math.ceil((performance.now() - began) / 2) + 2;
    expect(reads() - before).toBeLessThan(1000 + 50 * 3 + 100 + 256 * windows);
    expect((await a.pendingFor("x")).length).toBe(950);
  });

  test("oldest first, and a task claimed in another process is claimed once: the loser learns and skips it", async () => {
    const { a, b, ops } = setup();
    for (const id of ["t1", "t2", "t3"]) await ops.submit({ id });
    expect(ids(await b.pendingFor("bob"))).toEqual(["t1", "t2", "t3"]);
    expect((await a.pendingFor("alice")).map((t) => t.id)).toEqual(["t1", "t2", "t3"]);
    expect(await a.claim("t1", "alice")).not.toBeNull();
    expect(await b.claim("t1", "bob")).toBeNull(); // b's view still said pending: one failed claim
    expect(ids(await b.pendingFor("bob"))).toEqual(["t2", "t3"]);
    expect((await ops.get("t1"))!.assignedTo).toBe("alice");
  });

  test("concurrent claims in one process: exactly one wins, without the others asking the store", async () => {
    const { a, ops } = setup();
    await ops.submit({ id: "t" });
    await a.pendingFor("x");
    const leases = await Promise.all(Array.from({ length: 10 }, (_, i) => a.claim("t", `agent-${i}`)));
    expect(leases.filter((l) => l !== null).length).toBe(1);
    expect((await ops.get("t"))!.attempts).toBe(1);
  });

  test("an agent whose view had nothing sees a task submitted elsewhere at its next look", async () => {
    const { a, ops } = setup();
    expect(await a.pendingFor("x")).toEqual([]);
    await ops.submit({ id: "new" });
    expect(ids(await a.pendingFor("x"))).toEqual(["new"]);
  });

  test("pools, capabilities and retry backoff still decide what is visible", async () => {
    const { a, ops } = setup();
    await ops.submit({ id: "pooled", poolId: "p" });
    await ops.submit({ id: "gpu", requiredCapabilities: ["gpu"] });
    await ops.submit({ id: "plain" });
    expect(ids(await a.pendingFor("x"))).toEqual(["plain"]);
    expect(ids(await a.pendingFor("x", ["p"], ["gpu"]))).toEqual(["gpu", "plain", "pooled"]);
    const lease = (await a.claim("plain", "x"))!;
    await ops.submit({ id: "later" });
    const failed = await a.fail("plain", "boom", { agentId: "x", token: lease.token });
    expect(failed.state).toBe("failed"); // no retries allowed
    await ops.submit({ id: "retried", constraints: { max_retries: 1, retry_backoff_ms: 60_000 } });
    const l2 = (await a.claim("retried", "x"))!;
    const back = await a.fail("retried", "once", { agentId: "x", token: l2.token });
    expect(back.state).toBe("pending");
    expect(ids(await a.pendingFor("x"))).toEqual(["later"]); // "retried" waits for its backoff
    expect(ids(await a.pendingFor("x", [], [], back.notBefore!))).toEqual(["later", "retried"]);
  });

  test("a task released in another process becomes visible again", async () => {
    const { a, b, ops } = setup();
    await ops.submit({ id: "t" });
    await b.pendingFor("bob");
    const lease = (await a.claim("t", "alice"))!;
    expect(await b.claim("t", "bob")).toBeNull();
    expect(await b.pendingFor("bob")).toEqual([]);
    await a.release("t", { agentId: "alice", token: lease.token });
    await until(async () => (await b.pendingFor("bob")).length === 1, "the released task to show in b's view", 2000);
    expect(await b.claim("t", "bob")).not.toBeNull();
  });

  test("an operator retry of a task that just failed makes it claimable again at once", async () => {
    const { a, ops } = setup();
    await ops.submit({ id: "t" });
    await a.pendingFor("x");
    const lease = (await a.claim("t", "x"))!;
    await a.fail("t", "boom", { agentId: "x", token: lease.token });
    expect(await a.pendingFor("x")).toEqual([]);
    await ops.retry("t");
    expect(ids(await a.pendingFor("x"))).toEqual(["t"]);
    expect(await a.claim("t", "x")).not.toBeNull();
  });

  test("a claim is not refused on the view's word when the view is not being kept up", async () => {
    const { a, ops } = setup();
    await ops.submit({ id: "t", constraints: { claim_ttl_sec: 0.05 } });
    await a.pendingFor("x");
    expect(await a.claim("t", "x")).not.toBeNull(); // the view now says held
    await Bun.sleep(60);
    expect(await ops.releaseExpiredClaims()).toEqual(["t"]);
    await Bun.sleep(1000); // no refresh for a second: the view's "held" is no longer trusted
    expect(await a.claim("t", "y")).not.toBeNull();
  });

  test("the periodic reaper reads the open tasks at most once a second; an explicit time always works", async () => {
    const { a, ops } = setup();
    await ops.submit({ id: "t", constraints: { claim_ttl_sec: 0.05 } });
    expect(await a.releaseExpiredClaims()).toEqual([]);
    await a.claim("t", "x");
    await Bun.sleep(60);
    expect(await a.releaseExpiredClaims()).toEqual([]); // throttled: the last full pass was just now
    expect(await a.releaseExpiredClaims(await a.store.now())).toEqual(["t"]);
  });
});

test("pendingFor returns the oldest PENDING_LIMIT visible tasks of a larger backlog", async () => {
  const { a, ops } = setup();
  for (let i = 0; i < PENDING_LIMIT + 20; i++)
    await ops.submit({ id: `t${String(i).padStart(5, "0")}`, requiredCapabilities: i % 2 ? ["odd"] : [] });
  const even = await a.pendingFor("x");
  expect(even.length).toBe((PENDING_LIMIT + 20) / 2);
  const all = await a.pendingFor("x", [], ["odd"]);
  expect(all.length).toBe(PENDING_LIMIT);
  expect(all[0]!.id).toBe("t00000");
  expect(all.at(-1)!.id).toBe(`t${String(PENDING_LIMIT - 1).padStart(5, "0")}`);
});

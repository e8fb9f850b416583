import { describe, expect, test } from "bun:test";
import {
  DelegationError,
  DelegationManager,
  delegationKey,
  type DelegationRecord,
} from "../../src/coordination/delegation.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import { RacyStore } from "./racy-store.ts";

function setup() {
  const store = new MemoryStore();
  const clock = { now: 1_000 };
  return { store, clock, dm: new DelegationManager(store, { clock: () => clock.now }) };
}

describe("DelegationManager", () => {
  test("delegating records the chain under delegation:<taskId> and makes the delegate the holder", async () => {
    const { dm, store } = setup();
    const r = await dm.delegate("t1", "alice", "bob");
    expect(r).toEqual({
      taskId: "t1",
      owner: "alice",
      chain: [{ from: "alice", to: "bob", at: 1_000 }],
      updatedAt: 1_000,
    });
    expect(await store.get<DelegationRecord>(delegationKey("t1"))).toEqual(r);
    expect(await dm.holder("t1")).toBe("bob");
  });

  test("a task never delegated has no record and no holder", async () => {
    const { dm } = setup();
    expect(await dm.get("t1")).toBeUndefined();
    expect(await dm.holder("t1")).toBeUndefined();
  });

  test("the holder can delegate further, building a chain", async () => {
    const { dm } = setup();
    await dm.delegate("t", "a", "b");
    const r = await dm.delegate("t", "b", "c");
    expect(r.chain.map((l) => `${l.from}>${l.to}`)).toEqual(["a>b", "b>c"]);
    expect(await dm.holder("t")).toBe("c");
  });

  test("only the current holder can delegate", async () => {
    const { dm } = setup();
    await dm.delegate("t", "a", "b");
    await expect(dm.delegate("t", "a", "c")).rejects.toThrow(/held by b/);
    await expect(dm.delegate("t", "mallory", "c")).rejects.toThrow(/held by b/);
    expect(await dm.holder("t")).toBe("b");
  });

  test("self-delegation is refused", async () => {
    const { dm } = setup();
    await expect(dm.delegate("t", "a", "a")).rejects.toThrow(/to themselves/);
    expect(await dm.get("t")).toBeUndefined();
  });

  test("delegating back to anyone already in the chain is refused as a cycle", async () => {
    const { dm } = setup();
    await dm.delegate("t", "a", "b");
    await dm.delegate("t", "b", "c");
    await expect(dm.delegate("t", "c", "a")).rejects.toThrow(/cycle/);
    await expect(dm.delegate("t", "c", "b")).rejects.toThrow(/cycle/);
    await expect(dm.delegate("t", "c", "a")).rejects.toBeInstanceOf(DelegationError);
    expect(await dm.holder("t")).toBe("c");
  });

  test("revoking returns the task to the delegator and drops the delegations after theirs", async () => {
    const { dm, clock } = setup();
    await dm.delegate("t", "a", "b");
    await dm.delegate("t", "b", "c");
    await dm.delegate("t", "c", "d");
    clock.now = 2_000;
    const r = await dm.revoke("t", "b");
    expect(r.chain.map((l) => `${l.from}>${l.to}`)).toEqual(["a>b"]);
    expect(r.updatedAt).toBe(2_000);
    expect(await dm.holder("t")).toBe("b");
    await dm.revoke("t", "a");
    expect(await dm.holder("t")).toBe("a");
    expect((await dm.get("t"))!.chain).toEqual([]);
  });

  test("only a delegator can revoke", async () => {
    const { dm } = setup();
    await dm.delegate("t", "a", "b");
    await expect(dm.revoke("t", "b")).rejects.toThrow(/only the delegator may revoke/);
    await expect(dm.revoke("t", "mallory")).rejects.toThrow(/only the delegator may revoke/);
    expect(await dm.holder("t")).toBe("b");
  });

  test("revoking an undelegated task is refused", async () => {
    const { dm } = setup();
    await expect(dm.revoke("t", "a")).rejects.toThrow(/not delegated/);
    await dm.delegate("t", "a", "b");
    await dm.revoke("t", "a");
    await expect(dm.revoke("t", "a")).rejects.toThrow(/not delegated/);
  });

  test("after a full revoke only the owner may delegate again", async () => {
    const { dm } = setup();
    await dm.delegate("t", "a", "b");
    await dm.revoke("t", "a");
    await expect(dm.delegate("t", "b", "c")).rejects.toThrow(/held by a/);
    await dm.delegate("t", "a", "c");
    expect(await dm.holder("t")).toBe("c");
  });

  test("concurrent delegations by the same holder on an optimistic store: exactly one wins", async () => {
    const store = new RacyStore();
    const dm = new DelegationManager(store);
    await dm.delegate("t", "owner", "a");
    const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => dm.delegate("t", "a", `d${i}`)));
    const won = results.filter((r) => r.status === "fulfilled") as PromiseFulfilledResult<DelegationRecord>[];
    expect(won).toHaveLength(1);
    const r = (await dm.get("t"))!;
    expect(r.chain).toHaveLength(2);
    expect(r.chain[1]!.to).toBe(won[0]!.value.chain[1]!.to);
    expect(store.retries).toBeGreaterThan(0);
  });
});

/**
 * The one TaskQueue contract suite (src/store/task-queue.ts). Each backend's test file calls
 * `taskQueueContract(name, open)`; the queue is the store's native one, or the generic queue over
 * the store when it has none (the file store).
 */
import { afterEach, describe, expect, test } from "bun:test";
import { StoreClosedError } from "../../src/core/errors.ts";
import { HOT_FIELDS, newTask, type Task, type TaskInit } from "../../src/core/task.ts";
import { GenericTaskQueue } from "../../src/store/generic-queue.ts";
import type { Store } from "../../src/store/store.ts";
import { captureLogs } from "../support/transport-util.ts";
import type { Claim, ClaimNext, TaskQueue, Visibility } from "../../src/store/task-queue.ts";

export interface QueueHarness {
  store: Store;
  /** Another store over the same data, for backends shared across processes. */
  peer?: () => Promise<Store>;
  /** Writes `raw` as task `id`'s record behind the store's back (a damaged file, a stray write). */
  corrupt?: (id: string, raw: string) => Promise<void>;
  cleanup?: () => Promise<void> | void;
}

const NOW = 1_800_000_000_000;
const everyone: Visibility = { pools: new Set(), capabilities: new Set() };
const claimAt = (now = NOW, agentId = "agent-a", defaultTtlMs: number | null = 30_000): Claim => ({
  agentId,
  now,
  defaultTtlMs,
});
const next = (n: number, visibility = everyone, now = NOW, agentId = "agent-a"): ClaimNext => ({
  ...claimAt(now, agentId),
  visibility,
  tokens: Array.from({ length: n }, (_, i) => `tok-${agentId}-${now}-${i}-${Math.random()}`),
});
let seq = 0;
const task = (init: TaskInit, now = NOW) => newTask(init, now, ++seq + now * 1024);

export function queueOf(store: Store): TaskQueue {
  return store.tasks ?? new GenericTaskQueue(store);
}

export function taskQueueContract(name: string, open: () => Promise<QueueHarness>): void {
  describe(`${name} task queue contract`, () => {
    const opened: QueueHarness[] = [];
    const extra: Store[] = [];
    async function fresh(): Promise<{ q: TaskQueue; h: QueueHarness }> {
      const h = await open();
      opened.push(h);
      return { q: queueOf(h.store), h };
    }
    afterEach(async () => {
      for (const s of extra.splice(0)) await s.close();
      for (const h of opened.splice(0)) {
        await h.store.close();
        await h.cleanup?.();
      }
    });

    test("submit creates new ids and leaves existing ones untouched, in one batch", async () => {
      const { q } = await fresh();
      const a = task({ id: "a", inputs: { n: 1 } });
      expect(await q.submit([a, task({ id: "b" })], NOW)).toEqual([true, true]);
      expect(await q.submit([task({ id: "a", inputs: { n: 2 } }), task({ id: "c" }), task({ id: "c" })], NOW)).toEqual([
        false,
        true,
        false,
      ]);
      expect((await q.get("a"))!.inputs).toEqual({ n: 1 });
      expect((await q.getMany(["c", "nope", "b"])).map((t) => t?.id)).toEqual(["c", undefined, "b"]);
    });

    test("when the store is closed, every operation is refused with StoreClosedError", async () => {
      const { q, h } = await fresh();
      const a = task({ id: "a" });
      await q.submit([a], NOW);
      await h.store.close();
      const ops: [string, () => unknown][] = [
        ["submit", () => q.submit([task({ id: "b" })], NOW)],
        ["claim", () => q.claim("a", claimAt(), "tok")],
        ["claimNext", () => q.claimNext(next(1))],
        ["transition", () => q.transition("a", { record: a }, { ...a, state: "cancelled" }, NOW)],
        ["get", () => q.get("a")],
        ["getMany", () => q.getMany(["a"])],
        ["pending", () => q.pending(everyone, NOW, 10)],
        ["expired", () => q.expired(NOW, 10)],
        ["open", () => q.open()],
        ["finished", () => q.finished("completed", NOW, 10)],
        ["finishedSince", () => q.finishedSince(0, 10)],
        ["remove", () => q.remove(["a"])],
        ["counts", () => q.counts()],
      ];
      for (const [op, call] of ops) {
        const outcome = await (async () => call())().then(
          () => "answered",
          (err) => (err instanceof StoreClosedError ? "refused" : String(err)),
        );
        expect(`${op}: ${outcome}`).toBe(`${op}: refused`);
      }
    });

    test("when a record submitted is already held or finished, it is placed where its state says", async () => {
      const { q } = await fresh();
      const done = { ...task({ id: "done" }), state: "completed" as const, result: 1, updatedAt: NOW - 5 };
      const held = { ...task({ id: "held" }), state: "running" as const, leaseToken: "t", leaseExpiresAt: NOW - 1 };
      expect(await q.submit([done, held, task({ id: "open" })], NOW)).toEqual([true, true, true]);
      expect((await q.finished("completed", NOW, 10)).map((t) => t.id)).toEqual(["done"]);
      expect((await q.expired(NOW, 10)).map((t) => t.id)).toEqual(["held"]);
      expect((await q.claimNext(next(5))).map((t) => t.id)).toEqual(["open"]);
      expect(await q.counts()).toEqual({ pending: 0, assigned: 1, running: 1, completed: 1, failed: 0, cancelled: 0 });
    });

    test("records keep the layout the claim scripts rely on: the hot fields first, in order", async () => {
      const { q } = await fresh();
      await q.submit([task({ id: "t", inputs: { big: 2 ** 53 - 1, f: 0.1, s: "x\n" } })], NOW);
      const lease = (await q.claim("t", claimAt(), "tok"))!.task!;
      expect(Object.keys(lease).slice(0, HOT_FIELDS.length)).toEqual([...HOT_FIELDS]);
      const got = (await q.get("t"))!;
      expect(Object.keys(got).slice(0, HOT_FIELDS.length)).toEqual([...HOT_FIELDS]);
      expect(got.inputs).toEqual({ big: 2 ** 53 - 1, f: 0.1, s: "x\n" });
    });

    test("claim takes a pending, due task once: one attempt more, the token, a lease on the claimer's default", async () => {
      const { q } = await fresh();
      await q.submit([task({ id: "t" }), task({ id: "own", constraints: { claim_ttl_sec: 5 } })], NOW);
      const won = await q.claim("t", claimAt(NOW + 10), "tok-1");
      expect(won.task).toMatchObject({
        state: "assigned",
        assignedTo: "agent-a",
        attempts: 1,
        leaseToken: "tok-1",
        claimedAt: NOW + 10,
        leaseExpiresAt: NOW + 10 + 30_000,
      });
      const lost = await q.claim("t", claimAt(NOW + 20, "agent-b"), "tok-2");
      expect(lost.task).toBeNull();
      expect(lost.current!.leaseToken).toBe("tok-1");
      expect((await q.claim("own", claimAt(NOW), "tok-3")).task!.leaseExpiresAt).toBe(NOW + 5000);
      expect((await q.claim("nope", claimAt(NOW), "tok-4")).current).toBeUndefined();
      await q.submit([task({ id: "forever" })], NOW);
      expect((await q.claim("forever", claimAt(NOW, "a", null), "tok-5")).task!.leaseExpiresAt).toBeNull();
    });

    test("claimNext takes the best visible due tasks: higher priority first, then submit order", async () => {
      const { q } = await fresh();
      await q.submit(
        [
          task({ id: "low", priority: -1 }),
          task({ id: "first" }),
          task({ id: "urgent", priority: 5 }),
          task({ id: "second" }),
          task({ id: "later", notBefore: NOW + 1000 }),
        ],
        NOW,
      );
      const got = await q.claimNext(next(3));
      expect(got.map((t) => t.id)).toEqual(["urgent", "first", "second"]);
      expect(new Set(got.map((t) => t.leaseToken)).size).toBe(3);
      expect((await q.claimNext(next(5))).map((t) => t.id)).toEqual(["low"]);
      expect(await q.claimNext(next(5, everyone, NOW + 999))).toEqual([]);
      expect((await q.claimNext(next(5, everyone, NOW + 1000))).map((t) => t.id)).toEqual(["later"]);
    });

    test("claimNext sees a pool's tasks only as a member, and a task needing capabilities only with all of them", async () => {
      const { q } = await fresh();
      await q.submit(
        [
          task({ id: "free" }),
          task({ id: "pooled", poolId: "p1" }),
          task({ id: "gpu", requiredCapabilities: ["gpu", "cuda"] }),
          task({ id: "both", poolId: "p1", requiredCapabilities: ["gpu"] }),
        ],
        NOW,
      );
      const v = (pools: string[], caps: string[]): Visibility => ({
        pools: new Set(pools),
        capabilities: new Set(caps),
      });
      expect((await q.pending(v([], []), NOW, 10)).map((t) => t.id)).toEqual(["free"]);
      expect((await q.pending(v(["p1"], ["gpu"]), NOW, 10)).map((t) => t.id)).toEqual(["free", "pooled", "both"]);
      expect((await q.pending(v([], ["gpu", "cuda", "x"]), NOW, 10)).map((t) => t.id)).toEqual(["free", "gpu"]);
      expect((await q.claimNext(next(10, v(["p2"], ["gpu"])))).map((t) => t.id)).toEqual(["free"]);
      expect((await q.claimNext(next(10, v(["p1"], ["gpu", "cuda"])))).map((t) => t.id)).toEqual([
        "pooled",
        "gpu",
        "both",
      ]);
    });

    test("of many concurrent claimers each task goes to exactly one", async () => {
      const { q } = await fresh();
      const ids = Array.from({ length: 60 }, (_, i) => `t${i}`);
      await q.submit(
        ids.map((id) => task({ id })),
        NOW,
      );
      const batches = await Promise.all(
        Array.from({ length: 12 }, (_, i) => q.claimNext(next(4 + (i % 3), everyone, NOW, `agent-${i}`))),
      );
      const byId = await Promise.all(ids.map((id) => q.claim(id, claimAt(NOW, "late"), "late-token")));
      const claimedIds = [...batches.flat().map((t) => t.id), ...byId.filter((r) => r.task).map((r) => r.task!.id)];
      expect(claimedIds.sort()).toEqual([...ids].sort());
    });

    test("a holder's transition needs its lease; a compare and set needs the record unchanged", async () => {
      const { q } = await fresh();
      await q.submit([task({ id: "t" })], NOW);
      const held = (await q.claim("t", claimAt(), "tok"))!.task!;
      const done: Task = { ...held, state: "completed", result: { ok: 1 }, leaseToken: null, updatedAt: NOW + 1 };
      const wrong = await q.transition("t", { lease: "other" }, done, NOW + 1);
      expect(wrong).toEqual({ ok: false, current: held });
      const stale = await q.transition("t", { record: { ...held, attempts: 0 } }, done, NOW + 1);
      expect(stale.ok).toBe(false);
      const right = await q.transition("t", { lease: "tok" }, done, NOW + 1);
      expect(right).toEqual({ ok: true, task: done, next: [] });
      expect((await q.get("t"))!.result).toEqual({ ok: 1 });
      expect((await q.transition("t", { lease: "tok" }, done, NOW + 2)).ok).toBe(false);
      const reopened: Task = { ...done, state: "pending", result: null };
      expect((await q.transition("t", { record: done }, reopened, NOW + 3)).ok).toBe(true);
      expect((await q.claimNext(next(1))).map((t) => t.id)).toEqual(["t"]);
    });

    test("report and claim the next task in one step", async () => {
      const { q } = await fresh();
      await q.submit([task({ id: "a" }), task({ id: "b" }), task({ id: "c" })], NOW);
      const [a] = await q.claimNext(next(1));
      const r = await q.transition(
        "a",
        { lease: a!.leaseToken! },
        { ...a!, state: "completed", updatedAt: NOW },
        NOW,
        next(2),
      );
      expect(r.ok).toBe(true);
      expect(r.ok && r.next.map((t) => [t.id, t.state])).toEqual([
        ["b", "assigned"],
        ["c", "assigned"],
      ]);
    });

    test("a pending task with notBefore waits in its queue until then, and open() always lists it", async () => {
      const { q } = await fresh();
      await q.submit([task({ id: "t" })], NOW);
      const held = (await q.claim("t", claimAt(), "tok"))!.task!;
      const retry: Task = {
        ...held,
        state: "pending",
        assignedTo: null,
        leaseToken: null,
        notBefore: NOW + 500,
        updatedAt: NOW,
      };
      expect((await q.transition("t", { lease: "tok" }, retry, NOW)).ok).toBe(true);
      expect(await q.pending(everyone, NOW + 499, 10)).toEqual([]);
      expect(await q.claimNext(next(1, everyone, NOW + 499))).toEqual([]);
      expect((await q.claim("t", claimAt(NOW + 499), "x")).task).toBeNull();
      expect((await q.open()).map((t) => t.id)).toEqual(["t"]);
      expect((await q.pending(everyone, NOW + 500, 10)).map((t) => t.id)).toEqual(["t"]);
      expect((await q.claimNext(next(1, everyone, NOW + 500)))[0]!.attempts).toBe(2);
    });

    test("expired lists held tasks whose lease ended, soonest first, and not renewed or lease-less ones", async () => {
      const { q } = await fresh();
      await q.submit([task({ id: "a" }), task({ id: "b" }), task({ id: "c" }), task({ id: "never" })], NOW);
      const a = (await q.claim("a", claimAt(NOW + 2), "ta")).task!;
      await q.claim("b", claimAt(NOW + 1), "tb");
      const c = (await q.claim("c", claimAt(NOW + 3), "tc")).task!;
      await q.claim("never", claimAt(NOW, "x", null), "tn");
      const renewed: Task = { ...c, leaseExpiresAt: NOW + 100_000, updatedAt: NOW + 4 };
      expect((await q.transition("c", { lease: "tc" }, renewed, NOW + 4)).ok).toBe(true);
      const at = NOW + 60_000;
      expect((await q.expired(at, 10)).map((t) => t.id)).toEqual(["b", "a"]);
      expect((await q.expired(at, 1)).map((t) => t.id)).toEqual(["b"]);
      const back: Task = {
        ...a,
        state: "pending",
        assignedTo: null,
        leaseToken: null,
        leaseExpiresAt: null,
        updatedAt: at,
      };
      expect((await q.transition("a", { record: a }, back, at)).ok).toBe(true);
      expect((await q.expired(at, 10)).map((t) => t.id)).toEqual(["b"]);
    });

    test("when a held task is written again and again, expired lists it once", async () => {
      const { q } = await fresh();
      await q.submit([task({ id: "t" }), task({ id: "u" })], NOW);
      let t = (await q.claim("t", claimAt(), "tt")).task!;
      await q.claim("u", claimAt(NOW + 1), "tu");
      const write = async (changes: Partial<Task>, at: number) => {
        const r = await q.transition("t", { lease: "tt" }, { ...t, ...changes, updatedAt: at }, at);
        expect(r.ok).toBe(true);
        if (r.ok) t = r.task;
      };
      const end = t.leaseExpiresAt!;
      await write({ state: "running" }, NOW + 2); // a start
      for (let i = 0; i < 3; i++) await write({ progress: { step: i } }, NOW + 3 + i); // progress
      await write({ leaseExpiresAt: end }, NOW + 6); // a renewal to the same end
      await write({ leaseExpiresAt: end + 5 }, NOW + 7); // to another end, and back
      await write({ leaseExpiresAt: end }, NOW + 8);
      const at = NOW + 60_000;
      expect((await q.expired(at, 2)).map((x) => x.id)).toEqual(["t", "u"]);
      expect((await q.expired(at, 10)).map((x) => x.id)).toEqual(["t", "u"]);
      expect((await q.expired(at, 1)).map((x) => x.id)).toEqual(["t"]);
      const done: Task = { ...t, state: "completed", leaseToken: null, leaseExpiresAt: null, updatedAt: at };
      expect((await q.transition("t", { lease: "tt" }, done, at)).ok).toBe(true);
      expect((await q.expired(at, 10)).map((x) => x.id)).toEqual(["u"]);
    });

    test("finished tasks are listed by state and age, removed only when finished, and counted", async () => {
      const { q } = await fresh();
      await q.submit(
        ["x", "y", "z", "open"].map((id) => task({ id })),
        NOW,
      );
      for (const [id, state, at] of [
        ["x", "completed", NOW + 10],
        ["y", "completed", NOW + 5],
        ["z", "failed", NOW + 7],
      ] as const) {
        const held = (await q.claim(id, claimAt(), `t-${id}`)).task!;
        await q.transition(
          id,
          { lease: `t-${id}` },
          { ...held, state, leaseToken: null, leaseExpiresAt: null, updatedAt: at },
          at,
        );
      }
      expect((await q.finished("completed", Infinity, 10)).map((t) => t.id)).toEqual(["y", "x"]);
      expect((await q.finished("completed", NOW + 10, 10)).map((t) => t.id)).toEqual(["y"]);
      expect((await q.finished("failed", Infinity, 10)).map((t) => t.id)).toEqual(["z"]);
      expect(await q.counts()).toEqual({ pending: 1, assigned: 0, running: 0, completed: 2, failed: 1, cancelled: 0 });
      expect(await q.remove(["y", "open", "nope"])).toBe(1);
      expect(await q.get("y")).toBeUndefined();
      expect(await q.get("open")).toBeDefined();
      expect((await q.finished("completed", Infinity, 10)).map((t) => t.id)).toEqual(["x"]);
      expect((await q.counts()).completed).toBe(1);
    });

    test("finishedSince lists every final state at or after a time, by time then id, at most the limit", async () => {
      const { q } = await fresh();
      const ids = ["a", "b", "c", "d", "e", "open"];
      await q.submit(
        ids.map((id) => task({ id })),
        NOW,
      );
      const finish = async (id: string, state: "completed" | "failed" | "cancelled", at: number) => {
        const current = (await q.get(id))!;
        const r = await q.transition(id, { record: current }, { ...current, state, updatedAt: at }, at);
        expect(r.ok).toBe(true);
      };
      await finish("c", "completed", NOW + 30);
      await finish("a", "failed", NOW + 10);
      await finish("b", "cancelled", NOW + 20);
      await finish("e", "completed", NOW + 20);
      await finish("d", "completed", NOW + 5);
      const entries = await q.finishedSince(NOW + 10, 10);
      expect(entries).toEqual([
        { id: "a", state: "failed", updatedAt: NOW + 10 },
        { id: "b", state: "cancelled", updatedAt: NOW + 20 },
        { id: "e", state: "completed", updatedAt: NOW + 20 },
        { id: "c", state: "completed", updatedAt: NOW + 30 },
      ]);
      expect((await q.finishedSince(NOW + 10, 2)).map((e) => e.id)).toEqual(["a", "b"]);
      expect((await q.finishedSince(NOW + 31, 10)).length).toBe(0);
      // A task put back to pending (an operator's retry) leaves the index; a removed one too.
      const b = (await q.get("b"))!;
      await q.transition("b", { record: b }, { ...b, state: "pending", updatedAt: NOW + 40 }, NOW + 40);
      expect(await q.remove(["e"])).toBe(1);
      expect((await q.finishedSince(-Infinity, 10)).map((e) => e.id)).toEqual(["d", "a", "c"]);
      // Finishing again at a later time moves its entry there.
      await finish("d", "completed", NOW + 50);
      expect(await q.finishedSince(NOW + 45, 10)).toEqual([{ id: "d", state: "completed", updatedAt: NOW + 50 }]);
    });

    test("when a task claimed by id is removed and its id submitted again elsewhere, only its new place offers it", async () => {
      const { q } = await fresh();
      const pool = (p: string): Visibility => ({ pools: new Set([p]), capabilities: new Set() });
      await q.submit([task({ id: "t", poolId: "p1", priority: 9 }), task({ id: "u", poolId: "p1", priority: 9 })], NOW);
      await q.submit([task({ id: "other", poolId: "p1", priority: 1 })], NOW);
      for (const id of ["t", "u"]) {
        const held = (await q.claim(id, claimAt(), `tok-${id}`)).task!;
        const done: Task = { ...held, state: "completed", leaseToken: null, leaseExpiresAt: null, updatedAt: NOW + 1 };
        expect((await q.transition(id, { lease: `tok-${id}` }, done, NOW + 1)).ok).toBe(true);
      }
      expect(await q.remove(["t", "u"])).toBe(2);
      // "t" comes back in another pool; "u" in the same pool, below "other" now.
      const again = [task({ id: "t", poolId: "p2" }, NOW + 2), task({ id: "u", poolId: "p1", priority: -1 }, NOW + 2)];
      expect(await q.submit(again, NOW + 2)).toEqual([true, true]);
      expect((await q.pending(pool("p1"), NOW + 2, 10)).map((t) => t.id)).toEqual(["other", "u"]);
      expect((await q.claimNext(next(1, pool("p1"), NOW + 2))).map((t) => t.id)).toEqual(["other"]);
      expect((await q.claimNext(next(5, pool("p1"), NOW + 2))).map((t) => t.id)).toEqual(["u"]);
      expect((await q.claimNext(next(5, pool("p2"), NOW + 2))).map((t) => [t.id, t.attempts])).toEqual([["t", 1]]);
    });

    test("when a delayed task is cancelled, removed and submitted again delayed in another pool, it comes due there", async () => {
      const { q } = await fresh();
      const pool = (p: string): Visibility => ({ pools: new Set([p]), capabilities: new Set() });
      await q.submit([task({ id: "d", poolId: "p1", notBefore: NOW + 100 })], NOW);
      const waiting = (await q.get("d"))!;
      const cancelled: Task = { ...waiting, state: "cancelled", updatedAt: NOW + 1 };
      expect((await q.transition("d", { record: waiting }, cancelled, NOW + 1)).ok).toBe(true);
      expect(await q.remove(["d"])).toBe(1);
      await q.submit([task({ id: "d", poolId: "p2", notBefore: NOW + 200 }, NOW + 2)], NOW + 2);
      expect(await q.claimNext(next(5, pool("p2"), NOW + 199))).toEqual([]);
      expect((await q.pending(pool("p2"), NOW + 200, 10)).map((t) => t.id)).toEqual(["d"]);
      expect((await q.claimNext(next(5, pool("p2"), NOW + 200))).map((t) => t.id)).toEqual(["d"]);
    });

    test("pending lists the best visible due tasks, at most the limit", async () => {
      const { q } = await fresh();
      await q.submit(
        Array.from({ length: 20 }, (_, i) => task({ id: `t${String(i).padStart(2, "0")}`, priority: i % 2 })),
        NOW,
      );
      const got = (await q.pending(everyone, NOW, 5)).map((t) => t.id);
      expect(got).toEqual(["t01", "t03", "t05", "t07", "t09"]);
    });
  });
}

/** For backends shared across processes: two handles on the same data claim each task once. */
export function sharedQueueContract(
  name: string,
  open: () => Promise<
    QueueHarness & { peer: () => Promise<Store>; corrupt: (id: string, raw: string) => Promise<void> }
  >,
): void {
  test(`${name}: when a pending task's record is damaged behind the store's back, claims hand out the others`, async () => {
    const h = await open();
    const logs = captureLogs("warn");
    try {
      const q = queueOf(h.store);
      // Twenty damaged ones ahead of the rest (valid JSON that is no record counts as damaged too).
      const ahead = Array.from({ length: 20 }, (_, i) => `ahead${i}`);
      await q.submit([task({ id: "damaged", priority: 9 }), ...ahead.map((id) => task({ id, priority: 8 }))], NOW);
      await q.submit([task({ id: "b" }), task({ id: "c" })], NOW);
      await h.corrupt("damaged", "{not json");
      for (const [i, id] of ahead.entries()) await h.corrupt(id, ["null", "1", '"x"', "[]", "{}"][i % 5]!);
      expect((await q.claimNext(next(3))).map((t) => t.id)).toEqual(["b", "c"]);
      await q.submit([task({ id: "d" })], NOW);
      expect((await q.claimNext(next(3))).map((t) => t.id)).toEqual(["d"]); // it blocks no later claim
      await expect(q.get("damaged")).rejects.toThrow(/task:damaged/); // never silently absent
      // It is named once in the log, however many claims pass it by.
      expect(logs.lines.filter((l) => l.includes("task:damaged"))).toEqual([
        expect.stringMatching(/WARN .*the record "task:damaged" is corrupt .*claims and scans pass it by/),
      ]);
    } finally {
      logs.restore();
      await h.store.close();
      await h.cleanup?.();
    }
  });

  test(`${name}: when held and finished records are damaged, the lease reaper and retention still reach the others`, async () => {
    const h = await open();
    try {
      const q = queueOf(h.store);
      // Leases and finishes in this order: the damaged ones come first in every such listing.
      const ids = ["held-damaged", "held-null", "held-ok", "done-damaged", "done-null", "done-ok"];
      await q.submit(
        ids.map((id, i) => task({ id, priority: 9 - i })),
        NOW,
      );
      for (const [i, id] of ids.entries()) {
        const [t] = await q.claimNext({ ...next(1, everyone, NOW + i), defaultTtlMs: 1000 });
        expect(t!.id).toBe(id);
        if (id.startsWith("done"))
          await q.transition(id, { lease: t!.leaseToken! }, { ...t!, state: "completed", updatedAt: NOW + i }, NOW + i);
      }
      for (const id of ["held-damaged", "done-damaged"]) await h.corrupt(id, "{not json");
      for (const id of ["held-null", "done-null"]) await h.corrupt(id, "null");
      // Asked for one, each gets the one good record behind the damaged ones.
      expect((await q.expired(NOW + 5000, 1)).map((t) => t.id)).toEqual(["held-ok"]);
      expect((await q.finished("completed", NOW + 5000, 1)).map((t) => t.id)).toEqual(["done-ok"]);
      expect((await q.open()).map((t) => t.id)).toEqual(["held-ok"]);
    } finally {
      await h.store.close();
      await h.cleanup?.();
    }
  });

  test(`${name}: claims from two handles on the same data take each task once`, async () => {
    const h = await open();
    const other = await h.peer();
    try {
      const [q1, q2] = [queueOf(h.store), queueOf(other)];
      const ids = Array.from({ length: 80 }, (_, i) => `s${i}`);
      await q1.submit(
        ids.map((id) => task({ id })),
        NOW,
      );
      const got = await Promise.all(
        Array.from({ length: 16 }, (_, i) => (i % 2 ? q1 : q2).claimNext(next(3, everyone, NOW, `agent-${i}`))),
      );
      const more = await Promise.all([q1.claimNext(next(80)), q2.claimNext(next(80, everyone, NOW, "agent-z"))]);
      const all = [...got.flat(), ...more.flat()].map((t) => t.id).sort();
      expect(all).toEqual([...ids].sort());
      expect((await q2.counts()).assigned).toBe(80);
    } finally {
      await other.close();
      await h.store.close();
      await h.cleanup?.();
    }
  });
}

import { describe, expect, test } from "bun:test";
import { refuse, updateOrRefuse } from "../../src/coordination/refusable.ts";
import { ConvergeError } from "../../src/core/errors.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import { RacyStore } from "./racy-store.ts";

class Refused extends ConvergeError {}
const refused = (reason: string) => new Refused(reason);

interface Counter {
  n: number;
  state?: string;
}

describe("updateOrRefuse", () => {
  test("when the callback returns a record, it is written and returned", async () => {
    const store = new MemoryStore();
    await store.put("c", { n: 1 });
    const after = await updateOrRefuse<Counter>(store, "c", (c) => ({ n: (c?.n ?? 0) + 1 }), refused);
    expect(after).toEqual({ n: 2 });
    expect(await store.get<Counter>("c")).toEqual({ n: 2 });
  });

  test("when the callback refuses, nothing is written and the error made from the reason is thrown", async () => {
    const store = new MemoryStore();
    await store.put("c", { n: 1 });
    const attempt = updateOrRefuse<Counter>(store, "c", (c) => refuse(`n is ${c?.n}`), refused);
    await expect(attempt).rejects.toThrow(new Refused("n is 1"));
    expect(await store.get<Counter>("c")).toEqual({ n: 1 });
  });

  test("when an absent record is refused, it stays absent", async () => {
    const store = new MemoryStore();
    const attempt = updateOrRefuse<Counter>(store, "c", (c) => (c ? c : refuse("no counter")), refused);
    await expect(attempt).rejects.toBeInstanceOf(Refused);
    expect(await store.get("c")).toBeUndefined();
  });

  test("when a refusal carries a record, that record is written and the error is still thrown", async () => {
    const store = new MemoryStore();
    await store.put("c", { n: 1 });
    const attempt = updateOrRefuse<Counter>(
      store,
      "c",
      (c) => refuse("expired", { n: c!.n, state: "expired" }),
      refused,
    );
    await expect(attempt).rejects.toThrow("expired");
    expect(await store.get<Counter>("c")).toEqual({ n: 1, state: "expired" });
  });

  test("when the index option is given, the index follows the record written", async () => {
    const store = new MemoryStore();
    const index = { name: "big", member: "c", keep: (c: Counter) => c.n > 1 };
    await updateOrRefuse<Counter>(store, "c", () => ({ n: 2 }), refused, { index });
    expect(await store.indexMembers("big")).toEqual(["c"]);
    await updateOrRefuse<Counter>(store, "c", () => ({ n: 0 }), refused, { index });
    expect(await store.indexMembers("big")).toEqual([]);
  });

  test("when a run that refused is retried after a conflict and the retry accepts, nothing is thrown", async () => {
    const store = new RacyStore();
    await store.put("c", { n: 0 });
    const seen: number[] = [];
    // The second caller refuses while n is 0; the first caller's write makes it retry and see n = 1.
    const [, second] = await Promise.all([
      updateOrRefuse<Counter>(store, "c", (c) => ({ n: c!.n + 1 }), refused),
      updateOrRefuse<Counter>(
        store,
        "c",
        (c) => {
          seen.push(c!.n);
          return c!.n === 0 ? refuse("not yet") : { n: c!.n + 10 };
        },
        refused,
      ),
    ]);
    expect(seen).toEqual([0, 1]);
    expect(second).toEqual({ n: 11 });
    expect(await store.get<Counter>("c")).toEqual({ n: 11 });
  });

  test("when a run that accepted is retried after a conflict and the retry refuses, it throws", async () => {
    const store = new RacyStore();
    await store.put("c", { n: 0 });
    const seen: number[] = [];
    const [first, second] = await Promise.allSettled([
      updateOrRefuse<Counter>(store, "c", (c) => ({ n: c!.n + 1 }), refused),
      updateOrRefuse<Counter>(
        store,
        "c",
        (c) => {
          seen.push(c!.n);
          return c!.n === 0 ? { n: 100 } : refuse(`too late: n is ${c!.n}`);
        },
        refused,
      ),
    ]);
    expect(seen).toEqual([0, 1]);
    expect(first).toEqual({ status: "fulfilled", value: { n: 1 } });
    expect(second.status).toBe("rejected");
    expect((second as PromiseRejectedResult).reason).toEqual(new Refused("too late: n is 1"));
    expect(await store.get<Counter>("c")).toEqual({ n: 1 });
  });
});

/**
 * The one Store contract suite. Each backend's test file calls `storeContract(name, open)`, where
 * `open` gives a fresh, empty store plus what the suite needs to look behind it.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { StoreError } from "../../src/core/errors.ts";
import { configureLogging } from "../../src/observability/log.ts";
import { ABSENT, DECLINE, type Store } from "../../src/store/store.ts";

export interface Harness {
  store: Store;
  /** Another store over the same data (another connection / handle), for backends that share state. */
  peer?: () => Promise<Store>;
  /** Writes `raw` under `key` behind the store's back (not valid JSON, for the corruption tests). */
  corrupt?: (key: string, raw: string) => Promise<void>;
  /** Removes whatever `open` created; stores are closed by the suite. */
  cleanup?: () => Promise<void> | void;
}

/** Resolves when `listener`-style callback fires, re-running `poke` until then (subscriptions may take a moment to reach a server). */
export async function wokenBy(
  subscribe: (wake: () => void) => () => void,
  poke: () => Promise<void>,
  timeoutMs = 5000,
): Promise<void> {
  let woke = false;
  let unsubscribe = () => {};
  const fired = new Promise<void>((resolve) => {
    unsubscribe = subscribe(() => {
      woke = true;
      resolve();
    });
  });
  const deadline = Date.now() + timeoutMs;
  try {
    while (!woke) {
      if (Date.now() > deadline) throw new Error(`no wake-up within ${timeoutMs} ms`);
      await poke();
      await Promise.race([fired, Bun.sleep(50)]);
    }
  } finally {
    unsubscribe();
  }
}

const NASTY_KEYS = [
  "",
  ".",
  "..",
  "../x",
  "../../etc/passwd",
  "/abs",
  "a/b",
  "a\\b",
  "a\u0000b",
  "A",
  "a",
  "%41",
  "%2F",
  "k:*",
  "k:?",
  "k:[x]",
  "k:_",
  "k:%",
  "k:\\*",
  "ключ:日本語",
  "emoji:😀",
  "con",
  "nul.json",
  ".json",
  "x".repeat(300),
  "y".repeat(10_000),
  "é".repeat(200),
  `${"z".repeat(199)}/${"z".repeat(199)}`,
];

export interface Capabilities {
  /** Records live outside the process: a peer handle sees them, and they survive close. */
  shared?: boolean;
}

export function storeContract(name: string, open: () => Promise<Harness>, caps: Capabilities = {}): void {
  describe(`${name} store contract`, () => {
    const opened: Harness[] = [];
    const extra: Store[] = [];
    async function fresh(): Promise<Harness> {
      const h = await open();
      opened.push(h);
      return h;
    }
    async function peerOf(h: Harness): Promise<Store> {
      const p = await h.peer!();
      extra.push(p);
      return p;
    }
    afterEach(async () => {
      for (const s of extra.splice(0)) await s.close();
      for (const h of opened.splice(0)) {
        await h.store.close();
        await h.cleanup?.();
      }
    });

    test("get of an absent key is undefined; put then get round-trips; put overwrites", async () => {
      const { store } = await fresh();
      expect(await store.get("nope")).toBeUndefined();
      await store.put("a", { n: 1 });
      expect(await store.get<{ n: number }>("a")).toEqual({ n: 1 });
      await store.put("a", [1, 2]);
      expect(await store.get("a")).toEqual([1, 2]);
    });

    test("getMany reads several keys at once, in order, absent ones undefined; keys are checked", async () => {
      const { store } = await fresh();
      expect(store.getMany).toBeDefined(); // every backend here has it (callers fall back to get without it)
      expect(await store.getMany!([])).toEqual([]);
      await store.put("m:1", { n: 1 });
      await store.put("m:3", [3]);
      await store.put(NASTY_KEYS[7]!, "nasty");
      expect(await store.getMany!(["m:3", "m:2", "m:1", NASTY_KEYS[7]!, "m:1"])).toEqual([
        [3],
        undefined,
        { n: 1 },
        "nasty",
        { n: 1 },
      ]);
      const many = Array.from({ length: 1234 }, (_, i) => `many:${i}`);
      for (const k of many.filter((_, i) => i % 3 === 0)) await store.put(k, k);
      expect(await store.getMany!(many)).toEqual(many.map((k, i) => (i % 3 === 0 ? k : undefined)));
      await expect(store.getMany!(["ok", "bad\ud800"])).rejects.toBeInstanceOf(StoreError);
    });

    test("delete reports whether the key existed and removes it from get and list", async () => {
      const { store } = await fresh();
      await store.put("d:1", 1);
      expect(await store.delete("d:1")).toBe(true);
      expect(await store.delete("d:1")).toBe(false);
      expect(await store.get("d:1")).toBeUndefined();
      expect(await store.list("d:")).toEqual([]);
    });

    test("list returns exactly the keys with the prefix, in code point order", async () => {
      const { store } = await fresh();
      const keys = [
        "task:1",
        "task:10",
        "task:2",
        "task",
        "tasks:1",
        "pool:1",
        "t",
        "task:\uE000",
        "task:😀",
        "task:é",
      ];
      for (const k of keys) await store.put(k, k);
      expect(await store.list("")).toEqual([
        "pool:1",
        "t",
        "task",
        "task:1",
        "task:10",
        "task:2",
        "task:é",
        "task:\uE000",
        "task:😀",
        "tasks:1",
      ]);
      expect(await store.list("task:")).toEqual(["task:1", "task:10", "task:2", "task:é", "task:\uE000", "task:😀"]);
      expect(await store.list("task")).toEqual([
        "task",
        "task:1",
        "task:10",
        "task:2",
        "task:é",
        "task:\uE000",
        "task:😀",
        "tasks:1",
      ]);
      expect(await store.list("task:1")).toEqual(["task:1", "task:10"]);
      expect(await store.list("pool:1")).toEqual(["pool:1"]);
      expect(await store.list("zzz")).toEqual([]);
      expect(await store.list("task:😀")).toEqual(["task:😀"]);
    });

    test("list treats glob and LIKE characters in the prefix literally", async () => {
      const { store } = await fresh();
      const keys = ["k:*", "k:*x", "k:?", "k:[x]", "k:_", "k:%", "k:\\*", "k:ab", "k:x", "k:a_b", "k:a%b"];
      for (const k of keys) await store.put(k, 1);
      expect(await store.list("k:*")).toEqual(["k:*", "k:*x"]);
      expect(await store.list("k:?")).toEqual(["k:?"]);
      expect(await store.list("k:[")).toEqual(["k:[x]"]);
      expect(await store.list("k:_")).toEqual(["k:_"]);
      expect(await store.list("k:%")).toEqual(["k:%"]);
      expect(await store.list("k:\\")).toEqual(["k:\\*"]);
      expect(await store.list("k:a_")).toEqual(["k:a_b"]);
      expect(await store.list("k:a%")).toEqual(["k:a%b"]);
    });

    test("keys that look like paths, long keys, unicode and NUL are distinct, round-trip and list as themselves", async () => {
      const { store } = await fresh();
      for (const [i, k] of NASTY_KEYS.entries()) await store.put(k, { i });
      for (const [i, k] of NASTY_KEYS.entries()) expect(await store.get(k)).toEqual({ i });
      expect((await store.list("")).sort()).toEqual([...NASTY_KEYS].sort());
      expect(await store.list("y")).toEqual(["y".repeat(10_000)]);
      expect(await store.list("x".repeat(299))).toEqual(["x".repeat(300)]);
      expect(await store.list("a\u0000")).toEqual(["a\u0000b"]);
      for (const k of NASTY_KEYS) expect(await store.delete(k)).toBe(true);
      expect(await store.list("")).toEqual([]);
    });

    test("a key with a lone surrogate is refused, since it would collide with U+FFFD", async () => {
      const { store } = await fresh();
      await expect(store.put("bad\uD800", 1)).rejects.toBeInstanceOf(StoreError);
      await expect(store.get("bad\uD800")).rejects.toBeInstanceOf(StoreError);
    });

    test("JSON values round-trip: nested maps, unicode, numbers, null, scalars", async () => {
      const { store } = await fresh();
      const value = {
        nested: { a: { b: { c: [1, { d: null }, "x"] } }, empty: {}, list: [] },
        text: 'héllo — 日本語 😀 \u0000 \n "quoted"',
        numbers: [0, -1, 1.5, 2 ** 53 - 1, -(2 ** 53 - 1), 1e-300],
        flags: [true, false],
        "key with spaces & ünïcode": "v",
      };
      await store.put("v:obj", value);
      expect(await store.get("v:obj")).toEqual(value);
      for (const scalar of ["s", 42, 0, null, true, false, ""]) {
        await store.put("v:scalar", scalar);
        expect(await store.get("v:scalar")).toEqual(scalar);
      }
    });

    test("a 1 MiB value round-trips through put, get and update", async () => {
      const { store } = await fresh();
      const big = { blob: "ü".repeat(512 * 1024), n: 0 }; // 1 MiB of UTF-8
      await store.put("big", big);
      expect(await store.get("big")).toEqual(big);
      const after = await store.update<typeof big>("big", (v) => ({ ...v!, n: v!.n + 1 }));
      expect(after?.n).toBe(1);
      expect((await store.get<typeof big>("big"))!.blob).toBe(big.blob);
    });

    test("stored values are copies: mutating what was put or got does not change the store", async () => {
      const { store } = await fresh();
      const v = { list: [1] };
      await store.put("c", v);
      v.list.push(2);
      const got = (await store.get<typeof v>("c"))!;
      got.list.push(3);
      expect(await store.get("c")).toEqual({ list: [1] });
    });

    test("undefined and non-JSON values are refused with a StoreError naming the key", async () => {
      const { store } = await fresh();
      const circular: Record<string, unknown> = {};
      circular.self = circular;
      await expect(store.put("u:1", undefined)).rejects.toThrow(/u:1/);
      await expect(store.put("u:2", { n: 1n })).rejects.toBeInstanceOf(StoreError);
      await expect(store.put("u:3", circular)).rejects.toThrow(/u:3/);
      expect(await store.list("u:")).toEqual([]);
    });

    test("putIfAbsent writes only when absent and never overwrites", async () => {
      const { store } = await fresh();
      expect(await store.putIfAbsent("p", { v: 1 })).toBe(true);
      expect(await store.putIfAbsent("p", { v: 2 })).toBe(false);
      expect(await store.get("p")).toEqual({ v: 1 });
      await store.delete("p");
      expect(await store.putIfAbsent("p", { v: 3 })).toBe(true);
      expect(await store.get("p")).toEqual({ v: 3 });
    });

    test("concurrent putIfAbsent on one key has exactly one winner", async () => {
      const { store } = await fresh();
      const wins = await Promise.all(Array.from({ length: 20 }, (_, i) => store.putIfAbsent("race", i)));
      expect(wins.filter(Boolean).length).toBe(1);
      expect(await store.get("race")).toBe(wins.indexOf(true));
    });

    test("update creates an absent key and returns the stored value", async () => {
      const { store } = await fresh();
      let seen: unknown = "not called";
      const out = await store.update<{ n: number }>("u", (cur) => {
        seen = cur;
        return { n: 1 };
      });
      expect(seen).toBeUndefined();
      expect(out).toEqual({ n: 1 });
      expect(await store.update<{ n: number }>("u", (cur) => ({ n: cur!.n + 1 }))).toEqual({ n: 2 });
      expect(await store.get("u")).toEqual({ n: 2 });
    });

    test("update that declines writes nothing and returns the current value", async () => {
      const { store } = await fresh();
      expect(await store.update<number>("absent", () => DECLINE)).toBeUndefined();
      expect(await store.get("absent")).toBeUndefined();
      expect(await store.list("absent")).toEqual([]);
      await store.put("present", { v: 1 });
      expect(await store.update<{ v: number }>("present", () => DECLINE)).toEqual({ v: 1 });
      expect(await store.get("present")).toEqual({ v: 1 });
    });

    test("update whose callback throws rejects with that error and writes nothing", async () => {
      const { store } = await fresh();
      await store.put("t", 1);
      await expect(
        store.update("t", () => {
          throw new Error("refused by callback");
        }),
      ).rejects.toThrow("refused by callback");
      expect(await store.get("t")).toBe(1);
    });

    test("an async update callback is refused instead of storing a Promise as {}", async () => {
      const { store } = await fresh();
      await store.put("a", { keep: true });
      const asyncFn = (async () => ({ keep: false })) as unknown as () => { keep: boolean };
      await expect(store.update("a", asyncFn)).rejects.toThrow(/synchronous/);
      expect(await store.get("a")).toEqual({ keep: true });
    });

    test("100 concurrent increments within one process end exact", async () => {
      const { store } = await fresh();
      await Promise.all(Array.from({ length: 100 }, () => store.update<number>("counter", (n) => (n ?? 0) + 1)));
      expect(await store.get("counter")).toBe(100);
    });

    test("update with a right hint writes what fn decides on the real value", async () => {
      const { store } = await fresh();
      await store.put("h", { n: 1, s: "é😀", list: [1.5, null] });
      type H = { n: number; s: string; list: unknown[] };
      const hint = (await store.get<H>("h"))!;
      const seen: unknown[] = [];
      const out = await store.update<H>("h", (cur) => (seen.push(cur), { ...cur!, n: cur!.n + 1 }), { expected: hint });
      expect(out).toEqual({ n: 2, s: "é😀", list: [1.5, null] });
      expect(seen.at(-1)).toEqual({ n: 1, s: "é😀", list: [1.5, null] });
      expect(hint).toEqual({ n: 1, s: "é😀", list: [1.5, null] }); // the caller's hint is not touched
      expect(await store.get("h")).toEqual(out);
    });

    test("update with a wrong hint still decides on the real value, writes and declines alike", async () => {
      const { store } = await fresh();
      await store.put("h", { n: 5 });
      const out = await store.update<{ n: number }>("h", (cur) => ({ n: cur!.n + 1 }), { expected: { n: 1 } });
      expect(out).toEqual({ n: 6 });
      expect(await store.get("h")).toEqual({ n: 6 });
      // fn would decline on the hint but not on the real value, and the other way round
      expect(
        await store.update<{ n: number }>("h", (cur) => (cur!.n === 0 ? DECLINE : { n: cur!.n * 2 }), {
          expected: { n: 0 },
        }),
      ).toEqual({ n: 12 });
      expect(
        await store.update<{ n: number }>("h", (cur) => (cur!.n === 12 ? DECLINE : { n: 0 }), { expected: { n: 3 } }),
      ).toEqual({ n: 12 });
      expect(await store.get("h")).toEqual({ n: 12 });
      // fn would throw on the hint only: the real value decides
      const picky = (cur: { n: number } | undefined) => {
        if (cur!.n !== 12) throw new Error("not twelve");
        return { n: 13 };
      };
      expect(await store.update("h", picky, { expected: { n: 1 } })).toEqual({ n: 13 });
      await expect(store.update("h", picky, { expected: { n: 12 } })).rejects.toThrow("not twelve");
      expect(await store.get("h")).toEqual({ n: 13 });
      // a hint that is not even JSON is no hint
      expect(
        await store.update<{ n: number }>("h", (cur) => ({ n: cur!.n + 1 }), { expected: { n: 1n } as never }),
      ).toEqual({ n: 14 });
    });

    test("update hints about absence: ABSENT on an absent key creates, and wrong absence hints are harmless", async () => {
      const { store } = await fresh();
      const create = (cur: unknown) => (cur === undefined ? { v: "new" } : DECLINE);
      expect(await store.update("a:1", create, { expected: ABSENT })).toEqual({ v: "new" });
      expect(await store.update("a:1", create, { expected: ABSENT })).toEqual({ v: "new" }); // present: declined on the real value
      expect(await store.update<{ v: string }>("a:1", (cur) => ({ v: `${cur!.v}!` }), { expected: ABSENT })).toEqual({
        v: "new!",
      });
      // a value hinted for a key that is absent
      let seen: unknown = "not called";
      expect(await store.update("a:2", (cur) => ((seen = cur), { v: 1 }), { expected: { v: 0 } })).toEqual({ v: 1 });
      expect(seen).toBeUndefined();
      expect(
        await store.update("a:3", (cur) => (cur === undefined ? DECLINE : { v: 2 }), { expected: { v: 0 } }),
      ).toBeUndefined();
      expect(await store.get("a:3")).toBeUndefined();
      expect(await store.list("a:")).toEqual(["a:1", "a:2"]);
    });

    test("update keeps an index set in the same step: member added or removed with the write", async () => {
      const { store } = await fresh();
      const open = { name: "open", member: "t1", keep: (v: { state: string }) => v.state !== "done" };
      expect(await store.update("task:t1", () => ({ state: "pending" }), { index: open, expected: ABSENT })).toEqual({
        state: "pending",
      });
      expect(await store.indexMembers("open")).toEqual(["t1"]);
      await store.update("task:t1", () => ({ state: "running" }), { index: open });
      expect(await store.indexMembers("open")).toEqual(["t1"]);
      await store.update("task:t1", () => ({ state: "done" }), { index: open, expected: { state: "running" } });
      expect(await store.indexMembers("open")).toEqual([]);
      await store.update("task:t1", () => ({ state: "done" }), { index: open });
      expect(await store.indexMembers("open")).toEqual([]);
      await store.update("task:t1", () => ({ state: "pending" }), { index: open, expected: { state: "stale" } });
      expect(await store.indexMembers("open")).toEqual(["t1"]);
      // keep sees the value as stored; other members and indexes are untouched
      await store.indexAdd("open", "other");
      let kept: unknown;
      await store.update("task:t1", () => ({ state: "done", extra: undefined }), {
        index: { ...open, keep: (v) => ((kept = v), false) },
      });
      expect(kept).toEqual({ state: "done" });
      expect(await store.indexMembers("open")).toEqual(["other"]);
      expect(await store.list("")).toEqual(["task:t1"]);
    });

    test("update that declines, or whose fn throws, leaves the index alone", async () => {
      const { store } = await fresh();
      await store.put("task:x", { state: "done" });
      await store.indexAdd("open", "x");
      const open = { name: "open", member: "x", keep: () => false };
      expect(await store.update<{ state: string }>("task:x", () => DECLINE, { index: open })).toEqual({
        state: "done",
      });
      expect(
        await store.update<{ state: string }>("task:x", () => DECLINE, { index: open, expected: { state: "done" } }),
      ).toEqual({ state: "done" });
      expect(
        await store.update("task:absent", () => DECLINE, { index: { ...open, member: "y", keep: () => true } }),
      ).toBeUndefined();
      await expect(
        store.update(
          "task:x",
          () => {
            throw new Error("no");
          },
          { index: open },
        ),
      ).rejects.toThrow("no");
      expect(await store.indexMembers("open")).toEqual(["x"]);
      await expect(
        store.update("task:x", () => ({ state: "pending" }), {
          index: {
            ...open,
            keep: () => {
              throw new Error("keep failed");
            },
          },
        }),
      ).rejects.toThrow("keep failed");
      expect(await store.get("task:x")).toEqual({ state: "done" });
      expect(await store.indexMembers("open")).toEqual(["x"]);
      await expect(
        store.update("task:x", () => ({ state: "pending" }), { index: { ...open, name: "bad\uD800" } }),
      ).rejects.toBeInstanceOf(StoreError);
      expect(await store.get("task:x")).toEqual({ state: "done" });
    });

    test("100 concurrent increments with hints (right, stale, absent) end exact, and so does the index", async () => {
      const { store } = await fresh();
      await store.put("counter", { n: 0 });
      const hints = [{ n: 0 }, { n: 50 }, ABSENT, undefined, { n: 1, x: 1 }];
      const keep = (v: { n: number }) => v.n % 2 === 0;
      await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          store.update<{ n: number }>("counter", (c) => ({ n: c!.n + 1 }), {
            expected: hints[i % hints.length] as { n: number },
            index: { name: "even", member: "counter", keep },
          }),
        ),
      );
      expect(await store.get("counter")).toEqual({ n: 100 });
      expect(await store.indexMembers("even")).toEqual(["counter"]);
    });

    test("index sets add, ignore duplicates, remove, and are separate from records", async () => {
      const { store } = await fresh();
      expect(await store.indexMembers("pending")).toEqual([]);
      await store.indexAdd("pending", "t1", "t2");
      await store.indexAdd("pending", "t2", "t3");
      await store.indexAdd("assigned", "t9");
      expect((await store.indexMembers("pending")).sort()).toEqual(["t1", "t2", "t3"]);
      await store.indexRemove("pending", "t2", "missing");
      expect((await store.indexMembers("pending")).sort()).toEqual(["t1", "t3"]);
      await store.indexRemove("pending", "t1", "t3");
      expect(await store.indexMembers("pending")).toEqual([]);
      expect(await store.indexMembers("assigned")).toEqual(["t9"]);
      expect(await store.list("")).toEqual([]);
      await store.put("assigned", "a record");
      expect(await store.indexMembers("assigned")).toEqual(["t9"]);
      expect(await store.get("assigned")).toBe("a record");
      await store.indexAdd("a/../b", "ключ", "a\u0000b", "");
      expect((await store.indexMembers("a/../b")).sort()).toEqual(["", "a\u0000b", "ключ"]);
    });

    test("notify wakes the channel's subscribers; unsubscribed listeners stay quiet", async () => {
      const { store } = await fresh();
      let quiet = 0;
      const off = store.subscribe("tasks", () => quiet++);
      off();
      off(); // idempotent
      await wokenBy(
        (wake) => store.subscribe("tasks", wake),
        () => store.notify("tasks"),
      );
      expect(quiet).toBe(0);
    });

    test("a throwing subscriber is logged and does not stop the others", async () => {
      const { store } = await fresh();
      const lines: string[] = [];
      configureLogging({ sink: { write: (line) => lines.push(line) } });
      try {
        const off = store.subscribe("c", () => {
          throw new Error("listener bug");
        });
        await wokenBy(
          (wake) => store.subscribe("c", wake),
          () => store.notify("c"),
        );
        off();
      } finally {
        configureLogging({ sink: { write: (line) => process.stderr.write(line) } });
      }
      expect(lines.some((l) => l.includes("listener bug"))).toBe(true);
    });

    test("now() is epoch milliseconds close to this host's clock", async () => {
      const { store } = await fresh();
      const t = await store.now();
      expect(Number.isInteger(t)).toBe(true);
      expect(Math.abs(t - Date.now())).toBeLessThan(1000);
    });

    test("close is idempotent; afterwards every call rejects with StoreError", async () => {
      const { store } = await fresh();
      await store.put("k", 1);
      await store.close();
      await store.close();
      const calls: (() => Promise<unknown>)[] = [
        () => store.get("k"),
        () => store.put("k", 2),
        () => store.delete("k"),
        () => store.list(""),
        () => store.getMany!(["k"]),
        () => store.getMany!([]),
        () => store.putIfAbsent("n", 1),
        () => store.update("k", () => 3),
        () => store.indexAdd("i", "m"),
        () => store.indexRemove("i", "m"),
        () => store.indexMembers("i"),
        () => store.notify("c"),
        () => store.now(),
      ];
      for (const call of calls) await expect(call()).rejects.toBeInstanceOf(StoreError);
      expect(() => store.subscribe("c", () => {})).toThrow(StoreError);
    });

    test("description is a short text for people", async () => {
      const { store } = await fresh();
      expect(store.description.length).toBeGreaterThan(0);
    });

    // Memory has nothing to corrupt behind its back and nothing to share; the others must pass these.
    if (caps.shared) {
      registerCorruption(fresh);
      registerShared(fresh, peerOf);
    }
  });
}

function registerCorruption(fresh: () => Promise<Harness>): void {
  test("a record that is not valid JSON is an error naming the key, never absent", async () => {
    const h = await fresh();
    if (!h.corrupt) throw new Error("a shared backend's harness must provide corrupt()");
    await h.store.put("task:ok", 1);
    await h.corrupt("task:bad", "{not json");
    await expect(h.store.get("task:bad")).rejects.toThrow(/task:bad/);
    await expect(h.store.get("task:bad")).rejects.toBeInstanceOf(StoreError);
    await expect(h.store.getMany!(["task:ok", "task:bad"])).rejects.toThrow(/task:bad/);
    await expect(h.store.getMany!(["task:ok", "task:bad"])).rejects.toBeInstanceOf(StoreError);
    await expect(h.store.update("task:bad", () => 1)).rejects.toThrow(/task:bad/);
    expect(await h.store.putIfAbsent("task:bad", 1)).toBe(false);
    expect(await h.store.list("task:")).toEqual(["task:bad", "task:ok"]);
    expect(await h.store.delete("task:bad")).toBe(true); // the way to repair it
    expect(await h.store.get("task:bad")).toBeUndefined();
  });
}

function registerShared(fresh: () => Promise<Harness>, peerOf: (h: Harness) => Promise<Store>): void {
  test("a second handle on the same backend sees writes, updates and index sets at once", async () => {
    const h = await fresh();
    if (!h.peer) throw new Error("a shared backend's harness must provide peer()");
    const other = await peerOf(h);
    await h.store.put("shared", { v: 1 });
    expect(await other.get("shared")).toEqual({ v: 1 });
    await other.update<{ v: number }>("shared", (c) => ({ v: c!.v + 1 }));
    expect(await h.store.get("shared")).toEqual({ v: 2 });
    expect(await other.putIfAbsent("shared", 0)).toBe(false);
    await h.store.indexAdd("pending", "t1");
    expect(await other.indexMembers("pending")).toEqual(["t1"]);
  });

  test("concurrent updates with stale hints from two handles end exact, index included", async () => {
    const h = await fresh();
    if (!h.peer) throw new Error("a shared backend's harness must provide peer()");
    const others = [await peerOf(h), await peerOf(h)];
    await h.store.put("c", { n: 0 });
    const stores = [h.store, ...others];
    const index = { name: "odd", member: "c", keep: (v: { n: number }) => v.n % 2 === 1 };
    await Promise.all(
      stores.map(async (s, j) => {
        let seen: { n: number } | undefined = { n: 0 };
        // each caller hints with what its last update returned, which another caller has often changed since
        for (let i = 0; i < 40; i++)
          seen = await s.update<{ n: number }>("c", (c) => ({ n: c!.n + 1 }), {
            expected: i % 7 === j ? undefined : seen,
            index,
          });
      }),
    );
    expect(await h.store.get("c")).toEqual({ n: 120 });
    expect(await others[0]!.indexMembers("odd")).toEqual([]);
  });

  test("records persist after close and reopen", async () => {
    const h = await fresh();
    if (!h.peer) throw new Error("a shared backend's harness must provide peer()");
    await h.store.put("durable", { v: "kept" });
    await h.store.indexAdd("idx", "m");
    await h.store.close();
    const again = await peerOf(h);
    expect(await again.get("durable")).toEqual({ v: "kept" });
    expect(await again.indexMembers("idx")).toEqual(["m"]);
  });

  test("notify on one handle wakes subscribers on another", async () => {
    const h = await fresh();
    if (!h.peer) throw new Error("a shared backend's harness must provide peer()");
    const other = await peerOf(h);
    await wokenBy(
      (wake) => h.store.subscribe("tasks", wake),
      () => other.notify("tasks"),
    );
  });
}

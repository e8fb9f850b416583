import { afterAll, expect, test } from "bun:test";
import { Redis } from "ioredis";
import { StoreClosedError, StoreError } from "../../src/core/errors.ts";
import { RedisStore } from "../../src/store/redis.ts";
import { ABSENT } from "../../src/store/store.ts";
import { startRedis } from "../support/redis.ts";
import { captureLogs } from "../support/transport-util.ts";
import { until } from "../support/wait.ts";
import { storeContract, wokenBy } from "./contract.ts";

const server = await startRedis();
const raw = new Redis(server.url, { lazyConnect: true });
await raw.connect();
afterAll(async () => {
  raw.disconnect();
  await server.stop();
});

let n = 0;
storeContract(
  "redis",
  async () => {
    const namespace = `t${++n}:`; // each test gets its own keys on the shared server
    return {
      store: await RedisStore.open(server.url, { namespace }),
      peer: () => RedisStore.open(server.url, { namespace }),
      corrupt: async (key, text) => void (await raw.set(`${namespace}k:${key}`, text)),
    };
  },
  { shared: true },
);

test("list uses SCAN, never KEYS", async () => {
  const store = await RedisStore.open(server.url, { namespace: "scan:" });
  await raw.config("RESETSTAT");
  for (let i = 0; i < 50; i++) await store.put(`s:${i}`, i);
  expect((await store.list("s:")).length).toBe(50);
  const stats = await raw.info("commandstats");
  expect(stats).toContain("cmdstat_scan:");
  expect(stats).not.toContain("cmdstat_keys:");
  await store.close();
});

test("when writes are still in flight as the store closes, each is answered and stored, and later calls say closed", async () => {
  const store = await RedisStore.open(server.url, { namespace: "inflight:" });
  // Issued in the same turn as close(): they wait for the turn's pipelined batch, which QUIT must not overtake.
  const writes = Array.from({ length: 50 }, (_, i) => store.put(`w:${i}`, i));
  const closing = store.close();
  await Promise.all(writes);
  await closing;
  expect(await raw.mget(Array.from({ length: 50 }, (_, i) => `inflight:k:w:${i}`))).toEqual(
    Array.from({ length: 50 }, (_, i) => String(i)),
  );
  await expect(store.get("w:1")).rejects.toBeInstanceOf(StoreClosedError);
});

test("records, index sets and channels live under the store's namespace", async () => {
  const store = await RedisStore.open(server.url, { namespace: "ns1:" });
  await store.put("task:1", 1);
  await store.indexAdd("pending", "1");
  expect((await raw.keys("ns1:*")).sort()).toEqual(["ns1:i:pending", "ns1:k:task:1"]);
  await store.close();
});

test("now() follows the Redis server's clock", async () => {
  const store = await RedisStore.open(server.url);
  const [sec, usec] = await raw.time();
  const serverNow = Number(sec) * 1000 + Number(usec) / 1000;
  expect(Math.abs((await store.now()) - serverNow)).toBeLessThan(100);
  await store.close();
});

test("the description and errors never show the URL's password", async () => {
  const url = `redis://user:s3cret-pw@127.0.0.1:${server.port}/0`;
  const err = await RedisStore.open(url).then(
    () => undefined,
    (e: unknown) => e,
  );
  // This server has no ACL user "user", so the connection is refused; the message must still hide the password.
  expect(err).toBeInstanceOf(StoreError);
  expect(String((err as Error).message)).toContain("refused the connection");
  expect(String((err as Error).message)).not.toContain("s3cret-pw");
  expect(String((err as Error).message)).toContain(`127.0.0.1:${server.port}`);
});

/** The error a call ends with, and how long it took. */
async function failure(call: () => Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const t0 = Date.now();
  const error = await call().then(
    () => undefined,
    (e: unknown) => e,
  );
  return { error, ms: Date.now() - t0 };
}

/** Retries `call` until it succeeds: the store reconnects on its own, and nothing reports the moment. */
async function eventually<T>(call: () => Promise<T>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await call();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await Bun.sleep(25);
    }
  }
}

test("opening an unreachable Redis fails at once with one clear StoreError", async () => {
  const { error, ms } = await failure(() => RedisStore.open("redis://127.0.0.1:1/0"));
  expect(error).toBeInstanceOf(StoreError);
  expect((error as Error).message).toMatch(
    /^Redis at 127\.0\.0\.1:1 is unreachable: not connected \(connect ECONNREFUSED/,
  );
  expect(ms).toBeLessThan(2500);
});

test("while Redis is down every call fails quickly as unreachable, and the same store works again when it is back", async () => {
  const own = await startRedis();
  const store = await RedisStore.open(own.url);
  let peer: RedisStore | undefined;
  try {
    await store.put("k", 1);
    store.subscribe("wake", () => {}); // the subscriber connection must come back too
    await own.stop();
    const calls: (() => Promise<unknown>)[] = [
      () => store.get("k"),
      () => store.put("k", 2),
      () => store.update<number>("k", (v) => (v ?? 0) + 1),
      () => store.list(""),
      () => store.putIfAbsent("n", 1),
      () => store.delete("k"),
      () => store.indexAdd("i", "m"),
      () => store.indexMembers("i"),
      () => store.notify("wake"),
    ];
    for (const call of calls) {
      const { error, ms } = await failure(call);
      expect(error).toBeInstanceOf(StoreError);
      expect((error as Error).message).toContain(`Redis at 127.0.0.1:${own.port} is unreachable`);
      expect(ms).toBeLessThan(2500);
    }
    await own.restart();
    await eventually(() => store.put("k", 3)); // a fresh server without persistence: the old data is gone
    expect(await store.update<number>("k", (v) => v! + 1)).toBe(4);
    peer = await RedisStore.open(own.url);
    await wokenBy(
      (wake) => store.subscribe("wake", wake),
      () => peer!.notify("wake"),
    );
  } finally {
    await peer?.close();
    await store.close();
    await own.stop();
  }
});

test("a Redis that stops answering makes calls fail after the command timeout, not hang", async () => {
  const own = await startRedis();
  const store = await RedisStore.open(own.url, { commandTimeoutMs: 300 });
  try {
    await store.put("k", 1);
    own.pause();
    const { error, ms } = await failure(() => store.get("k"));
    expect((error as Error).message).toBe(`Redis at 127.0.0.1:${own.port} is unreachable: no reply within 300 ms`);
    expect(ms).toBeLessThan(1000);
    own.resume();
    expect(await eventually(() => store.get("k"))).toBe(1);
  } finally {
    own.resume();
    await store.close();
    await own.stop();
  }
});

test("a hint re-serialises to the bytes stored: JSON.stringify(JSON.parse(s)) === s for s from JSON.stringify", () => {
  // The Redis update's hint path hashes JSON.stringify(hint) and compares it with the stored bytes.
  const values: unknown[] = [
    { b: 1, a: 2, "10": 3, "2": 4, "-1": 5, "01": 6, "4294967295": 7, "1.5": 8 }, // integer-like keys are reordered by objects: already so in s
    { ["__proto__"]: { x: 1 }, constructor: "c", toString: null },
    [0, -0, 1e21, 1e-7, 5e-324, 1.7976931348623157e308, 2 ** 53 + 2, 0.1 + 0.2, -1.5e-300, 123456789012345680000],
    { s: 'é 日本語 😀 \u0000 \u001f \u2028 \u2029 " \\ / \n\t \uD800 lone \uDFFF', e: "", n: null, t: true, f: false },
    { nested: { deep: [{ a: [[], {}] }] }, big: "x".repeat(10_000) },
    JSON.parse('{"z":1,"y":{"3":[1,2],"x":"1"},"1":null}'),
    "plain",
    42,
    null,
    true,
  ];
  for (const v of values) {
    const s = JSON.stringify(v);
    expect(JSON.stringify(JSON.parse(s))).toBe(s);
  }
  // A task-shaped record, spread and re-parsed as TaskManager does.
  const task = { id: "t", state: "pending", inputs: { "2": "b", "1": "a", k: [1.25] }, attempts: 0, notBefore: null };
  const s = JSON.stringify({ ...task, state: "assigned", leaseToken: "x" });
  expect(JSON.stringify(JSON.parse(s))).toBe(s);
});

test("a right hint saves the GET: one round trip per update, with the index change inside the script", async () => {
  const store = await RedisStore.open(server.url, { namespace: "hint:" });
  try {
    const first = await store.update("task:1", () => ({ state: "pending" }), {
      expected: ABSENT,
      index: { name: "open", member: "1", keep: () => true },
    });
    await raw.config("RESETSTAT");
    let seen = first;
    for (let i = 0; i < 10; i++)
      seen = await store.update<{ state: string; i?: number }>("task:1", (t) => ({ ...t!, i }), {
        expected: seen,
        index: { name: "open", member: "1", keep: () => true },
      });
    await store.update("task:1", (t) => ({ ...(t as object), state: "done" }), {
      expected: seen,
      index: { name: "open", member: "1", keep: () => false },
    });
    const stats = await raw.info("commandstats");
    const calls = (cmd: string) => Number(new RegExp(`cmdstat_${cmd}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
    expect(calls("evalsha") + calls("eval")).toBe(11);
    expect(calls("get")).toBe(11); // the script's own: no GET outside it
    expect(await raw.smembers("hint:i:open")).toEqual([]);
    // a wrong hint: the failed compare-and-set carries the current value, so the retry needs no GET
    await raw.config("RESETSTAT");
    expect(
      await store.update<{ state: string }>("task:1", (t) => ({ ...t!, state: "again" }), {
        expected: { state: "stale" },
      }),
    ).toMatchObject({ state: "again" });
    const again = await raw.info("commandstats");
    expect(Number(/cmdstat_evalsha:calls=(\d+)/.exec(again)?.[1])).toBe(2);
    expect(Number(/cmdstat_get:calls=(\d+)/.exec(again)?.[1])).toBe(2);
  } finally {
    await store.close();
  }
});

test("notifies made while one is in flight share the PUBLISH that follows it, which is never dropped", async () => {
  const store = await RedisStore.open(server.url, { namespace: "coalesce:" });
  const peer = await RedisStore.open(server.url, { namespace: "coalesce:" });
  try {
    let local = 0;
    store.subscribe("c", () => local++);
    await wokenBy(
      (wake) => peer.subscribe("c", wake),
      () => store.notify("c"),
    );
    await Bun.sleep(20);
    local = 0;
    await raw.config("RESETSTAT");
    // the first publishes at once; the 49 made while it is in flight share one that follows it
    await Promise.all(Array.from({ length: 50 }, () => store.notify("c")));
    const publishes = () =>
      raw.info("commandstats").then((s) => Number(/cmdstat_publish:calls=(\d+)/.exec(s)?.[1] ?? 0));
    expect(await publishes()).toBe(2);
    expect(local).toBe(2);
    // the follow-up reaches other processes too
    let heard = false;
    peer.subscribe("c", () => (heard = true));
    await Promise.all([store.notify("c"), store.notify("c")]);
    await until(() => heard, "the peer hears the coalesced notify");
    // once none is in flight, a notify publishes at once on its own
    await raw.config("RESETSTAT");
    await store.notify("c");
    expect(await publishes()).toBe(1);
    await store.close();
    await expect(store.notify("c")).rejects.toBeInstanceOf(StoreError);
  } finally {
    await store.close();
    await peer.close();
  }
});

test("when a claimed record's prefix reads but its rest is damaged, the claim still hands out the others", async () => {
  const { TaskManager } = await import("../../src/coordination/task-manager.ts");
  const store = await RedisStore.open(server.url, { namespace: "tail1:" });
  const logs = captureLogs("warn");
  try {
    const tm = new TaskManager(store);
    await tm.submitMany([{ id: "a", priority: 9 }, { id: "b" }, { id: "c" }]);
    // The script reads only the hot prefix, which stays whole: the damage is past it.
    const text = (await raw.get("tail1:k:task:a"))!;
    await raw.set("tail1:k:task:a", text.replace('"objective":""', '"objective":"unterminated'));
    const got = await tm.claimNext("agent", {}, 3);
    expect(got.map((l) => l.taskId)).toEqual(["b", "c"]);
    expect(logs.lines.filter((l) => l.includes("corrupt"))).toEqual([
      expect.stringContaining('the record "task:a" is corrupt (not valid JSON)'),
    ]);
  } finally {
    logs.restore();
    await store.close();
  }
});

import { describe, expect, test } from "bun:test";
import { LlmError } from "../../src/llm/errors.ts";
import { FleetLimiter } from "../../src/llm/rate-limit.ts";
import { MemoryStore } from "../../src/store/memory.ts";

const WINDOW = 400;

describe("FleetLimiter", () => {
  test("when the window is full, the next request waits until the oldest has left it", async () => {
    const store = new MemoryStore();
    const l = new FleetLimiter(store, "m", { requestsPerMinute: 3, windowMs: WINDOW });
    const t0 = await store.now();
    for (let i = 0; i < 3; i++) await l.acquire(0);
    expect((await store.now()) - t0).toBeLessThan(WINDOW);
    await l.acquire(0);
    expect((await store.now()) - t0).toBeGreaterThanOrEqual(WINDOW);
  });

  test("when two limiters share a store, each counts the other's requests", async () => {
    const store = new MemoryStore();
    const a = new FleetLimiter(store, "m", { requestsPerMinute: 2, windowMs: WINDOW });
    const b = new FleetLimiter(store, "m", { requestsPerMinute: 2, windowMs: WINDOW });
    const other = new FleetLimiter(store, "another-model", { requestsPerMinute: 2, windowMs: WINDOW });
    const t0 = await store.now();
    await a.acquire(0);
    await a.acquire(0);
    await other.acquire(0); // a different model has its own window
    expect((await store.now()) - t0).toBeLessThan(WINDOW);
    await b.acquire(0);
    expect((await store.now()) - t0).toBeGreaterThanOrEqual(WINDOW);
  });

  test("when tokens are reserved, a request waits for room and a settled reservation frees what was not used", async () => {
    const store = new MemoryStore();
    const l = new FleetLimiter(store, "m", { tokensPerMinute: 100, windowMs: 2000 });
    const t0 = await store.now();
    const first = await l.acquire(80);
    let second = false;
    const pending = l.acquire(50).then(() => (second = true));
    await Bun.sleep(150);
    expect(second).toBe(false);
    await l.settle(first, 30); // the answer used 30, not 80
    await pending;
    expect((await store.now()) - t0).toBeLessThan(2000); // well before the first reservation left the window
  });

  test("when one limiter backs off, every limiter on the store waits", async () => {
    const store = new MemoryStore();
    const a = new FleetLimiter(store, "m");
    const b = new FleetLimiter(store, "m", { requestsPerMinute: 100 });
    const t0 = await store.now();
    await a.backOff(300);
    await Promise.all([a.acquire(0), b.acquire(0)]);
    expect((await store.now()) - t0).toBeGreaterThanOrEqual(300);
  });

  test("when the fleet is asked to wait longer than maxWaitMs, acquire fails at once", async () => {
    const store = new MemoryStore();
    const l = new FleetLimiter(store, "m", { maxWaitMs: 1000 });
    await l.backOff(3_600_000);
    const err = await l.acquire(0).catch((e) => e);
    expect(err).toBeInstanceOf(LlmError);
    expect(err.message).toBe("rate limited: the provider asked the fleet to wait 3600 s, more than 1 s");
  });

  test("when the signal aborts, a waiting acquire rejects with its reason", async () => {
    const store = new MemoryStore();
    const l = new FleetLimiter(store, "m", { requestsPerMinute: 1, windowMs: 60_000 });
    await l.acquire(0);
    const abort = new AbortController();
    const waiting = l.acquire(0, abort.signal);
    abort.abort(new Error("lease lost"));
    expect(await waiting.catch((e) => e.message)).toBe("lease lost");
  });
});

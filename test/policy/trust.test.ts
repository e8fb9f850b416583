import { describe, expect, test } from "bun:test";
import { ConfigError } from "../../src/core/errors.ts";
import { newPool } from "../../src/core/pool.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import { TrustError, TrustManager, trustKey, type TrustRecord } from "../../src/policy/trust.ts";
import { RacyStore } from "../coordination/racy-store.ts";

describe("TrustManager", () => {
  test("an agent without a record has the default score, 0.5 unless configured", async () => {
    const store = new MemoryStore();
    expect(await new TrustManager(store).get("a")).toBe(0.5);
    expect(await new TrustManager(store, { defaultScore: 0.2 }).get("a")).toBe(0.2);
  });

  test("a success moves the score toward 1 by the learning rate", async () => {
    const tm = new TrustManager(new MemoryStore(), { learningRate: 0.2 });
    expect(await tm.recordSuccess("a")).toBeCloseTo(0.6, 12);
    expect(await tm.recordSuccess("a")).toBeCloseTo(0.68, 12);
    expect(await tm.get("a")).toBeCloseTo(0.68, 12);
  });

  test("a failure moves the score toward 0 by the learning rate", async () => {
    const tm = new TrustManager(new MemoryStore(), { learningRate: 0.5 });
    expect(await tm.recordFailure("a")).toBeCloseTo(0.25, 12);
    expect(await tm.update("a", "failure")).toBeCloseTo(0.125, 12);
  });

  test("a graded outcome moves the score toward that grade", async () => {
    const tm = new TrustManager(new MemoryStore(), { learningRate: 0.5 });
    expect(await tm.update("a", 0.9)).toBeCloseTo(0.7, 12);
  });

  test("scores stay within [0, 1] after many outcomes", async () => {
    const tm = new TrustManager(new MemoryStore(), { learningRate: 1 });
    expect(await tm.recordSuccess("a")).toBe(1);
    expect(await tm.recordSuccess("a")).toBe(1);
    expect(await tm.recordFailure("a")).toBe(0);
    expect(await tm.recordFailure("a")).toBe(0);
  });

  test("the record under trust:<agentId> counts successes and failures", async () => {
    const store = new MemoryStore();
    const tm = new TrustManager(store, { clock: () => 42 });
    await tm.recordSuccess("a");
    await tm.recordSuccess("a");
    await tm.recordFailure("a");
    const r = (await store.get<TrustRecord>(trustKey("a")))!;
    expect(r).toMatchObject({ agentId: "a", successes: 2, failures: 1, updatedAt: 42 });
    expect(r.score).toBe(await tm.get("a"));
  });

  test("set overrides a score and refuses one outside [0, 1]", async () => {
    const tm = new TrustManager(new MemoryStore());
    await tm.set("a", 0.9);
    expect(await tm.get("a")).toBe(0.9);
    await expect(tm.set("a", 1.1)).rejects.toBeInstanceOf(TrustError);
    expect(await tm.get("a")).toBe(0.9);
  });

  test("an outcome that is neither success, failure nor a grade in [0, 1] is refused", async () => {
    const tm = new TrustManager(new MemoryStore());
    await expect(tm.update("a", 2)).rejects.toBeInstanceOf(TrustError);
    await expect(tm.update("a", "meh" as "success")).rejects.toBeInstanceOf(TrustError);
    expect(await tm.record("a")).toBeUndefined();
  });

  test("bad options are a configuration error", () => {
    const store = new MemoryStore();
    expect(() => new TrustManager(store, { defaultScore: 1.5 })).toThrow(ConfigError);
    expect(() => new TrustManager(store, { learningRate: 0 })).toThrow(ConfigError);
    expect(() => new TrustManager(store, { learningRate: 2 })).toThrow(ConfigError);
  });

  test("check passes an agent at or above a pool's trust threshold and refuses one below with a reason", async () => {
    const tm = new TrustManager(new MemoryStore());
    await tm.set("good", 0.7);
    await tm.set("bad", 0.3);
    const pool = { ...newPool({ id: "p", trustThreshold: 0.7 }) };
    expect(await tm.check("good", pool)).toEqual({ ok: true, score: 0.7 });
    const r = await tm.check("bad", pool);
    expect(r).toMatchObject({ ok: false, score: 0.3 });
    expect(!r.ok && r.reason).toContain("below the required 0.7");
    expect((await tm.check("unknown", 0)).ok).toBe(true);
  });

  test("40 concurrent outcomes on an optimistic store are all counted", async () => {
    const store = new RacyStore();
    const tm = new TrustManager(store, { learningRate: 0.1 });
    await Promise.all(Array.from({ length: 40 }, (_, i) => (i < 30 ? tm.recordSuccess("a") : tm.recordFailure("a"))));
    const r = (await tm.record("a"))!;
    expect(r.successes).toBe(30);
    expect(r.failures).toBe(10);
    expect(store.retries).toBeGreaterThan(0);
  });
});

import { describe, expect, test } from "bun:test";
import { PoolError } from "../../src/core/errors.ts";
import { PoolManager } from "../../src/coordination/pool-manager.ts";
import { MemoryStore } from "../../src/store/memory.ts";

describe("PoolManager", () => {
  test("create is if-absent: an existing pool keeps its members", async () => {
    const pm = new PoolManager(new MemoryStore());
    await pm.create({ id: "p" });
    await pm.join("p", "a");
    const again = await pm.create({ id: "p", trustThreshold: 0.9 });
    expect(again.agents).toEqual(["a"]);
    expect(again.trustThreshold).toBe(0);
  });

  test("join and leave are idempotent and poolsForAgent follows them", async () => {
    const pm = new PoolManager(new MemoryStore());
    await pm.create({ id: "p" });
    await pm.create({ id: "q" });
    await pm.join("p", "a");
    await pm.join("p", "a");
    await pm.join("q", "a");
    expect((await pm.get("p"))!.agents).toEqual(["a"]);
    expect((await pm.poolsForAgent("a")).map((p) => p.id).sort()).toEqual(["p", "q"]);
    await pm.leave("p", "a");
    await pm.leave("p", "a");
    expect((await pm.poolsForAgent("a")).map((p) => p.id)).toEqual(["q"]);
    expect((await pm.list()).length).toBe(2);
  });

  test("concurrent joins lose no member", async () => {
    const pm = new PoolManager(new MemoryStore());
    await pm.create({ id: "p" });
    await Promise.all(Array.from({ length: 50 }, (_, i) => pm.join("p", `agent-${i}`)));
    expect((await pm.get("p"))!.agents.length).toBe(50);
  });

  test("admission: allowlist and token pools refuse outsiders with the reason", async () => {
    const pm = new PoolManager(new MemoryStore());
    await pm.create({ id: "allow", admission: { type: "allowlist", allow: ["a"] } });
    await pm.create({ id: "tok", admission: { type: "token", token: "s3cret" } });
    await pm.join("allow", "a");
    await expect(pm.join("allow", "b")).rejects.toThrow(/allowlist/);
    await expect(pm.join("tok", "a")).rejects.toThrow(/requires a token/);
    await expect(pm.join("tok", "a", "wrong")).rejects.toThrow(PoolError);
    expect((await pm.join("tok", "a", "s3cret")).agents).toEqual(["a"]);
    await expect(pm.join("missing", "a")).rejects.toThrow(/does not exist/);
  });

  test("a trust threshold refuses agents below it", async () => {
    const scores: Record<string, number> = { good: 0.8, bad: 0.2 };
    const pm = new PoolManager(new MemoryStore(), { trustOf: (id) => scores[id] ?? 0 });
    await pm.create({ id: "p", trustThreshold: 0.5 });
    await pm.join("p", "good");
    await expect(pm.join("p", "bad")).rejects.toThrow(/trust 0.20 is below/);
  });
});

/**
 * Store backends: put, get and update ops/s, sequential (one caller awaiting each call) and, for
 * Redis, with 16 concurrent callers, and an update given a right hint of the current value. The SQLite update figure is printed next to a bare bun:sqlite
 * conditional UPDATE loop on the same file, in the same run, with their ratio.
 */
import { Database } from "bun:sqlite";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileStore } from "../../src/store/file.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import { RedisStore } from "../../src/store/redis.ts";
import { SqliteStore } from "../../src/store/sqlite.ts";
import type { Store } from "../../src/store/store.ts";
import { startRedis } from "../../test/support/redis.ts";
import { tempDir } from "../../test/support/tmp.ts";
import { fmt, opsPerSec, opsPerSecSync, report } from "./harness.ts";

const VALUE = { id: "task-1", state: "pending", attempts: 0, inputs: { x: 21 }, topic: "jobs[kind=resize]v1.0" }; // ~90 B of JSON
const inc = (t: typeof VALUE | undefined) => ({ ...(t ?? VALUE), attempts: (t?.attempts ?? 0) + 1 });

async function sequential(label: string, store: Store, n: number, cond: string, updateCond = cond): Promise<number> {
  report(
    `${label} put`,
    await opsPerSec(n, (i) => store.put(`bench:${i % 1000}`, VALUE)),
    "ops/s",
    `N=${n}, sequential, 1000 keys, ${cond}`,
  );
  report(
    `${label} get`,
    await opsPerSec(n, (i) => store.get(`bench:${i % 1000}`)),
    "ops/s",
    `N=${n}, sequential, 1000 keys, ${cond}`,
  );
  const update = await opsPerSec(n, () => store.update("bench:hot", inc));
  report(`${label} update (one key)`, update, "ops/s", `N=${n}, sequential, ${updateCond}`);
  return update;
}

/** `callers` loops sharing `n` operations, all in flight at once. */
async function concurrent(
  n: number,
  callers: number,
  fn: (caller: number, i: number) => Promise<unknown>,
): Promise<number> {
  const per = Math.ceil(n / callers);
  const run = () =>
    Promise.all(
      Array.from({ length: callers }, async (_, c) => {
        for (let i = 0; i < per; i++) await fn(c, i);
      }),
    );
  await run(); // warm-up
  const t0 = Bun.nanoseconds();
  await run();
  return (per * callers) / ((Bun.nanoseconds() - t0) / 1e9);
}

const tmp = tempDir("converge-bench-store-");
const redis = await startRedis();
try {
  const memory = new MemoryStore();
  await sequential("memory", memory, 200_000, "in process");
  await memory.close();

  const file = new FileStore(join(tmp.path, "files"));
  await sequential("file", file, 2_000, `fsync each write, dir in ${tmpdir()}`);
  await file.close();

  const dbPath = join(tmp.path, "bench.db");
  const sqlite = new SqliteStore(dbPath);
  const N = 50_000;
  const ours = await sequential(
    "sqlite",
    sqlite,
    N,
    "WAL, synchronous=NORMAL",
    "WAL, synchronous=NORMAL, BEGIN IMMEDIATE + SELECT + UPSERT + COMMIT",
  );
  await sqlite.close();
  // The same work with nothing around it: one conditional UPDATE per increment, as a claim would be.
  const db = new Database(dbPath);
  db.run("PRAGMA busy_timeout = 5000");
  db.run("PRAGMA synchronous = NORMAL");
  db.run("INSERT OR REPLACE INTO store (key, value) VALUES ('bare', '0')");
  const cas = db.prepare<never, [string, string, string]>("UPDATE store SET value = ? WHERE key = ? AND value = ?");
  let v = 0;
  const bare = opsPerSecSync(N, () => {
    if (cas.run(String(v + 1), "bare", String(v)).changes === 1) v++;
  });
  db.close(true);
  report(
    "sqlite bare conditional UPDATE (same file)",
    bare,
    "ops/s",
    `N=${N}, sequential, autocommit, bun:sqlite prepared statement`,
  );
  report("sqlite update / bare UPDATE", bare / ours, "x slower", `aim: within 2x; ${fmt(ours)} vs ${fmt(bare)} ops/s`);

  const store = await RedisStore.open(redis.url);
  const cond = `redis-server ${redis.port} on 127.0.0.1, one connection`;
  await sequential("redis", store, 20_000, cond, `GET + Lua CAS, ${cond}`);
  // With the caller's last-seen value as the hint (as TaskManager passes it): the Lua CAS alone.
  let seen = await store.get<typeof VALUE>("bench:hot");
  report(
    "redis update (one key, right hint)",
    await opsPerSec(20_000, async () => void (seen = await store.update("bench:hot", inc, { expected: seen }))),
    "ops/s",
    `N=20000, sequential, Lua CAS only, ${cond}`,
  );
  const C = 16;
  const M = 100_000;
  report(
    "redis put, 16 callers",
    await concurrent(M, C, (c, i) => store.put(`bench:${c}:${i % 100}`, VALUE)),
    "ops/s",
    `N=${M}, ${C} concurrent callers, ${cond}`,
  );
  report(
    "redis get, 16 callers",
    await concurrent(M, C, (c, i) => store.get(`bench:${c}:${i % 100}`)),
    "ops/s",
    `N=${M}, ${C} concurrent callers, ${cond}`,
  );
  report(
    "redis update, 16 callers (own key each)",
    await concurrent(M / 2, C, (c) => store.update(`bench:own:${c}`, inc)),
    "ops/s",
    `N=${M / 2}, ${C} concurrent callers, GET + Lua CAS, ${cond}`,
  );
  report(
    "redis update, 16 callers (one shared key)",
    await concurrent(20_000, C, () => store.update("bench:hot", inc)),
    "ops/s",
    `N=20000, ${C} concurrent callers queued per key in-process, ${cond}`,
  );
  await store.close();
} finally {
  await redis.stop();
  tmp.cleanup();
}

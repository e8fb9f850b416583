import { afterAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { mkdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { LeaseLostError, StoreError } from "../../src/core/errors.ts";
import { SQL, SqliteStore, WAL_CHECKPOINT_PAGES, WAL_LIMIT_BYTES } from "../../src/store/sqlite.ts";
import { QUEUE_SQL } from "../../src/store/sqlite-queue.ts";
import { tempDir } from "../support/tmp.ts";
import { storeContract } from "./contract.ts";

storeContract(
  "sqlite",
  async () => {
    const tmp = tempDir("converge-sqlite-store-");
    const path = join(tmp.path, "nested", "dirs", "store.db"); // parent directories are created
    return {
      store: new SqliteStore(path),
      peer: async () => new SqliteStore(path),
      corrupt: async (key, raw) => {
        const db = new Database(path);
        db.run("INSERT OR REPLACE INTO store (key, value) VALUES (?, ?)", [key, raw]);
        db.close(true);
      },
      cleanup: tmp.cleanup,
    };
  },
  { shared: true },
);

const tmp = tempDir("converge-sqlite-");
afterAll(() => tmp.cleanup());

test("the file holds store(key TEXT PRIMARY KEY, value TEXT) in WAL mode", async () => {
  const path = join(tmp.path, "schema.db");
  const store = new SqliteStore(path);
  await store.put("task:1", { state: "pending" });
  const db = new Database(path);
  const cols = db.query<{ name: string; type: string; pk: number }, []>("PRAGMA table_info(store)").all();
  expect(cols.map((c) => [c.name, c.type, c.pk])).toEqual([
    ["key", "TEXT", 1],
    ["value", "TEXT", 0],
  ]);
  expect(db.query<{ journal_mode: string }, []>("PRAGMA journal_mode").get()?.journal_mode).toBe("wal");
  expect(db.query<{ value: string }, []>("SELECT value FROM store WHERE key = 'task:1'").get()?.value).toBe(
    '{"state":"pending"}',
  );
  db.close(true);
  await store.close();
});

test("when a reader held the WAL while it grew past its limit, later writes cut the file back", async () => {
  const path = join(tmp.path, "wal-limit.db");
  const store = new SqliteStore(path);
  const reader = new Database(path);
  reader.run("BEGIN");
  reader.query("SELECT count(*) FROM store").get(); // a snapshot: no checkpoint may pass it
  const mib = "x".repeat(1 << 20);
  for (let i = 0; i * (1 << 20) < WAL_LIMIT_BYTES * 1.25; i++) await store.put(`big:${i}`, mib);
  const grown = statSync(`${path}-wal`).size;
  reader.run("COMMIT");
  reader.close();
  // Enough small commits for an automatic checkpoint, and the one after it that reuses the WAL.
  for (let i = 0; i <= WAL_CHECKPOINT_PAGES; i++) await store.put(`small:${i % 10}`, i);
  expect(grown).toBeGreaterThan(WAL_LIMIT_BYTES);
  expect(statSync(`${path}-wal`).size).toBeLessThanOrEqual(WAL_LIMIT_BYTES);
  await store.close();
});

test("a prefix listing is a range search on the primary key, not a scan", async () => {
  const path = join(tmp.path, "plan.db");
  const store = new SqliteStore(path);
  const db = new Database(path);
  const plan = db
    .query<{ detail: string }, [string, string]>(`EXPLAIN QUERY PLAN ${SQL.listRange}`)
    .all("task:", "task;")
    .map((r) => r.detail)
    .join("; ");
  expect(plan).toMatch(/SEARCH store USING .*INDEX.*\(key>\? AND key<\?\)/);
  db.close(true);
  await store.close();
});

test("when the backlog is large, finding the next task walks the ready index in order and sorts nothing", async () => {
  const path = join(tmp.path, "ready-plan.db");
  const store = new SqliteStore(path);
  const tasks = store.tasks!;
  const { newTask } = await import("../../src/core/task.ts");
  await tasks.submit(
    Array.from({ length: 2000 }, (_, i) => newTask({ id: `t${i}`, priority: i % 3 }, 1, i)),
    1,
  );
  const db = new Database(path);
  const planOf = () =>
    db
      .query<{ detail: string }, [string, number, number]>(`EXPLAIN QUERY PLAN ${QUEUE_SQL.ready}`)
      .all("q", 1, 10)
      .map((r) => r.detail)
      .join("; ");
  // Before and after the planner has statistics, which once made it sort every pending task per claim.
  for (const analyse of [false, true]) {
    if (analyse) db.exec("ANALYZE");
    expect(planOf()).toMatch(/USING INDEX task_ready/);
    expect(planOf()).not.toMatch(/TEMP B-TREE/);
  }
  db.close(true);
  await store.close();
});

test("when leases end and tasks finish, expiry, age, since, counts and open tasks read indexes, and none scans the table", async () => {
  const path = join(tmp.path, "timed-plan.db");
  const store = new SqliteStore(path);
  const { newTask } = await import("../../src/core/task.ts");
  await store.tasks!.submit(
    Array.from({ length: 500 }, (_, i) => newTask({ id: `t${i}` }, 1, i)),
    1,
  );
  const db = new Database(path);
  const planOf = (sql: string, ...args: (string | number)[]) =>
    db
      .query<{ detail: string }, (string | number)[]>(`EXPLAIN QUERY PLAN ${sql}`)
      .all(...args)
      .map((r) => r.detail)
      .join("; ");
  const queries: [string, (string | number)[], string][] = [
    [QUEUE_SQL.expired, [1, 10, 0], "task_until"],
    [QUEUE_SQL.finished, ["completed", 1, 10, 0], "task_until"],
    [QUEUE_SQL.finishedSince, ["failed", 1, 10], "task_until"],
    [QUEUE_SQL.counts, [], "task_until"],
    [QUEUE_SQL.pendingCount, [], "task_ready"],
    [QUEUE_SQL.open, [], "task_ready"],
    [QUEUE_SQL.open, [], "task_until"],
  ];
  for (const analyse of [false, true]) {
    if (analyse) db.exec("ANALYZE");
    for (const [sql, args, index] of queries) {
      const plan = planOf(sql, ...args);
      expect(plan).toMatch(new RegExp(`USING (COVERING )?INDEX ${index}`));
      expect(plan).not.toMatch(/SCAN tasks(?! USING)/);
    }
  }
  // Pending rows are in task_ready alone: a submit and a claim write one index entry fewer.
  const inUntil = db.query<{ n: number }, []>(
    "SELECT count(*) AS n FROM tasks INDEXED BY task_until WHERE state <> 'pending'",
  );
  expect(inUntil.get()!.n).toBe(0);
  db.close(true);
  await store.close();
});

test("when a file of the previous layout is opened, its index over every row goes and its tasks still run", async () => {
  const path = join(tmp.path, "layout-3.db");
  const { newTask } = await import("../../src/core/task.ts");
  const { TaskManager } = await import("../../src/coordination/task-manager.ts");
  const first = new SqliteStore(path);
  await first.tasks!.submit([newTask({ id: "a" }, 1, 1), newTask({ id: "b" }, 1, 2)], 1);
  await first.close();
  // What converge wrote before this layout: task_timed over every row, layout 3.
  const old = new Database(path);
  old.exec("DROP INDEX task_until; CREATE INDEX task_timed ON tasks (state, until);");
  old.run("UPDATE task_meta SET value = '3' WHERE key = 'layout'");
  old.close();
  const store = new SqliteStore(path);
  const indexes = () =>
    new Database(path, { readonly: true })
      .query<{ name: string }, []>("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'tasks'")
      .all()
      .map((r) => r.name);
  expect(indexes()).toContain("task_until");
  expect(indexes()).not.toContain("task_timed");
  const tm = new TaskManager(store);
  const [lease] = await tm.claimNext("w", {});
  expect(lease!.taskId).toBe("a");
  await tm.report(lease!.taskId, { ok: 1 }, { agentId: "w", token: lease!.token });
  expect(await tm.counts()).toMatchObject({ pending: 1, completed: 1, assigned: 0 });
  expect((await tm.list("completed")).map((t) => t.id)).toEqual(["a"]);
  await store.close();
});

test("a path that cannot be opened is a StoreError naming the path", () => {
  const blocker = join(tmp.path, "plain-file");
  writeFileSync(blocker, "not a directory");
  expect(() => new SqliteStore(join(blocker, "store.db"))).toThrow(StoreError);
  expect(() => new SqliteStore(join(blocker, "store.db"))).toThrow(/plain-file/);
  const dir = join(tmp.path, "a-directory");
  mkdirSync(dir);
  expect(() => new SqliteStore(dir)).toThrow(/a-directory/);
});

test("a file that is not a database is a StoreError naming the path", () => {
  const path = join(tmp.path, "garbage.db");
  writeFileSync(path, "this is not sqlite ".repeat(100));
  expect(() => new SqliteStore(path)).toThrow(StoreError);
  expect(() => new SqliteStore(path)).toThrow(/garbage\.db/);
});

test("a write blocked by another process's transaction beyond the busy timeout is a clear StoreError", async () => {
  const path = join(tmp.path, "busy.db");
  const store = new SqliteStore(path, { busyTimeoutMs: 50 });
  const other = new Database(path);
  other.run("BEGIN IMMEDIATE");
  try {
    await expect(store.put("k", 1)).rejects.toThrow(/locked by another process for more than 50 ms/);
    await expect(store.update("k", () => 1)).rejects.toBeInstanceOf(StoreError);
  } finally {
    other.run("ROLLBACK");
    other.close(true);
  }
  await store.put("k", 2);
  expect(await store.get("k")).toBe(2);
  await store.close();
});

test("when a task record written through the key-value API changes its queue and priority, claims follow it", async () => {
  const { newTask, routeId } = await import("../../src/core/task.ts");
  type Task = import("../../src/core/task.ts").Task;
  const path = join(tmp.path, "kv-route.db");
  const store = new SqliteStore(path);
  const peer = new SqliteStore(path);
  const now = 1_800_000_000_000;
  const pool = (p: string) => ({ pools: new Set([p]), capabilities: new Set<string>() });
  const claim = (p: string, n: number) => ({
    agentId: `agent-${p}`,
    now,
    defaultTtlMs: null,
    visibility: pool(p),
    tokens: Array.from({ length: n }, (_, i) => `tok-${p}-${i}`),
  });
  try {
    await store.tasks!.submit(
      [newTask({ id: "moved", poolId: "p1" }, now, 1), newTask({ id: "stays", poolId: "p2", priority: 3 }, now, 2)],
      now,
    );
    // Moved to pool p2, ahead of "stays": once by update, once by put (each a write of `task:moved`).
    await store.update<Task>("task:moved", (t) => ({ ...t!, poolId: "p2", queue: routeId("p2", []), priority: 1 }));
    await store.put("task:moved", { ...(await store.get<Task>("task:moved"))!, priority: 5 });
    expect(await store.tasks!.pending(pool("p1"), now, 10)).toEqual([]);
    expect((await store.tasks!.pending(pool("p2"), now, 10)).map((t) => t.id)).toEqual(["moved", "stays"]);
    // Another handle on the file finds the new queue and takes it in the new order.
    expect((await peer.tasks!.claimNext(claim("p1", 5))).map((t) => t.id)).toEqual([]);
    expect((await peer.tasks!.claimNext(claim("p2", 1))).map((t) => t.id)).toEqual(["moved"]);
  } finally {
    await peer.close();
    await store.close();
  }
});

test("when a submitted batch fails on its last task, its new queue is still registered by a later submit", async () => {
  const { newTask } = await import("../../src/core/task.ts");
  const path = join(tmp.path, "rolled-back-route.db");
  const store = new SqliteStore(path);
  const peer = new SqliteStore(path);
  const now = 1_800_000_000_000;
  const pool = (p: string) => ({ pools: new Set([p]), capabilities: new Set<string>() });
  try {
    // The first task is the first ever in pool p1's queue; the last cannot be stored: nothing is.
    const bad = { ...newTask({ id: "bad" }, now, 2), inputs: { n: 10n } };
    await expect(store.tasks!.submit([newTask({ id: "first", poolId: "p1" }, now, 1), bad], now)).rejects.toThrow(
      StoreError,
    );
    expect(await store.tasks!.getMany(["first", "bad"])).toEqual([undefined, undefined]);
    await store.tasks!.submit([newTask({ id: "later", poolId: "p1" }, now, 3)], now);
    // Another handle on the file finds the queue, and only where the pool is visible.
    const claim = (p: string) => ({ agentId: "b", now, defaultTtlMs: null, visibility: pool(p), tokens: ["tok"] });
    expect(await peer.tasks!.claimNext(claim("p2"))).toEqual([]);
    expect((await peer.tasks!.pending(pool("p1"), now, 10)).map((t) => t.id)).toEqual(["later"]);
    expect((await peer.tasks!.claimNext(claim("p1"))).map((t) => t.id)).toEqual(["later"]);
  } finally {
    await peer.close();
    await store.close();
  }
});

describe("reports asked together", () => {
  /** A store with `n` tasks, all claimed by "w". */
  async function claimedAll(name: string, n: number, options = {}) {
    const { TaskManager } = await import("../../src/coordination/task-manager.ts");
    const store = new SqliteStore(join(tmp.path, `${name}.db`), options);
    const tm = new TaskManager(store);
    await tm.submitMany(Array.from({ length: n }, (_, i) => ({ id: `t${i}` })));
    const leases = await tm.claimNext("w", {}, n);
    expect(leases).toHaveLength(n);
    return { store, tm, leases };
  }
  const together = { together: true } as const;

  test("when a busy worker's reports come in one turn, they wait for its end and each applies or not on its own", async () => {
    const { store, tm, leases } = await claimedAll("together", 5);
    const reports = leases.map((l, i) =>
      tm.reportAndClaim(
        l.taskId,
        { i },
        { agentId: "w", token: i === 2 ? "not-the-token" : l.token },
        undefined,
        together,
      ),
    );
    const settled = Promise.allSettled(reports);
    // Nothing is written before the turn ends.
    expect((await store.tasks!.get("t0"))!.state).toBe("assigned");
    const outcomes = await settled;
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "fulfilled", "rejected", "fulfilled", "fulfilled"]);
    expect((outcomes[2] as PromiseRejectedResult).reason).toBeInstanceOf(LeaseLostError);
    const states = await Promise.all(leases.map(async (l) => (await store.tasks!.get(l.taskId))!.state));
    expect(states).toEqual(["completed", "completed", "assigned", "completed", "completed"]);
    expect((await store.tasks!.get("t4"))!.result).toEqual({ i: 4 });
    await store.close();
  });

  test("when the file stays locked, every report of the turn fails and none is written", async () => {
    const { store, tm, leases } = await claimedAll("together-busy", 3, { busyTimeoutMs: 50 });
    const other = new Database(join(tmp.path, "together-busy.db"));
    other.run("BEGIN IMMEDIATE");
    let outcomes: PromiseSettledResult<unknown>[];
    try {
      outcomes = await Promise.allSettled(
        leases.map((l) => tm.reportAndClaim(l.taskId, 1, { agentId: "w", token: l.token }, undefined, together)),
      );
    } finally {
      other.run("ROLLBACK");
      other.close(true);
    }
    for (const o of outcomes) expect((o as PromiseRejectedResult).reason?.message).toMatch(/locked by another process/);
    for (const l of leases) expect((await store.tasks!.get(l.taskId))!.state).toBe("assigned");
    await store.close();
  });

  test("when the file stays locked, a turn of more reports than one transaction takes waits out the lock once", async () => {
    const { store, tm, leases } = await claimedAll("together-busy-many", 600, { busyTimeoutMs: 250 });
    // Another process holds the lock for 600 ms: the first transaction gives up at 250 ms. Were the
    // others to try in turn, the third would find the file free at 600 ms and write its reports.
    const holder = Bun.spawn(
      [
        process.execPath,
        "-e",
        `import { Database } from "bun:sqlite";
         const db = new Database(${JSON.stringify(join(tmp.path, "together-busy-many.db"))});
         db.run("BEGIN IMMEDIATE"); console.log("held"); Bun.sleepSync(600); db.run("ROLLBACK"); db.close();`,
      ],
      { stdout: "pipe" },
    );
    try {
      const reader = holder.stdout.getReader();
      let out = "";
      while (!out.includes("held")) out += new TextDecoder().decode((await reader.read()).value);
      const outcomes = await Promise.allSettled(
        leases.map((l) => tm.reportAndClaim(l.taskId, 1, { agentId: "w", token: l.token }, undefined, together)),
      );
      expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(0);
    } finally {
      await holder.exited;
    }
    expect((await tm.counts()).assigned).toBe(600);
    await store.close();
  });

  /** `claimedAll`, then two pending tasks, p0 (first) and p1, then `sql` run on the file by another connection. */
  async function withTwoPending(name: string, n: number, sql: string) {
    const claimed = await claimedAll(name, n);
    await claimed.tm.submitMany([
      { id: "p0", priority: 5 },
      { id: "p1", priority: 1 },
    ]);
    const other = new Database(join(tmp.path, `${name}.db`));
    other.run(sql);
    other.close();
    return claimed;
  }

  test("when one report's claim-next fails, that report alone fails and leaves nothing", async () => {
    // Claiming p1 is refused by the file itself (a trigger aborts that statement, not the transaction).
    const { store, tm, leases } = await withTwoPending(
      "together-refused",
      2,
      "CREATE TRIGGER refuse_p1 BEFORE UPDATE ON tasks WHEN NEW.id = 'p1' BEGIN SELECT RAISE(ABORT, 'p1 refused'); END",
    );
    const [first, second] = leases;
    const outcomes = await Promise.allSettled([
      tm.reportAndClaim(first!.taskId, 1, { agentId: "w", token: first!.token }, undefined, together),
      tm.reportAndClaim(second!.taskId, 2, { agentId: "w", token: second!.token }, { scope: {}, max: 2 }, together),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "rejected"]);
    expect((outcomes[1] as PromiseRejectedResult).reason.message).toMatch(/p1 refused/);
    // The failed report and the claim it had begun (p0) are undone; the other report stands.
    const states = async (...ids: string[]) => Promise.all(ids.map(async (id) => (await store.tasks!.get(id))!.state));
    expect(await states(first!.taskId, second!.taskId, "p0", "p1")).toEqual([
      "completed",
      "assigned",
      "pending",
      "pending",
    ]);
    await store.close();
  });

  test("when one report's claim-next meets a record that does not parse, it claims past it", async () => {
    const { store, tm, leases } = await withTwoPending(
      "together-corrupt",
      1,
      "UPDATE tasks SET value = 'not json' WHERE id = 'p0'",
    );
    const [only] = leases;
    const done = await tm.reportAndClaim(
      only!.taskId,
      1,
      { agentId: "w", token: only!.token },
      { scope: {}, max: 2 },
      together,
    );
    expect(done.next.map((l) => l.taskId)).toEqual(["p1"]);
    expect((await store.tasks!.get(only!.taskId))!.state).toBe("completed");
    await store.close();
  });

  test("when one report is too big for the file, the others of its turn are still written", async () => {
    const path = join(tmp.path, "together-full.db");
    const { store: first, leases } = await claimedAll("together-full", 3);
    await first.close();
    const reader = new Database(path, { readonly: true });
    const pages = reader.query<{ page_count: number }, []>("PRAGMA page_count").get()!.page_count;
    reader.close();
    const { TaskManager } = await import("../../src/coordination/task-manager.ts");
    const store = new SqliteStore(path, { maxPageCount: pages + 4 });
    const tm = new TaskManager(store);
    const results = ["ok", "x".repeat(200_000), "ok"];
    const outcomes = await Promise.allSettled(
      leases.map((l, i) =>
        tm.reportAndClaim(l.taskId, results[i], { agentId: "w", token: l.token }, undefined, together),
      ),
    );
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    await store.close();
  });

  test("when a turn holds more reports than one transaction takes, every one is written", async () => {
    const { store, tm, leases } = await claimedAll("together-many", 600);
    const reports = leases.map((l) =>
      tm.reportAndClaim(l.taskId, 1, { agentId: "w", token: l.token }, undefined, together),
    );
    await Promise.all(reports);
    expect((await tm.counts()).completed).toBe(600);
    await store.close();
  });

  test("when the store closes in the turn the reports were asked, they are written first", async () => {
    const { store, tm, leases } = await claimedAll("together-close", 3);
    const reports = leases.map((l) =>
      tm.reportAndClaim(l.taskId, 1, { agentId: "w", token: l.token }, undefined, together),
    );
    await store.close();
    await Promise.all(reports);
    const again = new SqliteStore(join(tmp.path, "together-close.db"));
    for (const l of leases) expect((await again.tasks!.get(l.taskId))!.state).toBe("completed");
    await again.close();
  });
});

test("when another process holds a new file as the store opens it, the open waits for it within the busy timeout", async () => {
  const path = join(tmp.path, "opened-by-two.db");
  // A file in rollback-journal mode that another process is writing (a RESERVED lock, held 300 ms):
  // making it WAL needs it alone, and SQLite answers "database is locked" at once, busy timeout or not.
  const first = new Database(path, { create: true });
  first.run("CREATE TABLE other (x)");
  first.close();
  const holder = Bun.spawn(
    [
      process.execPath,
      "-e",
      `import { Database } from "bun:sqlite";
       const db = new Database(${JSON.stringify(path)});
       db.run("BEGIN IMMEDIATE"); db.run("INSERT INTO other VALUES (1)");
       console.log("held"); Bun.sleepSync(300); db.run("COMMIT"); db.close();`,
    ],
    { stdout: "pipe" },
  );
  const reader = holder.stdout.getReader();
  let out = "";
  while (!out.includes("held")) out += new TextDecoder().decode((await reader.read()).value);
  try {
    const store = new SqliteStore(path, { busyTimeoutMs: 5000 });
    await store.put("k", 1);
    expect(await store.get("k")).toBe(1);
    await store.close();
  } finally {
    await holder.exited;
  }
});

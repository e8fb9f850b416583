/**
 * The bare claim loops converge's task path is measured against (bench coordination): the least
 * a claim and a report can cost on each backend, with none of converge's guarantees beyond the
 * one that matters (a claim takes only a pending task). Same record shape as converge's.
 */
import { Database } from "bun:sqlite";
import { newTask, type Task } from "../../src/core/task.ts";
import { WAL_CHECKPOINT_PAGES } from "../../src/store/sqlite.ts";

/** A Map of records; claim and report are async functions, awaited in turn, as TaskManager's are. */
export async function bareMapClaimReport(n: number): Promise<number> {
  const map = new Map<string, Task>();
  for (let i = 0; i < n; i++) map.set(`t${i}`, newTask({ id: `t${i}`, inputs: { x: i } }));
  const claim = async (id: string, agent: string, token: string) => {
    const t = map.get(id);
    if (t?.state !== "pending") return null;
    const next = { ...t, state: "assigned" as const, assignedTo: agent, leaseToken: token, attempts: t.attempts + 1 };
    map.set(id, next);
    return next;
  };
  const report = async (id: string, token: string, result: unknown) => {
    const t = map.get(id);
    if (!t || t.leaseToken !== token) throw new Error("lease lost");
    map.set(id, { ...t, state: "completed", result, leaseToken: null });
  };
  const t0 = Bun.nanoseconds();
  for (let i = 0; i < n; i++) {
    const id = `t${i}`;
    const l = await claim(id, "bench", "tok");
    if (!l) throw new Error("lost");
    await report(id, "tok", { ok: true });
  }
  return n / ((Bun.nanoseconds() - t0) / 1e9);
}

/**
 * One SQLite file with SqliteStore's settings (WAL, synchronous=NORMAL, the same checkpoint
 * interval), a table of JSON records with the state and token in columns: claim and report are
 * each one BEGIN IMMEDIATE transaction with one conditional UPDATE.
 */
export function bareSqliteClaimReport(path: string, n: number): number {
  const db = new Database(path, { create: true, strict: true });
  db.run("PRAGMA journal_mode = WAL");
  db.run("PRAGMA synchronous = NORMAL");
  db.run(`PRAGMA wal_autocheckpoint = ${WAL_CHECKPOINT_PAGES}`);
  db.run(
    "CREATE TABLE tasks (id TEXT PRIMARY KEY, state TEXT NOT NULL, token TEXT, value TEXT NOT NULL) WITHOUT ROWID",
  );
  const insert = db.prepare("INSERT INTO tasks (id, state, value) VALUES (?, 'pending', ?)");
  db.transaction(() => {
    for (let i = 0; i < n; i++) insert.run(`t${i}`, JSON.stringify(newTask({ id: `t${i}`, inputs: { x: i } })));
  })();
  const claim = db.prepare("UPDATE tasks SET state = 'assigned', token = ? WHERE id = ? AND state = 'pending'");
  const report = db.prepare("UPDATE tasks SET state = 'completed', token = NULL, value = ? WHERE id = ? AND token = ?");
  const claimTx = db.transaction((id: string) => claim.run("tok", id).changes).immediate;
  const reportTx = db.transaction((id: string, value: string) => report.run(value, id, "tok").changes).immediate;
  const result = JSON.stringify({ ok: true });
  const t0 = Bun.nanoseconds();
  for (let i = 0; i < n; i++) {
    if (claimTx(`t${i}`) !== 1) throw new Error("lost");
    if (reportTx(`t${i}`, result) !== 1) throw new Error("lease lost");
  }
  const perSec = n / ((Bun.nanoseconds() - t0) / 1e9);
  db.close(true);
  return perSec;
}

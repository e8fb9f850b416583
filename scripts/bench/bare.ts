/**
 * The bare claim loops converge's task path is measured against (bench coordination): the least
 * a claim and a report can cost on each backend, with none of converge's guarantees beyond the
 * one that matters (a claim takes only a pending task). Same record shape as converge's.
 */
import { Database } from "bun:sqlite";
import { newTask, type Task } from "../../src/core/task.ts";
import { WAL_CHECKPOINT_PAGES, WAL_LIMIT_BYTES } from "../../src/store/sqlite.ts";

/** A connection with SqliteStore's file settings: WAL, synchronous=NORMAL, its checkpoint interval and busy timeout. */
function bareFile(path: string): Database {
  const db = new Database(path, { create: true, strict: true });
  db.run("PRAGMA busy_timeout = 5000");
  db.run("PRAGMA journal_mode = WAL");
  db.run("PRAGMA synchronous = NORMAL");
  db.run(`PRAGMA wal_autocheckpoint = ${WAL_CHECKPOINT_PAGES}`);
  db.run(`PRAGMA journal_size_limit = ${WAL_LIMIT_BYTES}`);
  return db;
}

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
  const db = bareFile(path);
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

/**
 * The bare end-to-end loop on SQLite (bench worker): tasks in a table with an index of pending
 * ones by submit order; each worker process claims the oldest pending task in one BEGIN IMMEDIATE
 * transaction (one UPDATE ... RETURNING) and reports it in another, stamping `done_at`. No leases,
 * no retries, no scopes, no records to parse: the least a shared-file queue can do per task.
 */
export const BARE_QUEUE_SCHEMA = `
  CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY, seq INTEGER NOT NULL, state TEXT NOT NULL, token TEXT, done_at INTEGER, value TEXT NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS ready ON tasks (seq) WHERE state = 'pending';
  CREATE TABLE IF NOT EXISTS submitted (n INTEGER NOT NULL);
`;

export function openBareQueue(path: string): Database {
  const db = bareFile(path);
  db.transaction(() => db.run(BARE_QUEUE_SCHEMA)).immediate();
  return db;
}

/** Inserts tasks `from`..`to`-1 in one transaction; the last batch also says how many there are in all. */
export function bareSubmit(db: Database, prefix: string, from: number, to: number, total?: number): void {
  const insert = db.prepare("INSERT INTO tasks (id, seq, state, value) VALUES (?, ?, 'pending', ?)");
  db.transaction(() => {
    for (let i = from; i < to; i++) {
      const id = `${prefix}-${i}`;
      insert.run(id, i, JSON.stringify(newTask({ id }, Date.now(), i)));
    }
    if (total !== undefined) db.run("INSERT INTO submitted (n) VALUES (?)", [total]);
  }).immediate();
}

/** One worker process's loop: claims and reports until every submitted task is taken; returns how many it did. */
export function bareSqliteWorker(path: string, token: string): number {
  const db = openBareQueue(path);
  const claim = db.prepare(
    "UPDATE tasks SET state = 'assigned', token = ? WHERE id = " +
      "(SELECT id FROM tasks WHERE state = 'pending' ORDER BY seq LIMIT 1) RETURNING id",
  );
  const report = db.prepare(
    "UPDATE tasks SET state = 'completed', token = NULL, done_at = ?, value = ? WHERE id = ? AND token = ?",
  );
  const claimTx = db.transaction(() => (claim.get(token) as { id: string } | null)?.id).immediate;
  const reportTx = db.transaction((id: string) => report.run(Date.now(), '{"ok":true}', id, token).changes).immediate;
  const allSubmitted = db.prepare("SELECT 1 FROM submitted");
  let done = 0;
  for (;;) {
    let id = claimTx();
    if (id === undefined) {
      // Nothing pending: done if the last batch is in (looked at first, then claimed once more, since
      // it may have come in between), else a bare poll while the producer catches up.
      if (allSubmitted.get() === null) {
        Bun.sleepSync(1);
        continue;
      }
      id = claimTx();
      if (id === undefined) break;
    }
    if (reportTx(id) !== 1) throw new Error(`bare worker lost ${id}`);
    done++;
  }
  db.close();
  return done;
}

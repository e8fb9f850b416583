/**
 * One SQLite file shared by any number of processes on one machine (bun:sqlite, WAL).
 *
 * - `store(key TEXT PRIMARY KEY, value TEXT)` holds the records; a prefix listing is a range
 *   `key >= prefix AND key < successor(prefix)` over the primary-key index, never a scan.
 * - update runs in `BEGIN IMMEDIATE`: the write lock is taken before the read, so two processes
 *   can never both read the old value, and no read-to-write lock upgrade can deadlock. An index
 *   change asked of the update commits in the same transaction. putIfAbsent is one
 *   `INSERT ... ON CONFLICT DO NOTHING`, its own write transaction.
 * - Index sets live in `store_index`, channels in `store_notify` (a sequence number per channel).
 *   Subscribers poll `PRAGMA data_version`, which changes only when another connection commits,
 *   so an idle poll costs a microsecond and reads nothing.
 * - Task records live in the task queue's own table (sqlite-queue.ts), with the columns that say
 *   where each task is; `task:<id>` keys read and write those rows (and a `task:` record that is
 *   not a task converge made stays in `store`, like any other key).
 * - `check()` (health) notices what writes cannot: the file deleted or replaced under a running
 *   process (which would go on writing to the old inode unseen), a damaged header or a file shorter
 *   than the pages its header declares (truncated), and, for files up to 64 MiB, `PRAGMA
 *   quick_check` at most once a minute. A checkpoint writes the header before the pages after it,
 *   so a short file is said only if it is still short, under the same header, 50 ms later.
 * bun:sqlite is synchronous: a busy wait blocks the event loop, so transactions stay tiny.
 */
import { Database, SQLiteError, type Statement } from "bun:sqlite";
import { closeSync, mkdirSync, openSync, readSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { StoreError } from "../core/errors.ts";
import { quoted } from "../core/text.ts";
import { logger } from "../observability/log.ts";
import type { Driver } from "./driver.ts";
import { StoreFront } from "./front.ts";
import { prefixUpperBound } from "./keys.ts";
import { PolledChannels } from "./polled-channels.ts";
import { SqliteTaskQueue, TASK_SCHEMA } from "./sqlite-queue.ts";

const log = logger("store.sqlite");

export interface SqliteStoreOptions {
  /** How long a write waits for another process's transaction (default 5000 ms). */
  busyTimeoutMs?: number;
  /** How often subscribers look for commits by other connections (default 5 ms). */
  pollMs?: number;
  /**
   * The most pages this connection lets the file grow to (`PRAGMA max_page_count`); a write that
   * needs more fails with "database or disk is full", as on a full disk. Default: SQLite's.
   */
  maxPageCount?: number;
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS store (key TEXT PRIMARY KEY, value TEXT);
  CREATE TABLE IF NOT EXISTS store_index
    (name TEXT NOT NULL, member TEXT NOT NULL, PRIMARY KEY (name, member)) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS store_notify (channel TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;
  ${TASK_SCHEMA}
`;

/** The SQL of every key-value statement (exported so tests can EXPLAIN exactly what runs). */
export const SQL = {
  get: "SELECT value FROM store WHERE key = ?",
  put: "INSERT INTO store (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
  insert: "INSERT INTO store (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
  del: "DELETE FROM store WHERE key = ?",
  listAll: "SELECT key FROM store ORDER BY key",
  listFrom: "SELECT key FROM store WHERE key >= ? ORDER BY key",
  listRange: "SELECT key FROM store WHERE key >= ? AND key < ? ORDER BY key",
  indexAdd: "INSERT OR IGNORE INTO store_index (name, member) VALUES (?, ?)",
  indexRemove: "DELETE FROM store_index WHERE name = ? AND member = ?",
  indexMembers: "SELECT member FROM store_index WHERE name = ?",
  notify:
    "INSERT INTO store_notify (channel, seq) VALUES (?, 1) " +
    "ON CONFLICT (channel) DO UPDATE SET seq = seq + 1 RETURNING seq",
  seq: "SELECT seq FROM store_notify WHERE channel = ?",
  dataVersion: "PRAGMA data_version",
} as const;

export type Statements = ReturnType<typeof prepare>;

function prepare(db: Database) {
  return {
    get: db.prepare<{ value: unknown }, [string]>(SQL.get),
    put: db.prepare<never, [string, string]>(SQL.put),
    insert: db.prepare<never, [string, string]>(SQL.insert),
    del: db.prepare<never, [string]>(SQL.del),
    listAll: db.prepare<unknown[], []>(SQL.listAll),
    listFrom: db.prepare<unknown[], [string]>(SQL.listFrom),
    listRange: db.prepare<unknown[], [string, string]>(SQL.listRange),
    indexAdd: db.prepare<never, [string, string]>(SQL.indexAdd),
    indexRemove: db.prepare<never, [string, string]>(SQL.indexRemove),
    indexMembers: db.prepare<unknown[], [string]>(SQL.indexMembers),
    notify: db.prepare<{ seq: number }, [string]>(SQL.notify),
    seq: db.prepare<{ seq: number }, [string]>(SQL.seq),
    dataVersion: db.prepare<{ data_version: number }, []>(SQL.dataVersion),
    // biome-ignore lint/suspicious/noExplicitAny: statements differ in their row and parameter types
  } satisfies Record<keyof typeof SQL, Statement<any, any>>;
}

/**
 * WAL pages between automatic checkpoints (SQLite's default: 1,000). A claim and a report each
 * commit a handful of pages (the row, its index entries), so at 1,000 a busy worker checkpointed,
 * two fsyncs each, every couple of hundred tasks, and those fsyncs were most of its time; at 4,000
 * the WAL grows to about 16 MiB before it is reused, and a power loss (not a process crash) may
 * lose the same few last commits as before, since the OS writes the WAL back within seconds anyway.
 */
export const WAL_CHECKPOINT_PAGES = 4000;
/**
 * The size the WAL file is cut back to when it is reused (`PRAGMA journal_size_limit`). A reader
 * that holds a snapshot stops checkpoints, and the WAL grows meanwhile; without a limit it keeps
 * that size on disk for good. Above the steady ~16 MiB, so a busy file is never cut and regrown.
 */
export const WAL_LIMIT_BYTES = 64 * 1024 * 1024;
/** Whether SQLite said the file is locked by another connection (SQLITE_BUSY), as it is or as `run` wrapped it. */
function isLocked(err: unknown): boolean {
  const e = err instanceof StoreError ? err.cause : err;
  return e instanceof SQLiteError && (e.code?.startsWith("SQLITE_BUSY") ?? false);
}

const QUICK_CHECK_EVERY_MS = 60_000;
const QUICK_CHECK_MAX_BYTES = 64 * 1024 * 1024;
/** The database header (file format, section 1.3), and how long before a short file is looked at again. */
const HEADER_BYTES = 100;
const SHORT_RECHECK_MS = 50;

/** An open SQLite file: the connection, its statements, and errors that name the file. */
export class SqliteFile {
  readonly path: string;
  readonly db: Database;
  readonly q: Statements;
  readonly busyMs: number;
  readonly #identity: { dev: number; ino: number } | undefined;
  #quickCheck: { at: number; problem: string | null } | undefined;

  constructor(path: string, busyMs: number, maxPageCount?: number) {
    this.path = path === ":memory:" ? path : resolve(path);
    this.busyMs = busyMs;
    let db: Database | undefined;
    // Processes that open a new file at the same moment (a fleet starting) race to make it WAL, and
    // the loser is told "database is locked" at once, busy timeout or not: it tries again, within it.
    const deadline = performance.now() + busyMs;
    for (let attempt = 0; ; attempt++) {
      try {
        db = this.#connect(busyMs, maxPageCount);
        break;
      } catch (err) {
        db = undefined;
        if (isLocked(err) && performance.now() < deadline) {
          Bun.sleepSync(Math.min(50, 2 ** attempt));
          continue;
        }
        throw new StoreError(`cannot open the SQLite store "${this.path}": ${(err as Error).message}`, { cause: err });
      }
    }
    this.db = db;
    this.q = prepare(db);
    if (this.path !== ":memory:") {
      const st = statSync(this.path);
      this.#identity = { dev: st.dev, ino: st.ino };
    }
  }

  /** A connection with the store's settings and schema (closed again if any step fails). */
  #connect(busyMs: number, maxPageCount?: number): Database {
    if (this.path !== ":memory:") mkdirSync(dirname(this.path), { recursive: true });
    const db = new Database(this.path, { create: true, strict: true });
    try {
      db.run(`PRAGMA busy_timeout = ${busyMs}`);
      const mode = db.query<{ journal_mode: string }, []>("PRAGMA journal_mode = WAL").get()?.journal_mode;
      if (mode !== "wal" && this.path !== ":memory:") {
        log.warn("SQLite refused WAL mode; concurrent readers will wait for writers", { path: this.path, mode });
      }
      db.run("PRAGMA synchronous = NORMAL"); // with WAL: durable across process crashes, one fsync per checkpoint
      db.run(`PRAGMA wal_autocheckpoint = ${WAL_CHECKPOINT_PAGES}`);
      db.run(`PRAGMA journal_size_limit = ${WAL_LIMIT_BYTES}`);
      if (maxPageCount !== undefined) db.run(`PRAGMA max_page_count = ${Math.max(1, Math.floor(maxPageCount))}`);
      db.transaction(() => db.run(SCHEMA)).immediate();
      return db;
    } catch (err) {
      db.close(false);
      throw err;
    }
  }

  /** Whether `err` (from SQLite, or from `run`) says another connection kept the file locked. */
  locked(err: unknown): boolean {
    return isLocked(err);
  }

  /** Runs `fn`, turning SQLite errors into StoreErrors that name the file and say what was being done. */
  run<T>(what: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (!(err instanceof SQLiteError)) throw err; // StoreErrors, and errors thrown by update callbacks
      if (isLocked(err)) {
        throw new StoreError(
          `the SQLite store ${this.path} stayed locked by another process for more than ${this.busyMs} ms (${what})`,
          { cause: err },
        );
      }
      throw new StoreError(`the SQLite store ${this.path} failed to ${what}: ${err.message}`, { cause: err });
    }
  }

  /** What is wrong with the file that writes would not show, or null. */
  check(): string | null | Promise<string | null> {
    if (!this.#identity) return null;
    const first = this.#look();
    if (typeof first === "string") return first;
    if (first.size >= first.declared) return this.#quick(first.size);
    // Short: a checkpoint may be writing the header before the pages after it. Look again shortly.
    return Bun.sleep(SHORT_RECHECK_MS).then(() => {
      const again = this.#look();
      if (typeof again === "string") return again;
      if (again.size < again.declared && again.header.equals(first.header)) {
        return (
          `the database file ${this.path} is truncated: ${again.size} bytes, but its header declares ` +
          `${again.declared} (restore it from a backup)`
        );
      }
      return this.#quick(again.size);
    });
  }

  /** The file's identity, header and size: a problem, or what the header declares. */
  #look(): string | { size: number; declared: number; header: Buffer } {
    let st: ReturnType<typeof statSync>;
    try {
      st = statSync(this.path);
    } catch {
      return `the database file ${this.path} was deleted; this process still writes to the deleted file, so restart it`;
    }
    if (st.dev !== this.#identity!.dev || st.ino !== this.#identity!.ino) {
      return `the database file ${this.path} was replaced by another file; restart this process to use it`;
    }
    const header = Buffer.alloc(HEADER_BYTES);
    let read: number;
    try {
      const fd = openSync(this.path, "r");
      try {
        read = readSync(fd, header, 0, HEADER_BYTES, 0);
      } finally {
        closeSync(fd);
      }
    } catch (err) {
      return `the database file ${this.path} cannot be read: ${(err as Error).message}`;
    }
    if (read < HEADER_BYTES || header.toString("latin1", 0, 16) !== "SQLite format 3\u0000")
      return `the database file ${this.path} has a damaged header`;
    // The header's page count is valid when its change counter matches "version-valid-for" (file format, 1.3).
    const pageSize = header.readUInt16BE(16) === 1 ? 65536 : header.readUInt16BE(16);
    const pages = header.readUInt32BE(28);
    const valid = pages > 0 && header.readUInt32BE(24) === header.readUInt32BE(92);
    return { size: st.size, declared: valid ? pages * pageSize : 0, header };
  }

  #quick(size: number): string | null {
    if (size > QUICK_CHECK_MAX_BYTES) return null;
    const now = performance.now();
    if (!this.#quickCheck || now - this.#quickCheck.at > QUICK_CHECK_EVERY_MS) {
      const rows = this.db
        .query<{ quick_check: string }, []>("PRAGMA quick_check(5)")
        .all()
        .map((r) => r.quick_check);
      this.#quickCheck = {
        at: now,
        problem: rows.join("; ") === "ok" ? null : `the database file ${this.path} is corrupt: ${rows.join("; ")}`,
      };
    }
    return this.#quickCheck.problem;
  }
}

function sqliteDriver(path: string, options: SqliteStoreOptions = {}): Driver<string> & { file: SqliteFile } {
  const file = new SqliteFile(path, options.busyTimeoutMs ?? 5000, options.maxPageCount);
  const { db, q } = file;
  const pollMs = options.pollMs ?? 5;
  let dataVersion = 0;

  const decode = (row: { value: unknown } | null) => (row === null ? undefined : (row.value as string));
  const tasks = new SqliteTaskQueue(file);
  /** `task:<id>` → the id, for keys the task table may hold. */
  const taskId = (key: string) => (key.startsWith("task:") ? key.slice(5) : undefined);
  const read = (key: string) => {
    const id = taskId(key);
    return (id !== undefined ? tasks.textOf(id) : undefined) ?? decode(q.get.get(key));
  };
  const write = (key: string, text: string) => {
    const id = taskId(key);
    if (id === undefined || !tasks.writeText(id, text)) q.put.run(key, text);
  };
  const set = db.transaction((key: string, text: string) => write(key, text)).immediate;
  const update = db.transaction((key: string, step: Parameters<Driver<string>["update"]>[1]) => {
    const w = step(read(key));
    if (!w) return;
    write(key, w.value);
    if (w.index) (w.index.add ? q.indexAdd : q.indexRemove).run(w.index.name, w.index.member);
  }).immediate;
  const setIfAbsent = db.transaction((key: string, text: string) => {
    const id = taskId(key);
    if (id !== undefined && tasks.textOf(id) !== undefined) return false;
    return q.insert.run(key, text).changes === 1;
  }).immediate;
  const indexAdd = db.transaction((name: string, members: readonly string[]) => {
    for (const m of members) q.indexAdd.run(name, m);
  }).immediate;
  const indexRemove = db.transaction((name: string, members: readonly string[]) => {
    for (const m of members) q.indexRemove.run(name, m);
  }).immediate;

  const seqOf = (channel: string) => q.seq.get(channel)?.seq ?? 0;
  const channels: PolledChannels<number> = new PolledChannels(pollMs, () => {
    try {
      const version = q.dataVersion.get()!.data_version;
      if (version === dataVersion) return;
      dataVersion = version;
      channels.check(seqOf);
    } catch (err) {
      log.error("cannot poll for notifications", { path: file.path, err });
    }
  });

  return {
    codec: "json",
    description: `sqlite ${file.path}`,
    file,
    get: (key) => file.run(`read ${quoted(key)}`, () => read(key)),
    // One prepared statement run per key, in one synchronous pass.
    getMany: (keys) => file.run(`read ${keys.length} records`, () => keys.map(read)),
    set: (key, value) => file.run(`write ${quoted(key)}`, () => set(key, value)),
    setIfAbsent: (key, value) => file.run(`write ${quoted(key)}`, () => setIfAbsent(key, value)),
    delete: (key) =>
      file.run(`delete ${quoted(key)}`, () => {
        const id = taskId(key);
        const fromTasks = id !== undefined && tasks.deleteText(id);
        return q.del.run(key).changes > 0 || fromTasks;
      }),
    list: (prefix) =>
      file.run(`list ${quoted(prefix)}`, () => {
        let keys: string[];
        if (prefix === "") keys = q.listAll.values().map((r) => r[0] as string);
        else {
          const upper = prefixUpperBound(prefix);
          const rows = upper === undefined ? q.listFrom.values(prefix) : q.listRange.values(prefix, upper);
          keys = rows.map((r) => r[0] as string);
        }
        if ("task:".startsWith(prefix) || prefix.startsWith("task:")) {
          for (const id of tasks.ids()) if (`task:${id}`.startsWith(prefix)) keys.push(`task:${id}`);
        }
        return keys;
      }),
    update: (key, step) => file.run(`update ${quoted(key)}`, () => update(key, step)),
    indexAdd: (name, members) => file.run(`add to index ${quoted(name)}`, () => indexAdd(name, members)),
    indexRemove: (name, members) => file.run(`remove from index ${quoted(name)}`, () => indexRemove(name, members)),
    indexMembers: (name) =>
      file.run(`read index ${quoted(name)}`, () => q.indexMembers.values(name).map((r) => r[0] as string)),
    publish(channel) {
      const seq = file.run(`notify ${quoted(channel)}`, () => q.notify.get(channel)!.seq);
      // Our own commits do not change our data_version: remember the seq so the next poll does not echo it.
      channels.mark(channel, seq);
    },
    watch(channel, heard) {
      file.run(`subscribe to ${quoted(channel)}`, () => {
        if (channels.size === 0) dataVersion = q.dataVersion.get()!.data_version;
        channels.watch(channel, seqOf(channel), heard);
      });
    },
    unwatch: (channel) => channels.unwatch(channel),
    now: () => Date.now(),
    check: () => file.run("check the file", () => file.check()),
    tasks,
    close() {
      channels.close();
      try {
        tasks.flush(); // transitions held for the end of the turn are written, not dropped
      } catch (err) {
        log.error("writing the last task changes before closing failed", { path: file.path, err });
      }
      try {
        db.close(true); // finalizes our statements and really closes now, not at garbage collection
      } catch (err) {
        log.error("closing the SQLite store failed", { path: file.path, err });
      }
    },
  };
}

export class SqliteStore extends StoreFront {
  readonly path: string;

  constructor(path: string, options: SqliteStoreOptions = {}) {
    const driver = sqliteDriver(path, options);
    super(driver);
    this.path = driver.file.path;
  }
}

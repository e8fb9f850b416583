/**
 * One SQLite file shared by any number of processes on one machine (bun:sqlite, WAL).
 *
 * - `store(key TEXT PRIMARY KEY, value TEXT)` holds the records; a prefix listing is a range
 *   `key >= prefix AND key < successor(prefix)` over the primary-key index, never a scan.
 * - update runs in `BEGIN IMMEDIATE`: the write lock is taken before the read, so two processes
 *   can never both read the old value, and no read-to-write lock upgrade can deadlock. An index
 *   change asked of the update (UpdateOptions.index) commits in the same transaction.
 *   putIfAbsent is one `INSERT ... ON CONFLICT DO NOTHING`, which is its own write transaction.
 * - Index sets live in `store_index`, channels in `store_notify` (a sequence number per channel).
 *   Subscribers poll `PRAGMA data_version`, which changes only when another connection commits,
 *   so an idle poll costs a microsecond and reads nothing.
 * bun:sqlite is synchronous: a busy wait blocks the event loop, so transactions stay tiny.
 */
import { Database, SQLiteError, type Statement } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { StoreError } from "../core/errors.ts";
import { logger } from "../observability/log.ts";
import { parseRecord, serialise } from "./json.ts";
import { checkIndexUpdate, checkKey, prefixUpperBound } from "./keys.ts";
import { Listeners } from "./listeners.ts";
import { DECLINE, type Decline, type Store, type UpdateOptions } from "./store.ts";

const log = logger("store.sqlite");

export interface SqliteStoreOptions {
  /** How long a write waits for another process's transaction (default 5000 ms). */
  busyTimeoutMs?: number;
  /** How often subscribers look for commits by other connections (default 5 ms). */
  pollMs?: number;
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS store (key TEXT PRIMARY KEY, value TEXT);
  CREATE TABLE IF NOT EXISTS store_index (name TEXT NOT NULL, member TEXT NOT NULL, PRIMARY KEY (name, member)) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS store_notify (channel TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;
`;

type Row = { value: unknown };
type IndexUpdate = NonNullable<UpdateOptions["index"]>;

export class SqliteStore implements Store {
  readonly description: string;
  readonly path: string;
  readonly #db: Database;
  readonly #busyMs: number;
  readonly #pollMs: number;
  readonly #q: ReturnType<typeof prepare>;
  readonly #updateTx: (key: string, fn: (current: unknown) => unknown, index?: IndexUpdate) => unknown;
  readonly #indexAddTx: (index: string, members: string[]) => void;
  readonly #listeners = new Listeners();
  readonly #seen = new Map<string, number>();
  #dataVersion = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  constructor(path: string, options: SqliteStoreOptions = {}) {
    this.path = path === ":memory:" ? path : resolve(path);
    this.description = `sqlite ${this.path}`;
    this.#busyMs = options.busyTimeoutMs ?? 5000;
    this.#pollMs = options.pollMs ?? 5;
    let db: Database | undefined;
    try {
      if (this.path !== ":memory:") mkdirSync(dirname(this.path), { recursive: true });
      db = new Database(this.path, { create: true, strict: true });
      db.run(`PRAGMA busy_timeout = ${this.#busyMs}`);
      const mode = db.query<{ journal_mode: string }, []>("PRAGMA journal_mode = WAL").get()?.journal_mode;
      if (mode !== "wal" && this.path !== ":memory:")
        log.warn("SQLite refused WAL mode; concurrent readers will wait for writers", { path: this.path, mode });
      db.run("PRAGMA synchronous = NORMAL"); // with WAL: durable across process crashes, one fsync per checkpoint
      db.transaction(() => db!.run(SCHEMA)).immediate();
    } catch (err) {
      db?.close(false);
      throw new StoreError(`cannot open the SQLite store "${this.path}": ${(err as Error).message}`, { cause: err });
    }
    this.#db = db;
    this.#q = prepare(db);
    this.#updateTx = db.transaction((key: string, fn: (current: unknown) => unknown, index?: IndexUpdate) => {
      const current = this.#decode(key, this.#q.get.get(key));
      const next = fn(current);
      if (next === DECLINE) return current;
      const text = serialise(key, next);
      const stored = JSON.parse(text);
      this.#q.put.run(key, text);
      if (index) {
        if (index.keep(stored)) this.#q.indexAdd.run(index.name, index.member);
        else this.#q.indexRemove.run(index.name, index.member);
      }
      return stored;
    }).immediate;
    this.#indexAddTx = db.transaction((index: string, members: string[]) => {
      for (const m of members) this.#q.indexAdd.run(index, m);
    }).immediate;
  }

  /** Checks state and arguments, runs `fn`, and turns SQLite errors into StoreErrors naming the file. */
  #run<T>(what: string, fn: () => T, name?: string, kind?: string): T {
    if (this.#closed) throw new StoreError(`the SQLite store ${this.path} is closed`);
    if (name !== undefined) checkKey(name, kind);
    try {
      return fn();
    } catch (err) {
      if (!(err instanceof SQLiteError)) throw err; // StoreErrors, and errors thrown by update callbacks
      if (err.code?.startsWith("SQLITE_BUSY")) {
        throw new StoreError(
          `the SQLite store ${this.path} stayed locked by another process for more than ${this.#busyMs} ms (${what})`,
          { cause: err },
        );
      }
      throw new StoreError(`the SQLite store ${this.path} failed to ${what}: ${err.message}`, { cause: err });
    }
  }

  #decode(key: string, row: Row | null): unknown {
    if (row === null) return undefined;
    if (typeof row.value !== "string")
      throw new StoreError(`the record "${key}" is corrupt (not JSON text); repair or delete it`);
    return parseRecord(key, row.value);
  }

  async get<T>(key: string): Promise<T | undefined> {
    return this.#run(`read "${key}"`, () => this.#decode(key, this.#q.get.get(key)) as T | undefined, key);
  }

  /** One prepared statement run per key, in one synchronous pass (no other work of this process in between). */
  async getMany<T>(keys: readonly string[]): Promise<(T | undefined)[]> {
    return this.#run(`read ${keys.length} records`, () => {
      for (const key of keys) checkKey(key);
      return keys.map((key) => this.#decode(key, this.#q.get.get(key)) as T | undefined);
    });
  }

  async put(key: string, value: unknown): Promise<void> {
    this.#run(`write "${key}"`, () => void this.#q.put.run(key, serialise(key, value)), key);
  }

  async delete(key: string): Promise<boolean> {
    return this.#run(`delete "${key}"`, () => this.#q.del.run(key).changes > 0, key);
  }

  async list(prefix: string): Promise<string[]> {
    return this.#run(
      `list "${prefix}"`,
      () => {
        if (prefix === "") return this.#q.listAll.values().map((r) => r[0] as string);
        const upper = prefixUpperBound(prefix);
        const rows = upper === undefined ? this.#q.listFrom.values(prefix) : this.#q.listRange.values(prefix, upper);
        return rows.map((r) => r[0] as string);
      },
      prefix,
      "prefix",
    );
  }

  async putIfAbsent(key: string, value: unknown): Promise<boolean> {
    return this.#run(`write "${key}"`, () => this.#q.insert.run(key, serialise(key, value)).changes === 1, key);
  }

  /** One BEGIN IMMEDIATE transaction: read, `fn`, write and the index change commit together. The hint is ignored. */
  async update<T>(
    key: string,
    fn: (current: T | undefined) => T | Decline,
    options?: UpdateOptions<T>,
  ): Promise<T | undefined> {
    const index = options?.index as IndexUpdate | undefined;
    return this.#run(
      `update "${key}"`,
      () => {
        if (index) checkIndexUpdate(index);
        return this.#updateTx(key, fn as (c: unknown) => unknown, index) as T | undefined;
      },
      key,
    );
  }

  async indexAdd(index: string, ...members: string[]): Promise<void> {
    for (const m of members) checkKey(m, "index member");
    this.#run(`add to index "${index}"`, () => this.#indexAddTx(index, members), index, "index name");
  }

  async indexRemove(index: string, ...members: string[]): Promise<void> {
    this.#run(
      `remove from index "${index}"`,
      () => {
        for (const m of members) this.#q.indexRemove.run(index, m);
      },
      index,
      "index name",
    );
  }

  async indexMembers(index: string): Promise<string[]> {
    return this.#run(
      `read index "${index}"`,
      () => this.#q.indexMembers.values(index).map((r) => r[0] as string),
      index,
      "index name",
    );
  }

  async notify(channel: string): Promise<void> {
    const seq = this.#run(`notify "${channel}"`, () => this.#q.notify.get(channel)!.seq, channel, "channel");
    // Our own commits do not change our data_version; remember the seq so the next poll does not echo it.
    if (this.#seen.has(channel)) this.#seen.set(channel, seq);
    this.#listeners.fire(channel);
  }

  subscribe(channel: string, listener: () => void): () => void {
    this.#run(
      `subscribe to "${channel}"`,
      () => {
        if (this.#listeners.has(channel)) return;
        if (this.#listeners.size === 0) this.#dataVersion = this.#q.dataVersion.get()!.data_version;
        this.#seen.set(channel, this.#q.seq.get(channel)?.seq ?? 0);
      },
      channel,
      "channel",
    );
    const off = this.#listeners.add(channel, listener, (c) => {
      this.#seen.delete(c);
      if (this.#listeners.size === 0) this.#stopPolling();
    });
    this.#timer ??= setInterval(() => this.#poll(), this.#pollMs);
    return off;
  }

  #poll(): void {
    try {
      const version = this.#q.dataVersion.get()!.data_version;
      if (version === this.#dataVersion) return;
      this.#dataVersion = version;
      for (const channel of this.#listeners.channels()) {
        const seq = this.#q.seq.get(channel)?.seq ?? 0;
        if (seq === this.#seen.get(channel)) continue;
        this.#seen.set(channel, seq);
        this.#listeners.fire(channel);
      }
    } catch (err) {
      log.error("cannot poll for notifications", { path: this.path, error: err });
    }
  }

  #stopPolling(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  async now(): Promise<number> {
    return this.#run("read the clock", () => Date.now());
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopPolling();
    this.#listeners.clear();
    try {
      this.#db.close(true); // finalizes our statements and really closes now, not at garbage collection
    } catch (err) {
      log.error("closing the SQLite store failed", { path: this.path, error: err });
    }
  }
}

/** The SQL of every statement (exported so tests can EXPLAIN exactly what runs). */
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
    "INSERT INTO store_notify (channel, seq) VALUES (?, 1) ON CONFLICT (channel) DO UPDATE SET seq = seq + 1 RETURNING seq",
  seq: "SELECT seq FROM store_notify WHERE channel = ?",
  dataVersion: "PRAGMA data_version",
} as const;

/** Every statement, prepared once per connection. */
function prepare(db: Database) {
  return {
    get: db.prepare<Row, [string]>(SQL.get),
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

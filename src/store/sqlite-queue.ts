/**
 * The SQLite store's native task queue (task-queue.ts). Task records live in their own table,
 * `tasks`, one row each: the record's JSON (`value`) beside the columns that say where it is
 * (state, queue, priority, seq, `until`: notBefore for pending tasks, the lease end for held
 * ones, updatedAt for finished ones) and its lease token. One row, so that a claim or a report
 * writes one table row and its index entries and nothing else (every page a commit touches is a
 * WAL frame: a second table of places halved the throughput).
 *
 * - Finding work is one indexed query per visible queue (`task_ready`: queue, priority DESC, seq,
 *   over pending rows), merged here: no scan of the backlog, however large.
 * - Claim, report-and-claim-next, fail, renew: one short BEGIN IMMEDIATE transaction each; a
 *   holder's change is checked on the row's state and token, without parsing the record. A busy
 *   worker's reports (`together`) wait for the end of the turn and share one transaction: a
 *   commit's cost is its pages, and the reports of one turn touch mostly the same index pages.
 * - Expired leases, finished tasks by age (and since a time) and counts by state: indexed queries on
 *   (state, until) over the rows that are not pending (`task_until`). Pending rows stay out of it:
 *   a submit and a claim then write one index entry fewer (task_ready has them), and every page a
 *   commit touches is a WAL frame. Its queries repeat `state <> 'pending'`, the term SQLite needs
 *   to see before it uses a partial index.
 *
 * - A record that does not parse (a damaged file, a stray write) is passed by, and named once in
 *   the log: claims shelve it when pending (its `until` past any time, so task_ready's due range
 *   no longer holds it), scans leave it out. Deleting the row, or writing the record again through
 *   converge (which sets its columns), is the repair.
 *
 * The key-value view (`task:<id>` through the Store contract) reads and writes the same rows
 * (sqlite.ts routes those keys here): a record written that way keeps its columns in step. A
 * `task:` record that is not a task converge made lives in the plain `store` table, as any key.
 * Files written by converge 0.1 (task records in `store`) are adopted once, on first open; files
 * of layout 3 lose their `task_timed` index (every row) to `task_until` (rows not pending).
 */
import type { Statement } from "bun:sqlite";
import {
  FINAL_STATE_LIST,
  type FinalState,
  HELD_STATES,
  isFinalState,
  isTaskState,
  type Task,
  type TaskState,
} from "../core/task.ts";
import { serialise } from "./json.ts";
import type { SqliteFile } from "./sqlite.ts";
import {
  byFinish,
  byRun,
  type Claim,
  type ClaimNext,
  canonical,
  canSee,
  claimable,
  claimed,
  emptyCounts,
  type Expect,
  expectHolds,
  type FinishedEntry,
  passDamaged,
  type TaskQueue,
  type Transition,
  type TransitionOptions,
  taskKey,
  taskOf,
  type Visibility,
} from "./task-queue.ts";

export const TASK_SCHEMA = `
  CREATE TABLE IF NOT EXISTS tasks (
    id TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL,
    queue TEXT NOT NULL,
    priority INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    until INTEGER,
    token TEXT,
    value TEXT NOT NULL
  );
  CREATE INDEX IF NOT EXISTS task_ready ON tasks (queue, priority DESC, seq) WHERE state = 'pending';
  CREATE INDEX IF NOT EXISTS task_until ON tasks (state, until) WHERE state <> 'pending';
  CREATE TABLE IF NOT EXISTS task_queues (queue TEXT PRIMARY KEY, route TEXT NOT NULL) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS task_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
`;

/** The SQL of every queue statement (exported so tests can EXPLAIN exactly what runs). */
export const QUEUE_SQL = {
  get: "SELECT value FROM tasks WHERE id = ?",
  lease: "SELECT state, token FROM tasks WHERE id = ?",
  insert:
    "INSERT INTO tasks (id, state, queue, priority, seq, until, token, value) VALUES (?, ?, ?, ?, ?, ?, ?, ?) " +
    "ON CONFLICT (id) DO NOTHING",
  // Every column: a record written through the key-value view may move to another queue, priority or seq.
  update: "UPDATE tasks SET state = ?, queue = ?, priority = ?, seq = ?, until = ?, token = ?, value = ? WHERE id = ?",
  upsert:
    "INSERT INTO tasks (id, state, queue, priority, seq, until, token, value) VALUES (?, ?, ?, ?, ?, ?, ?, ?) " +
    "ON CONFLICT (id) DO UPDATE SET state = excluded.state, queue = excluded.queue, priority = excluded.priority, " +
    "seq = excluded.seq, until = excluded.until, token = excluded.token, value = excluded.value",
  // INDEXED BY: left to itself the planner once took an index on (state, until) and sorted every pending
  // task for each claim, O(n log n) in the backlog; task_ready reads them in order and stops at LIMIT.
  ready:
    "SELECT id, priority, seq FROM tasks INDEXED BY task_ready WHERE queue = ? AND state = 'pending' AND until <= ? " +
    "ORDER BY priority DESC, seq LIMIT ?",
  expired:
    "SELECT id, value FROM tasks WHERE state <> 'pending' AND state IN ('assigned', 'running') AND until <= ? " +
    "ORDER BY until LIMIT ? OFFSET ?",
  finished:
    "SELECT id, value FROM tasks WHERE state <> 'pending' AND state = ? AND until < ? ORDER BY until LIMIT ? OFFSET ?",
  finishedSince:
    "SELECT id, until FROM tasks WHERE state <> 'pending' AND state = ? AND until >= ? ORDER BY until, id LIMIT ?",
  // Pending rows from task_ready, held ones from task_until: one index could not serve both, and
  // left to itself the planner scans the table (finished rows included) for the IN list.
  open:
    "SELECT id, value FROM tasks INDEXED BY task_ready WHERE state = 'pending' UNION ALL " +
    "SELECT id, value FROM tasks INDEXED BY task_until WHERE state <> 'pending' AND state IN ('assigned', 'running')",
  // Two covering index scans: pending rows are in task_ready alone, the others in task_until alone.
  pendingCount: "SELECT count(*) AS n FROM tasks WHERE state = 'pending'",
  counts: "SELECT state, count(*) AS n FROM tasks WHERE state <> 'pending' GROUP BY state",
  state: "SELECT state FROM tasks WHERE id = ?",
  // A pending record that does not parse: out of task_ready's due range for good, until rewritten.
  shelve: "UPDATE tasks SET until = 9007199254740991 WHERE id = ?",
  del: "DELETE FROM tasks WHERE id = ?",
  ids: "SELECT id FROM tasks",
  addQueue: "INSERT OR IGNORE INTO task_queues (queue, route) VALUES (?, ?)",
  queues: "SELECT queue, route FROM task_queues",
  queueCount: "SELECT count(*) AS n FROM task_queues",
  meta: "SELECT value FROM task_meta WHERE key = ?",
  setMeta: "INSERT OR REPLACE INTO task_meta (key, value) VALUES (?, ?)",
  legacyKeys: "SELECT key, value FROM store WHERE key >= 'task:' AND key < 'task;'",
  legacyDel: "DELETE FROM store WHERE key = ?",
  plainHas: "SELECT 1 FROM store WHERE key = ?",
} as const;

type Route = { poolId: string | null; capabilities: string[] };
/** The most held transitions one transaction commits (a process of 1,000 agents may hold thousands). */
const TOGETHER_MAX = 256;
/** A transition held for the end of the turn. */
type Held = { id: string; expect: Expect; next: Task; then?: ClaimNext; done: PromiseWithResolvers<Transition> };
type Candidate = { id: string; priority: number; seq: number };
const LAYOUT = "4";

/** Where a record's columns put it: `until` by state (see the header). */
function untilOf(t: Task): number | null {
  if (t.state === "pending") return t.notBefore ?? 0;
  if (HELD_STATES.has(t.state)) return t.leaseExpiresAt ?? null;
  return t.updatedAt;
}

/** Whether a value written under `task:<id>` is a task record the queue can place. */
function isTaskRecord(v: unknown, id: string): v is Task {
  const t = v as Task;
  return (
    typeof v === "object" &&
    v !== null &&
    t.id === id &&
    isTaskState(t.state) &&
    typeof t.queue === "string" &&
    typeof t.priority === "number" &&
    typeof t.seq === "number"
  );
}

export class SqliteTaskQueue implements TaskQueue {
  readonly #f: SqliteFile;
  // biome-ignore lint/suspicious/noExplicitAny: statements differ in their rows
  readonly #s: { [K in keyof typeof QUEUE_SQL]: Statement<any, any[]> };
  /** Queues known to be in task_queues: only committed rows (a rolled-back submit adds none). */
  readonly #routes = new Map<string, Route>();
  /** The store's clock is this host's: no promise needed. */
  readonly clock = () => Date.now();
  readonly #tx: {
    submit: (tasks: readonly Task[], added: Map<string, Route>) => boolean[];
    claim: (id: string, claim: Claim, token: string) => { task: Task | null; current: Task | undefined };
    claimNext: (claim: ClaimNext) => Task[];
    transition: (id: string, expect: Expect, next: Task, then?: ClaimNext) => Transition;
    together: (batch: readonly Held[]) => (Transition | { error: unknown })[];
    remove: (ids: readonly string[]) => number;
  };
  /** Transitions asked `together`, waiting for the end of the turn (`flush`). */
  #together: Held[] = [];

  constructor(file: SqliteFile) {
    this.#f = file;
    const db = file.db;
    this.#s = Object.fromEntries(Object.entries(QUEUE_SQL).map(([k, sql]) => [k, db.prepare(sql)])) as never;
    const itsOwn = db.transaction((b: Held) => this.#transition(b.id, b.expect, b.next, b.then));
    this.#tx = {
      submit: db.transaction((tasks: readonly Task[], added: Map<string, Route>) => this.#submit(tasks, added))
        .immediate,
      claim: db.transaction((id: string, claim: Claim, token: string) => this.#claim(id, claim, token)).immediate,
      claimNext: db.transaction((claim: ClaimNext) => this.#claimNext(claim)).immediate,
      transition: db.transaction((id: string, expect: Expect, next: Task, then?: ClaimNext) =>
        this.#transition(id, expect, next, then),
      ).immediate,
      together: db.transaction((batch: readonly Held[]) =>
        batch.map((b) => {
          try {
            // Each in a savepoint of its own (bun:sqlite runs a transaction inside another as one): what
            // fails in it (a record that does not parse, a value too big for the file) undoes it alone.
            return this.#f.run(`update task ${b.id}`, () => itsOwn(b));
          } catch (err) {
            // SQLite gave the whole transaction up (an I/O error, a full disk): none of them stands.
            if (!db.inTransaction) throw err;
            return { error: err };
          }
        }),
      ).immediate,
      remove: db.transaction((ids: readonly string[]) => this.#remove(ids)).immediate,
    };
    file.run("adopt tasks of an older layout", () => db.transaction(() => this.#adopt()).immediate());
  }

  async get(id: string): Promise<Task | undefined> {
    return this.#f.run(`read task ${id}`, () => this.#read(id));
  }

  async getMany(ids: readonly string[]): Promise<(Task | undefined)[]> {
    return this.#f.run(`read ${ids.length} tasks`, () => ids.map((id) => this.#read(id)));
  }

  async submit(tasks: readonly Task[]): Promise<boolean[]> {
    return this.#f.run(`submit ${tasks.length} task(s)`, () => {
      const added = new Map<string, Route>();
      const created = this.#tx.submit(tasks, added);
      // Committed: the queues it registered are in task_queues now (had it thrown, they would not be).
      for (const [queue, route] of added) this.#routes.set(queue, route);
      return created;
    });
  }

  async claim(id: string, claim: Claim, token: string): Promise<{ task: Task | null; current: Task | undefined }> {
    return this.#f.run(`claim task ${id}`, () => this.#tx.claim(id, claim, token));
  }

  async claimNext(claim: ClaimNext): Promise<Task[]> {
    if (claim.tokens.length === 0) return [];
    return this.#f.run("claim tasks", () => this.#tx.claimNext(claim));
  }

  transition(
    id: string,
    expect: Expect,
    next: Task,
    _now: number,
    then?: ClaimNext,
    options?: TransitionOptions,
  ): Promise<Transition> {
    if (options?.together) {
      const done = Promise.withResolvers<Transition>();
      if (this.#together.length === 0) setImmediate(this.flush);
      this.#together.push({ id, expect, next, then, done });
      return done.promise;
    }
    return this.#transitionNow(id, expect, next, then);
  }

  async #transitionNow(id: string, expect: Expect, next: Task, then?: ClaimNext): Promise<Transition> {
    return this.#f.run(`update task ${id}`, () => this.#tx.transition(id, expect, next, then));
  }

  /**
   * Runs the transitions held for the end of the turn in one transaction (one commit for all: every
   * page a commit touches is a WAL frame), each in its own savepoint, so each applies or fails on
   * its own; when the whole transaction fails, each is tried again alone, except when the file
   * stayed locked (then all are refused, and nothing of them is written). The store runs it before
   * it closes.
   */
  readonly flush = (): void => {
    const held = this.#together;
    this.#together = [];
    // In transactions of at most TOGETHER_MAX, so that other processes get the lock between them.
    for (let i = 0; i < held.length; i += TOGETHER_MAX) {
      const locked = this.#commit(held.slice(i, i + TOGETHER_MAX));
      if (locked) {
        // The rest would wait out the busy timeout again, each slice blocking the loop: refused now.
        for (const b of held.slice(i + TOGETHER_MAX)) b.done.reject(locked);
        return;
      }
    }
  };

  /** Commits one slice; the error when the file stayed locked beyond the busy timeout. */
  #commit(batch: Held[]): unknown {
    let out: (Transition | { error: unknown })[];
    try {
      out = this.#f.run(`update ${batch.length} task(s)`, () => this.#tx.together(batch));
    } catch (err) {
      // Locked beyond the busy timeout: all wait for the next try. Otherwise one of them may be the
      // cause (a value too big for the file makes SQLite give up the whole transaction), so each
      // goes again alone and fails, or not, by itself.
      const locked = this.#f.locked(err);
      if (locked || batch.length === 1) for (const b of batch) b.done.reject(err);
      else
        for (const b of batch) this.#transitionNow(b.id, b.expect, b.next, b.then).then(b.done.resolve, b.done.reject);
      return locked ? err : undefined;
    }
    batch.forEach((b, i) => {
      const r = out[i]!;
      if ("error" in r) b.done.reject(r.error);
      else b.done.resolve(r);
    });
  }

  async pending(visibility: Visibility, now: number, limit: number): Promise<Task[]> {
    return this.#f.run("list pending tasks", () => {
      const ids = this.#candidates(visibility, now, limit).map((c) => c.id);
      const texts = ids.map((id) => [id, this.textOf(id)]).filter((r): r is [string, string] => r[1] !== undefined);
      return this.#values(texts).filter((t) => claimable(t, now));
    });
  }

  async expired(now: number, limit: number): Promise<Task[]> {
    return this.#f.run("list expired leases", () =>
      this.#filled(limit, (n, skip) => this.#s.expired.values(now, n, skip)),
    );
  }

  async open(): Promise<Task[]> {
    return this.#f.run("list open tasks", () => this.#values(this.#s.open.values()));
  }

  async finished(state: FinalState, before: number, limit: number): Promise<Task[]> {
    const until = Number.isFinite(before) ? before : Number.MAX_SAFE_INTEGER;
    return this.#f.run(`list ${state} tasks`, () =>
      this.#filled(limit, (n, skip) => this.#s.finished.values(state, until, n, skip)),
    );
  }

  async finishedSince(since: number, limit: number): Promise<FinishedEntry[]> {
    return this.#f.run("list finished tasks", () => {
      // The first `limit` of each state hold the first `limit` of all.
      const out: FinishedEntry[] = [];
      for (const state of FINAL_STATE_LIST) {
        for (const [id, until] of this.#s.finishedSince.values(state, since, sqlLimit(limit)) as [string, number][])
          out.push({ id, state, updatedAt: until });
      }
      return out.sort(byFinish).slice(0, limit);
    });
  }

  async remove(ids: readonly string[]): Promise<number> {
    return this.#f.run(`remove ${ids.length} task(s)`, () => this.#tx.remove(ids));
  }

  async counts(): Promise<Record<TaskState, number>> {
    return this.#f.run("count tasks", () => {
      const counts = emptyCounts();
      counts.pending = (this.#s.pendingCount.get() as { n: number }).n;
      for (const { state, n } of this.#s.counts.all() as { state: TaskState; n: number }[]) counts[state] = n;
      return counts;
    });
  }

  // The key-value view of `task:<id>` (sqlite.ts): the caller is in a transaction where it matters.

  /** The stored text of a task record, if the queue holds it. */
  textOf(id: string): string | undefined {
    return (this.#s.get.get(id) as { value: string } | null)?.value;
  }

  /** Writes `text` under `task:<id>` if the queue holds that id; false when it does not (a plain key then). */
  writeText(id: string, text: string): boolean {
    if (this.#s.state.get(id) === null) return false;
    const v = JSON.parse(text);
    if (isTaskRecord(v, id)) {
      // It may name a queue no task was submitted to: register it, so that claimers in every process see it.
      // Not noted in #routes here (the caller's transaction may yet roll back): #visibleRoutes reads it in.
      if (!this.#routes.has(v.queue)) this.#s.addQueue.run(v.queue, JSON.stringify([v.poolId, v.requiredCapabilities]));
      this.#write(v, text);
    } else {
      // No longer a task the queue can place: it becomes a plain record.
      this.#s.del.run(id);
      this.#f.q.put.run(taskKey(id), text);
    }
    return true;
  }

  /** Deletes the task record, if the queue holds it. */
  deleteText(id: string): boolean {
    return this.#s.del.run(id).changes > 0;
  }

  /** Every id the queue holds. */
  ids(): string[] {
    return this.#s.ids.values().map((r) => r[0] as string);
  }

  #read(id: string): Task | undefined {
    const text = this.textOf(id);
    return text === undefined ? undefined : taskOf(id, text);
  }

  /**
   * Up to `limit` records of the `[id, value]` rows `rows(n, skip)` reads, past damaged ones: a
   * caller that takes fewer than it asked for as the end (retention, the lease reaper) must not
   * stop at a record it cannot read, nor meet the same ones first on every pass.
   */
  #filled(limit: number, rows: (n: number, skip: number) => unknown[][]): Task[] {
    const out: Task[] = [];
    for (let skip = 0; out.length < limit; ) {
      const n = limit - out.length;
      const batch = rows(sqlLimit(n), skip);
      skip += batch.length;
      out.push(...this.#values(batch));
      if (batch.length < n) break;
    }
    return out;
  }

  /** The records of `[id, value]` rows; one that does not parse is passed by (task-queue.ts passDamaged). */
  #values(rows: unknown[][]): Task[] {
    const out: Task[] = [];
    for (const [id, text] of rows as [string, string][]) {
      const t = this.#parsed(id, text);
      if (t) out.push(t);
    }
    return out;
  }

  #parsed(id: string, text: string): Task | undefined {
    try {
      return taskOf(id, text);
    } catch (err) {
      if (passDamaged(err, this.#f.path)) return undefined;
      throw err;
    }
  }

  /**
   * Writes the record and its columns. The caller is inside a transaction and has found the row in
   * it (every caller reads it first), so the row exists: an UPDATE is enough.
   */
  #write(t: Task, text = serialise(taskKey(t.id), t)): void {
    this.#s.update.run(t.state, t.queue, t.priority, t.seq, untilOf(t), t.leaseToken ?? null, text, t.id);
  }

  /** Inserts the new tasks; the queues it registers go in `added`, for #routes once the transaction commits. */
  #submit(tasks: readonly Task[], added: Map<string, Route>): boolean[] {
    return tasks.map((t) => {
      const text = serialise(taskKey(t.id), t);
      if (this.#s.plainHas.get(taskKey(t.id)) !== null) return false; // a plain record holds the key
      const args = [t.id, t.state, t.queue, t.priority, t.seq, untilOf(t), t.leaseToken ?? null, text];
      if (this.#s.insert.run(...args).changes !== 1) return false;
      if (!this.#routes.has(t.queue) && !added.has(t.queue)) {
        this.#s.addQueue.run(t.queue, JSON.stringify([t.poolId, t.requiredCapabilities]));
        added.set(t.queue, { poolId: t.poolId, capabilities: [...t.requiredCapabilities] });
      }
      return true;
    });
  }

  #claim(id: string, claim: Claim, token: string): { task: Task | null; current: Task | undefined } {
    const current = this.#read(id);
    if (!claimable(current, claim.now)) return { task: null, current };
    const task = claimed(current, claim, token);
    this.#write(task);
    return { task, current: task };
  }

  #claimNext(claim: ClaimNext): Task[] {
    const out: Task[] = [];
    // Candidates passed by leave the ready range as they are met, so another look finds the next ones.
    for (let passed = 1, looks = 0; passed > 0 && out.length < claim.tokens.length && looks < 64; looks++) {
      passed = 0;
      for (const c of this.#candidates(claim.visibility, claim.now, claim.tokens.length - out.length)) {
        const current = this.#parsed(c.id, this.textOf(c.id)!); // a candidate's row, in this transaction
        if (!current) this.#s.shelve.run(c.id); // damaged: said once, and shelved
        if (!claimable(current, claim.now)) {
          if (current) this.#write(current); // the columns disagreed with the record: put them right
          passed++;
          continue;
        }
        const task = claimed(current, claim, claim.tokens[out.length]!);
        this.#write(task);
        out.push(task);
      }
    }
    return out;
  }

  #transition(id: string, expect: Expect, next: Task, then?: ClaimNext): Transition {
    if ("lease" in expect) {
      // A lease's holder is checked on the row's columns; the record is parsed only to say why not.
      const row = this.#s.lease.get(id) as { state: TaskState; token: string | null } | null;
      if (!row || !HELD_STATES.has(row.state) || row.token !== expect.lease)
        return { ok: false, current: this.#read(id) };
    } else {
      const current = this.#read(id);
      if (!expectHolds(current, expect)) return { ok: false, current };
    }
    this.#write(next);
    return { ok: true, task: next, next: then ? this.#claimNext(then) : [] };
  }

  #remove(ids: readonly string[]): number {
    let n = 0;
    for (const id of ids) {
      const row = this.#s.state.get(id) as { state: TaskState } | null;
      if (!row || !isFinalState(row.state)) continue;
      this.#s.del.run(id);
      n++;
    }
    return n;
  }

  /** The best due pending tasks of the visible queues: the first `limit` of each, merged. */
  #candidates(visibility: Visibility, now: number, limit: number): Candidate[] {
    const all: Candidate[] = [];
    for (const [queue, route] of this.#visibleRoutes()) {
      if (!canSee(visibility, route.poolId, route.capabilities)) continue;
      all.push(...(this.#s.ready.all(queue, now, sqlLimit(limit)) as Candidate[]));
    }
    all.sort(byRun);
    if (all.length > limit) all.length = limit;
    return all;
  }

  /**
   * Every queue (routing key) any process has submitted to; new rows are read in as they appear.
   * Rows are only ever inserted, so a count that differs from ours is how new ones show.
   */
  #visibleRoutes(): Map<string, Route> {
    const { n } = this.#s.queueCount.get() as { n: number };
    if (n !== this.#routes.size) {
      for (const { queue, route } of this.#s.queues.all() as { queue: string; route: string }[]) {
        if (this.#routes.has(queue)) continue;
        const [poolId, capabilities] = JSON.parse(route) as [string | null, string[]];
        this.#routes.set(queue, { poolId, capabilities });
      }
    }
    return this.#routes;
  }

  /** One-time adoption of task records an older layout kept in `store` (see the header). */
  #adopt(): void {
    const layout = (this.#s.meta.get("layout") as { value: string } | null)?.value;
    if (layout === LAYOUT) return;
    for (const [key, text] of this.#s.legacyKeys.values() as [string, string][]) {
      let raw: unknown;
      try {
        raw = JSON.parse(text);
      } catch {
        continue; // not JSON: left as a plain record
      }
      const id = key.slice("task:".length);
      if (typeof raw !== "object" || raw === null || (raw as Task).id !== id) continue;
      const t = canonical(raw as Task);
      if (!isTaskState(t.state)) continue;
      this.#s.upsert.run(
        t.id,
        t.state,
        t.queue,
        t.priority,
        t.seq,
        untilOf(t),
        t.leaseToken ?? null,
        serialise(key, t),
      );
      this.#s.legacyDel.run(key);
      this.#s.addQueue.run(t.queue, JSON.stringify([t.poolId, t.requiredCapabilities]));
    }
    this.#f.db.run("DELETE FROM store_index WHERE name = 'tasks:open'");
    this.#f.db.run("DROP INDEX IF EXISTS task_timed"); // layout 3's (state, until) over every row
    this.#s.setMeta.run("layout", LAYOUT);
  }
}

/** SQLite's LIMIT takes an integer; -1 means none. */
function sqlLimit(n: number): number {
  return Number.isFinite(n) ? Math.max(0, Math.floor(n)) : -1;
}

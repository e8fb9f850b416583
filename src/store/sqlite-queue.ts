/**
 * The SQLite store's native task queue (task-queue.ts). Records stay in `store` as JSON; each
 * task's place is a row of `task_place` (state, queue, priority, seq, and `until`: notBefore for
 * pending tasks, the lease end for held ones, updatedAt for finished ones), written in the same
 * BEGIN IMMEDIATE transaction as the record, so the two never disagree.
 *
 * - Finding work is one indexed query per visible queue (`task_ready`: queue, priority DESC, seq,
 *   over pending rows), merged here: no scan of the backlog, however large.
 * - Claim, report-and-claim-next, fail, renew: one short transaction each; a holder's change is
 *   checked against the row's state and token without parsing the record.
 * - Expired leases, finished tasks by age (and since a time) and counts by state: indexed queries
 *   on (state, until).
 *
 * Files written by converge 0.1 (records only, open ids in the index set `tasks:open`) are
 * adopted once, on first open: each task record gets the current layout and its place row.
 */
import type { Statement } from "bun:sqlite";
import type { FinalState, Task, TaskState } from "../core/task.ts";
import { parseRecord, serialise } from "./json.ts";
import type { SqliteFile } from "./sqlite.ts";
import {
  byFinish,
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
  isCanonical,
  runsBefore,
  type TaskQueue,
  type Transition,
  taskKey,
  type Visibility,
} from "./task-queue.ts";

export const TASK_SCHEMA = `
  CREATE TABLE IF NOT EXISTS task_place (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    queue TEXT NOT NULL,
    priority INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    until INTEGER
  ) WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS task_ready ON task_place (queue, priority DESC, seq) WHERE state = 'pending';
  CREATE INDEX IF NOT EXISTS task_timed ON task_place (state, until);
  CREATE TABLE IF NOT EXISTS task_queues (queue TEXT PRIMARY KEY, route TEXT NOT NULL) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS task_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
`;

/** The SQL of every queue statement (exported so tests can EXPLAIN exactly what runs). */
export const QUEUE_SQL = {
  place:
    "INSERT INTO task_place (id, state, queue, priority, seq, until) VALUES (?, ?, ?, ?, ?, ?) " +
    "ON CONFLICT (id) DO UPDATE SET state = excluded.state, until = excluded.until",
  row: "SELECT state FROM task_place WHERE id = ?",
  ready:
    "SELECT id, priority, seq FROM task_place WHERE queue = ? AND state = 'pending' AND until <= ? " +
    "ORDER BY priority DESC, seq LIMIT ?",
  expired: "SELECT id FROM task_place WHERE state IN ('assigned', 'running') AND until <= ? ORDER BY until LIMIT ?",
  finished: "SELECT id FROM task_place WHERE state = ? AND until < ? ORDER BY until LIMIT ?",
  finishedSince: "SELECT id, until FROM task_place WHERE state = ? AND until >= ? ORDER BY until, id LIMIT ?",
  open: "SELECT id FROM task_place WHERE state IN ('pending', 'assigned', 'running')",
  counts: "SELECT state, count(*) AS n FROM task_place GROUP BY state",
  unplace: "DELETE FROM task_place WHERE id = ?",
  addQueue: "INSERT OR IGNORE INTO task_queues (queue, route) VALUES (?, ?)",
  queues: "SELECT queue, route FROM task_queues",
  meta: "SELECT value FROM task_meta WHERE key = ?",
  setMeta: "INSERT OR REPLACE INTO task_meta (key, value) VALUES (?, ?)",
  taskKeys: "SELECT key FROM store WHERE key >= 'task:' AND key < 'task;'",
} as const;

type Route = { poolId: string | null; capabilities: string[] };
type Candidate = { id: string; priority: number; seq: number };
const LAYOUT = "2";

export class SqliteTaskQueue implements TaskQueue {
  readonly #f: SqliteFile;
  // biome-ignore lint/suspicious/noExplicitAny: statements differ in their rows
  readonly #s: { [K in keyof typeof QUEUE_SQL]: Statement<any, any[]> };
  readonly #routes = new Map<string, Route>();
  readonly #tx: {
    submit: (tasks: readonly Task[], now: number) => boolean[];
    claim: (id: string, claim: Claim, token: string) => { task: Task | null; current: Task | undefined };
    claimNext: (claim: ClaimNext) => Task[];
    transition: (id: string, expect: Expect, next: Task, now: number, then?: ClaimNext) => Transition;
    remove: (ids: readonly string[]) => number;
  };

  constructor(file: SqliteFile) {
    this.#f = file;
    const db = file.db;
    this.#s = Object.fromEntries(Object.entries(QUEUE_SQL).map(([k, sql]) => [k, db.prepare(sql)])) as never;
    this.#tx = {
      submit: db.transaction((tasks: readonly Task[], now: number) => this.#submit(tasks, now)).immediate,
      claim: db.transaction((id: string, claim: Claim, token: string) => this.#claim(id, claim, token)).immediate,
      claimNext: db.transaction((claim: ClaimNext) => this.#claimNext(claim)).immediate,
      transition: db.transaction((id: string, expect: Expect, next: Task, now: number, then?: ClaimNext) =>
        this.#transition(id, expect, next, now, then),
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

  async submit(tasks: readonly Task[], now: number): Promise<boolean[]> {
    return this.#f.run(`submit ${tasks.length} task(s)`, () => this.#tx.submit(tasks, now));
  }

  async claim(id: string, claim: Claim, token: string): Promise<{ task: Task | null; current: Task | undefined }> {
    return this.#f.run(`claim task ${id}`, () => this.#tx.claim(id, claim, token));
  }

  async claimNext(claim: ClaimNext): Promise<Task[]> {
    if (claim.tokens.length === 0) return [];
    return this.#f.run("claim tasks", () => this.#tx.claimNext(claim));
  }

  async transition(id: string, expect: Expect, next: Task, now: number, then?: ClaimNext): Promise<Transition> {
    return this.#f.run(`update task ${id}`, () => this.#tx.transition(id, expect, next, now, then));
  }

  async pending(visibility: Visibility, now: number, limit: number): Promise<Task[]> {
    return this.#f.run("list pending tasks", () => {
      const ids = this.#candidates(visibility, now, limit).map((c) => c.id);
      return ids.map((id) => this.#read(id)).filter((t): t is Task => claimable(t, now));
    });
  }

  async expired(now: number, limit: number): Promise<Task[]> {
    return this.#f.run("list expired leases", () => this.#records(this.#s.expired.values(now, sqlLimit(limit))));
  }

  async open(): Promise<Task[]> {
    return this.#f.run("list open tasks", () => this.#records(this.#s.open.values()));
  }

  async finished(state: FinalState, before: number, limit: number): Promise<Task[]> {
    const until = Number.isFinite(before) ? before : Number.MAX_SAFE_INTEGER;
    return this.#f.run(`list ${state} tasks`, () =>
      this.#records(this.#s.finished.values(state, until, sqlLimit(limit))),
    );
  }

  async finishedSince(since: number, limit: number): Promise<FinishedEntry[]> {
    return this.#f.run("list finished tasks", () => {
      // The first `limit` of each state hold the first `limit` of all.
      const out: FinishedEntry[] = [];
      for (const state of ["completed", "failed", "cancelled"] as const) {
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
      for (const { state, n } of this.#s.counts.all() as { state: TaskState; n: number }[]) counts[state] = n;
      return counts;
    });
  }

  #read(id: string): Task | undefined {
    const row = this.#f.q.get.get(taskKey(id));
    return row === null ? undefined : (parseRecord(taskKey(id), row.value) as Task);
  }

  #records(rows: unknown[][]): Task[] {
    return rows.map((r) => this.#read(r[0] as string)).filter((t): t is Task => t !== undefined);
  }

  /** Writes the record and its place row (the caller is inside a transaction). */
  #write(t: Task): void {
    this.#f.q.put.run(taskKey(t.id), serialise(taskKey(t.id), t));
    this.#place(t);
  }

  #place(t: Task): void {
    const until =
      t.state === "pending"
        ? (t.notBefore ?? 0)
        : t.state === "assigned" || t.state === "running"
          ? t.leaseExpiresAt
          : t.updatedAt;
    this.#s.place.run(t.id, t.state, t.queue, t.priority, t.seq, until);
  }

  #submit(tasks: readonly Task[], _now: number): boolean[] {
    return tasks.map((t) => {
      const key = taskKey(t.id);
      if (this.#f.q.insert.run(key, serialise(key, t)).changes !== 1) return false;
      this.#place(t);
      if (!this.#routes.has(t.queue)) {
        this.#s.addQueue.run(t.queue, JSON.stringify([t.poolId, t.requiredCapabilities]));
        this.#routes.set(t.queue, { poolId: t.poolId, capabilities: [...t.requiredCapabilities] });
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
    for (const c of this.#candidates(claim.visibility, claim.now, claim.tokens.length)) {
      const current = this.#read(c.id);
      if (!claimable(current, claim.now)) {
        if (current)
          this.#place(current); // the row disagreed with the record (written behind our back)
        else this.#s.unplace.run(c.id);
        continue;
      }
      const task = claimed(current, claim, claim.tokens[out.length]!);
      this.#write(task);
      out.push(task);
    }
    return out;
  }

  #transition(id: string, expect: Expect, next: Task, _now: number, then?: ClaimNext): Transition {
    const current = this.#read(id);
    if (!expectHolds(current, expect, sameRecord)) return { ok: false, current };
    this.#write(next);
    return { ok: true, task: next, next: then ? this.#claimNext(then) : [] };
  }

  #remove(ids: readonly string[]): number {
    let n = 0;
    for (const id of ids) {
      const row = this.#s.row.get(id) as { state: string } | null;
      if (!row || (row.state !== "completed" && row.state !== "failed" && row.state !== "cancelled")) continue;
      this.#f.q.del.run(taskKey(id));
      this.#s.unplace.run(id);
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
    if (all.length > limit) all.sort((a, b) => (runsBefore(a, b) ? -1 : 1)).length = limit;
    else all.sort((a, b) => (runsBefore(a, b) ? -1 : 1));
    return all;
  }

  /** Every queue (routing key) any process has submitted to; new rows are read in as they appear. */
  #visibleRoutes(): Map<string, Route> {
    const rows = this.#s.queues.all() as { queue: string; route: string }[];
    if (rows.length !== this.#routes.size) {
      for (const { queue, route } of rows) {
        if (this.#routes.has(queue)) continue;
        const [poolId, capabilities] = JSON.parse(route) as [string | null, string[]];
        this.#routes.set(queue, { poolId, capabilities });
      }
    }
    return this.#routes;
  }

  /** One-time adoption of a file from converge 0.1 (see the header). */
  #adopt(): void {
    const layout = (this.#s.meta.get("layout") as { value: string } | null)?.value;
    if (layout === LAYOUT) return;
    for (const [key] of this.#s.taskKeys.values() as [string][]) {
      const raw = parseRecord(key, this.#f.q.get.get(key)?.value) as Task;
      if (!raw || typeof raw !== "object" || typeof raw.id !== "string") continue;
      const t = isCanonical(raw) ? raw : canonical(raw);
      this.#write(t);
      this.#s.addQueue.run(t.queue, JSON.stringify([t.poolId, t.requiredCapabilities]));
    }
    this.#f.db.run("DELETE FROM store_index WHERE name = 'tasks:open'");
    this.#s.setMeta.run("layout", LAYOUT);
  }
}

function sameRecord(a: Task, b: Task): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** SQLite's LIMIT takes an integer; -1 means none. */
function sqlLimit(n: number): number {
  return Number.isFinite(n) ? Math.max(0, Math.floor(n)) : -1;
}

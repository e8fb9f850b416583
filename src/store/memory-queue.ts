/**
 * The memory store's native task queue: records are frozen objects in the store's own Map of task
 * records by id (so a claim copies one record and nothing else, and no JSON is written or
 * parsed); the places of task-queue.ts are heaps per queue. Everything is synchronous, so each
 * operation is atomic; claim, claimNext and transition answer with the value itself (`Answer`), so
 * a claim and a report on the embedded default take no turn of the event loop.
 *
 * Heaps are pruned lazily: an entry stays until it reaches the top, and is acted on only if it is
 * the id's live entry and the record still says the task is there (ready: pending, due, and the
 * entry's queue, priority and seq; delayed: the earliest time known for it, in its queue; held: the
 * same lease end). A record placed anew (an id removed and submitted again elsewhere, a lease
 * renewed to another end) gets a new live entry, and the old one is skipped when it surfaces; a
 * write that leaves its place as it was (a holder's progress, a start, a renewal to the same end)
 * adds nothing. Open and finished sets, and the counts, are kept exact.
 */
import { StoreError } from "../core/errors.ts";
import {
  FINAL_STATE_LIST,
  type FinalState,
  HELD_STATES,
  isFinalState,
  type Task,
  type TaskState,
} from "../core/task.ts";
import { Heap } from "./heap.ts";
import { frozenCopy } from "./json.ts";
import type { MemoryData } from "./memory.ts";
import {
  byFinish,
  byRun,
  type Claim,
  type ClaimNext,
  canSee,
  claimable,
  claimed,
  emptyCounts,
  type Expect,
  expectHolds,
  type FinishedEntry,
  isFinished,
  runsBefore,
  type TaskQueue,
  type Transition,
  taskKey,
  type Visibility,
} from "./task-queue.ts";

interface ReadyEntry {
  id: string;
  queue: string;
  priority: number;
  seq: number;
}
interface TimedEntry {
  id: string;
  until: number;
}
interface DelayedEntry extends TimedEntry {
  queue: string;
}
interface Finished {
  ids: string[];
  since: number[];
  stale: number;
}
interface Queue {
  poolId: string | null;
  capabilities: readonly string[];
  ready: Heap<ReadyEntry>;
  delayed: Heap<DelayedEntry>;
}

const sooner = (a: TimedEntry, b: TimedEntry) => a.until < b.until;
/** A transition's `next` when it claims nothing: one shared empty list. */
const NO_TASKS: Task[] = Object.freeze([]) as unknown as Task[];

export class MemoryTaskQueue implements TaskQueue {
  readonly #queues = new Map<string, Queue>();
  /** Per id, its live entry in a ready heap (stale once the record moved on); any other entry of it there is stale. */
  readonly #inReady = new Map<string, ReadyEntry>();
  /** Per id, its live delayed entry: the earliest `until` known for it, in its queue. */
  readonly #delayedLive = new Map<string, DelayedEntry>();
  readonly #held = new Heap<TimedEntry>(sooner);
  /** Per held id, its live entry in #held (its lease end); any other entry of it there is stale. */
  readonly #heldLive = new Map<string, TimedEntry>();
  readonly #open = new Set<string>();
  /**
   * Per final state, the tasks that reached it, in order, as two parallel arrays (no object per
   * entry); an entry is stale once its record moved on (retried, removed), and skipped.
   */
  readonly #finished: Record<FinalState, Finished> = {
    completed: { ids: [], since: [], stale: 0 },
    failed: { ids: [], since: [], stale: 0 },
    cancelled: { ids: [], since: [], stale: 0 },
  };
  readonly #counts = emptyCounts();
  /** Bumped by every write: `pending` answers from its last result while nothing changed. */
  #version = 0;
  /** The store's clock is this host's: no promise needed. */
  readonly clock = () => Date.now();
  #pendingCache: { version: number; key: string; tasks: Task[] } | undefined;

  constructor(private readonly data: MemoryData) {}

  #record(id: string): Task | undefined {
    return this.data.tasks.get(id) as Task | undefined;
  }

  async get(id: string): Promise<Task | undefined> {
    return this.#record(id);
  }

  peek(id: string): Task | undefined {
    return this.#record(id);
  }

  async getMany(ids: readonly string[]): Promise<(Task | undefined)[]> {
    return ids.map((id) => this.#record(id));
  }

  async submit(tasks: readonly Task[], now: number): Promise<boolean[]> {
    // Check every record first, so that a bad one writes nothing.
    const frozen = tasks.map((t) => freezeRecord(t, undefined));
    const created: boolean[] = [];
    const fresh = new Set<string>();
    for (const t of frozen) {
      if (this.data.tasks.has(t.id) || fresh.has(t.id)) {
        created.push(false);
        continue;
      }
      fresh.add(t.id);
      this.#queue(t);
      this.#write(undefined, t, now);
      created.push(true);
    }
    return created;
  }

  claim(id: string, claim: Claim, token: string): { task: Task | null; current: Task | undefined } {
    const current = this.#record(id);
    if (!claimable(current, claim.now)) return { task: null, current };
    const task = Object.freeze(claimed(current, claim, token));
    this.#write(current, task, claim.now);
    return { task, current: task };
  }

  claimNext(claim: ClaimNext): Task[] {
    const out: Task[] = [];
    if (claim.tokens.length === 0) return out;
    const queues = this.#visible(claim.visibility);
    for (const q of queues) this.#promote(q, claim.now);
    while (out.length < claim.tokens.length) {
      let best: Queue | undefined;
      for (const q of queues) {
        const top = this.#readyTop(q, claim.now);
        if (top && (!best || runsBefore(top, best.ready.peek()!))) best = q;
      }
      if (!best) break;
      const entry = best.ready.pop()!;
      this.#inReady.delete(entry.id);
      const current = this.#record(entry.id)!;
      const task = Object.freeze(claimed(current, claim, claim.tokens[out.length]!));
      this.#write(current, task, claim.now);
      out.push(task);
    }
    return out;
  }

  transition(id: string, expect: Expect, next: Task, now: number, then?: ClaimNext): Transition {
    const current = this.#record(id);
    if (!expectHolds(current, expect)) return { ok: false, current };
    const task = freezeRecord(next, current);
    this.#write(current, task, now);
    return { ok: true, task, next: then ? this.claimNext(then) : NO_TASKS };
  }

  async pending(visibility: Visibility, now: number, limit: number): Promise<Task[]> {
    const queues = this.#visible(visibility);
    for (const q of queues) this.#promote(q, now);
    const pools = [...visibility.pools].sort().join("\u0000");
    const key = `${pools}\u0001${[...visibility.capabilities].sort().join("\u0000")}\u0001${limit}`;
    const cached = this.#pendingCache;
    // Cached while nothing was written and no delayed task can have come due (promotion writes nothing).
    if (cached && cached.version === this.#version && cached.key === key) return cached.tasks;
    const found: Task[] = [];
    for (const q of queues) {
      for (const e of q.ready.items()) {
        const t = this.#readyRecord(e, now);
        if (t) found.push(t); // one live entry per id: no task twice
      }
    }
    const tasks = found.sort(byRun).slice(0, limit);
    this.#pendingCache = { version: this.#version, key, tasks };
    return tasks;
  }

  async expired(now: number, limit: number): Promise<Task[]> {
    const out: Task[] = [];
    const keep: TimedEntry[] = [];
    while (out.length < limit) {
      const e = this.#held.peek();
      if (!e || e.until > now) break;
      this.#held.pop();
      if (this.#heldLive.get(e.id) !== e) continue; // superseded by a later entry, or the task left its hold
      const t = this.#record(e.id);
      if (!t || !HELD_STATES.has(t.state) || t.leaseExpiresAt !== e.until) {
        this.#heldLive.delete(e.id); // the record moved on without the queue (a key-value write)
        continue;
      }
      out.push(t);
      keep.push(e); // it stays held until someone moves it
    }
    for (const e of keep) this.#held.push(e);
    return out;
  }

  async open(): Promise<Task[]> {
    return [...this.#open].map((id) => this.#record(id)!);
  }

  async finished(state: FinalState, before: number, limit: number): Promise<Task[]> {
    const out: Task[] = [];
    const f = this.#finished[state];
    for (let i = 0; i < f.ids.length && out.length < limit; i++) {
      if (f.since[i]! >= before) break; // in order of since
      const t = this.#record(f.ids[i]!);
      if (t?.state === state && t.updatedAt === f.since[i]) out.push(t);
    }
    return out;
  }

  async finishedSince(since: number, limit: number): Promise<FinishedEntry[]> {
    // The first `limit` of each state hold the first `limit` of all.
    const out: FinishedEntry[] = [];
    for (const state of FINAL_STATE_LIST) {
      const f = this.#finished[state];
      for (let i = lowerBound(f.since, since), n = 0; i < f.ids.length && n < limit; i++) {
        const t = this.#record(f.ids[i]!);
        if (t?.state !== state || t.updatedAt !== f.since[i]) continue;
        out.push({ id: t.id, state, updatedAt: t.updatedAt });
        n++;
      }
    }
    return out.sort(byFinish).slice(0, limit);
  }

  async remove(ids: readonly string[]): Promise<number> {
    let n = 0;
    for (const id of ids) {
      const t = this.#record(id);
      if (!t || !isFinished(t)) continue;
      this.data.tasks.delete(id);
      this.#leftFinished(t.state as FinalState);
      bump(this.#counts, t.state, -1);
      this.#version++;
      n++;
    }
    return n;
  }

  async counts(): Promise<Record<TaskState, number>> {
    return { ...this.#counts };
  }

  /** Stores `next` (frozen) in place of `prev`, and moves it to its new place. */
  #write(prev: Task | undefined, next: Task, now: number): void {
    this.data.tasks.set(next.id, next);
    this.#version++;
    const wasOpen = prev !== undefined && !isFinalState(prev.state);
    const wasHeld = wasOpen && (prev.state === "assigned" || prev.state === "running");
    if (prev) {
      bump(this.#counts, prev.state, -1);
      if (!wasOpen) this.#leftFinished(prev.state as FinalState);
    }
    bump(this.#counts, next.state, 1);
    // placementOf, unrolled: this runs for every claim and report.
    const state = next.state;
    if (isFinalState(state)) {
      if (wasOpen) this.#open.delete(next.id);
      if (wasHeld) this.#heldLive.delete(next.id); // its entry in #held is stale now
      const f = this.#finished[state];
      appendSorted(f, next.id, next.updatedAt);
      return;
    }
    if (!wasOpen) this.#open.add(next.id);
    if (state === "assigned" || state === "running") {
      this.#placeHeld(next.id, next.leaseExpiresAt);
      return;
    }
    if (wasHeld) this.#heldLive.delete(next.id);
    if ((next.notBefore ?? 0) <= now) this.#placeReady(next);
    else this.#placeDelayed(next, next.notBefore!);
  }

  /** Gives a held task its live entry in #held, unless its entry already says `until`; none without a lease end. */
  #placeHeld(id: string, until: number | null): void {
    if (until === null) {
      this.#heldLive.delete(id);
      return;
    }
    if (this.#heldLive.get(id)?.until === until) return; // its entry is still in the heap
    const entry = { id, until };
    this.#heldLive.set(id, entry);
    this.#held.push(entry);
  }

  /** A task left a final state (retried, or removed): its entry there is stale; compact when most are. */
  #leftFinished(state: FinalState): void {
    const f = this.#finished[state];
    if (++f.stale > 1024 && f.stale * 2 > f.ids.length) {
      const ids: string[] = [];
      const since: number[] = [];
      for (let i = 0; i < f.ids.length; i++) {
        const t = this.#record(f.ids[i]!);
        if (t?.state !== state || t.updatedAt !== f.since[i]) continue;
        ids.push(f.ids[i]!);
        since.push(f.since[i]!);
      }
      this.#finished[state] = { ids, since, stale: 0 };
    }
  }

  #queue(t: Task): Queue {
    let q = this.#queues.get(t.queue);
    if (!q) {
      q = {
        poolId: t.poolId,
        capabilities: [...t.requiredCapabilities],
        ready: new Heap<ReadyEntry>(runsBefore),
        delayed: new Heap<DelayedEntry>(sooner),
      };
      this.#queues.set(t.queue, q);
    }
    return q;
  }

  #visible(v: Visibility): Queue[] {
    const out: Queue[] = [];
    for (const q of this.#queues.values()) if (canSee(v, q.poolId, q.capabilities)) out.push(q);
    return out;
  }

  #placeReady(t: Task): void {
    this.#version++; // a promotion changes what `pending` finds without writing a record
    const live = this.#inReady.get(t.id);
    if (live && matches(live, t)) return; // its entry is still in the heap: same queue, priority and seq
    const entry = { id: t.id, queue: t.queue, priority: t.priority, seq: t.seq };
    this.#inReady.set(t.id, entry);
    this.#queue(t).ready.push(entry);
  }

  #placeDelayed(t: Task, until: number): void {
    const known = this.#delayedLive.get(t.id);
    if (known && known.queue === t.queue && known.until <= until) return; // an earlier entry will look again then
    const entry = { id: t.id, until, queue: t.queue };
    this.#delayedLive.set(t.id, entry);
    this.#queue(t).delayed.push(entry);
  }

  /** Moves the queue's delayed tasks that came due to ready. */
  #promote(q: Queue, now: number): void {
    for (let e = q.delayed.peek(); e && e.until <= now; e = q.delayed.peek()) {
      q.delayed.pop();
      if (this.#delayedLive.get(e.id) !== e) continue; // a stale duplicate
      this.#delayedLive.delete(e.id);
      const t = this.#record(e.id);
      if (t?.state !== "pending") continue;
      if ((t.notBefore ?? 0) <= now) this.#placeReady(t);
      else this.#placeDelayed(t, t.notBefore!);
    }
  }

  /** The record of a ready entry that may be acted on: its id's live entry, claimable, and where the record says. */
  #readyRecord(e: ReadyEntry, now: number): Task | undefined {
    const t = this.#record(e.id);
    return this.#inReady.get(e.id) === e && claimable(t, now) && matches(e, t) ? t : undefined;
  }

  /** The queue's best ready entry that is still claimable, dropping stale ones on the way. */
  #readyTop(q: Queue, now: number): ReadyEntry | undefined {
    for (let e = q.ready.peek(); e; e = q.ready.peek()) {
      if (this.#readyRecord(e, now)) return e;
      q.ready.pop();
      if (this.#inReady.get(e.id) !== e) continue; // superseded by a later entry, which stands for it
      this.#inReady.delete(e.id);
      const t = this.#record(e.id);
      if (t?.state !== "pending") continue;
      // Pending but not due (a retry's backoff started after the entry was made), or due under another
      // queue, priority or seq than the entry's (the id was removed and submitted again): put it where it belongs.
      if ((t.notBefore ?? 0) <= now) this.#placeReady(t);
      else this.#placeDelayed(t, t.notBefore!);
    }
    return undefined;
  }
}

/** Whether a ready entry says what the record says: the same queue, priority and seq. */
function matches(e: ReadyEntry, t: Task): boolean {
  return e.queue === t.queue && e.priority === t.priority && e.seq === t.seq;
}

/** The fields that hold users' values; every other field is a scalar TaskManager set. */
const VALUE_FIELDS = [
  "result",
  "progress",
  "inputs",
  "outputs",
  "constraints",
  "topic",
  "requiredCapabilities",
] as const;

/**
 * The record as the JSON backends would hold it, frozen: values a transition brought in (a
 * result, progress, a user's inputs) are checked and copied once; values taken over from the
 * record it replaces (`prev`), or already frozen, are shared. The queue takes ownership of `t`: it
 * is frozen in place.
 */
function freezeRecord(t: Task, prev: Task | undefined): Task {
  if (Object.isFrozen(t)) return t;
  // The common case, a holder's change: only the result (and progress) are new.
  const carried =
    prev !== undefined &&
    t.inputs === prev.inputs &&
    t.outputs === prev.outputs &&
    t.constraints === prev.constraints &&
    t.topic === prev.topic &&
    t.requiredCapabilities === prev.requiredCapabilities;
  if (carried) {
    if (t.result !== prev.result) t.result = storable(t, "result", t.result);
    if (t.progress !== prev.progress) t.progress = storable(t, "progress", t.progress);
    return Object.freeze(t);
  }
  const r = t as unknown as Record<string, unknown>;
  for (const k of VALUE_FIELDS) {
    if (prev === undefined || r[k] !== (prev as unknown as Record<string, unknown>)[k]) r[k] = storable(t, k, r[k]);
  }
  return Object.freeze(t);
}

/** A user's value as the JSON backends would store it: frozen plain data (objects copied once). */
function storable(t: Task, field: string, v: unknown): unknown {
  if (typeof v === "object" && v !== null)
    return Object.isFrozen(v) ? v : frozenCopy(() => `${taskKey(t.id)} ${field}`, v);
  if (typeof v === "number" && !Number.isFinite(v)) return null; // as JSON writes it
  if (typeof v === "function" || typeof v === "symbol" || typeof v === "bigint") {
    throw new StoreError(`value for "${taskKey(t.id)}" is not JSON-serialisable: ${field} is a ${typeof v}`);
  }
  return v;
}

/** Counts by state, changed by a switch (a string-keyed property write costs more on this path). */
function bump(c: Record<TaskState, number>, state: TaskState, by: number): void {
  switch (state) {
    case "pending":
      c.pending += by;
      break;
    case "assigned":
      c.assigned += by;
      break;
    case "running":
      c.running += by;
      break;
    case "completed":
      c.completed += by;
      break;
    case "failed":
      c.failed += by;
      break;
    case "cancelled":
      c.cancelled += by;
      break;
  }
}

/**
 * Appends to a finished log, kept in order of `since`: a report's time is normally the latest, so
 * this is a push; a time that went back (another clock, a tie) is inserted in place.
 */
function appendSorted(f: Finished, id: string, since: number): void {
  const n = f.since.length;
  if (n === 0 || f.since[n - 1]! <= since) {
    f.ids.push(id);
    f.since.push(since);
    return;
  }
  const at = lowerBound(f.since, since + 1);
  f.ids.splice(at, 0, id);
  f.since.splice(at, 0, since);
}

/** The first index whose value is at least `value` (the array is in order). */
function lowerBound(a: readonly number[], value: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

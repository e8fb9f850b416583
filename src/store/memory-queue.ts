/**
 * The memory store's native task queue: records are frozen objects in the store's own Map (so a
 * claim copies one record and nothing else, and no JSON is written or parsed); the places of
 * task-queue.ts are heaps per queue. Everything is synchronous, so each operation is atomic.
 *
 * Heaps are pruned lazily: an entry stays until it reaches the top, and is acted on only if the
 * record still says the task is there (ready: pending and due; delayed: the earliest time known
 * for it; held: the same lease end). Open and finished sets, and the counts, are kept exact.
 */
import { StoreError } from "../core/errors.ts";
import type { FinalState, Task, TaskState } from "../core/task.ts";
import { Heap } from "./heap.ts";
import { deepFreeze, frozenCopy } from "./json.ts";
import type { MemoryData } from "./memory.ts";
import {
  byFinish,
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
  placementOf,
  runsBefore,
  type TaskQueue,
  type Transition,
  taskKey,
  type Visibility,
} from "./task-queue.ts";

interface ReadyEntry {
  id: string;
  priority: number;
  seq: number;
}
interface TimedEntry {
  id: string;
  until: number;
}
interface Queue {
  poolId: string | null;
  capabilities: readonly string[];
  ready: Heap<ReadyEntry>;
  delayed: Heap<TimedEntry>;
}

const sooner = (a: TimedEntry, b: TimedEntry) => a.until < b.until;
const FINAL = ["completed", "failed", "cancelled"] as const;

interface FinishedMark {
  id: string;
  since: number;
}

/**
 * The finished tasks of one state in order of (since, id): a sorted array (tasks finish in about
 * clock order, so an insert is nearly always an append), with removals lazy: an entry counts only
 * while it is the one `live` holds for its id, and the array is compacted once most are stale.
 */
class FinishedLog {
  readonly #live = new Map<string, FinishedMark>();
  #marks: FinishedMark[] = [];

  add(id: string, since: number): void {
    this.delete(id);
    const mark = { id, since };
    this.#live.set(id, mark);
    const a = this.#marks;
    const last = a[a.length - 1];
    if (!last || last.since < since || (last.since === since && last.id <= id)) a.push(mark);
    else a.splice(this.#lowerBound(since, id), 0, mark);
  }

  delete(id: string): void {
    if (!this.#live.delete(id)) return;
    if (this.#marks.length > 1024 && this.#marks.length > 2 * this.#live.size)
      this.#marks = this.#marks.filter((m) => this.#live.get(m.id) === m);
  }

  /** Live marks with since ≥ `since`, in order. */
  *from(since: number): Generator<FinishedMark> {
    const a = this.#marks;
    for (let i = this.#lowerBound(since, ""); i < a.length; i++) if (this.#live.get(a[i]!.id) === a[i]) yield a[i]!;
  }

  #lowerBound(since: number, id: string): number {
    let [lo, hi] = [0, this.#marks.length];
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const m = this.#marks[mid]!;
      if (m.since < since || (m.since === since && m.id < id)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

export class MemoryTaskQueue implements TaskQueue {
  readonly #queues = new Map<string, Queue>();
  /** Ids with an entry in their queue's ready heap (perhaps stale). */
  readonly #inReady = new Set<string>();
  /** Per id, the earliest `until` of its live delayed entry. */
  readonly #delayedUntil = new Map<string, number>();
  readonly #held = new Heap<TimedEntry>(sooner);
  readonly #open = new Set<string>();
  readonly #finished: Record<FinalState, FinishedLog> = {
    completed: new FinishedLog(),
    failed: new FinishedLog(),
    cancelled: new FinishedLog(),
  };
  readonly #counts = emptyCounts();
  /** Bumped by every write: `pending` answers from its last result while nothing changed. */
  #version = 0;
  #pendingCache: { version: number; key: string; now: number; tasks: Task[] } | undefined;

  constructor(private readonly data: MemoryData) {}

  #record(id: string): Task | undefined {
    return this.data.records.get(taskKey(id)) as Task | undefined;
  }

  async get(id: string): Promise<Task | undefined> {
    return this.#record(id);
  }

  async getMany(ids: readonly string[]): Promise<(Task | undefined)[]> {
    return ids.map((id) => this.#record(id));
  }

  async submit(tasks: readonly Task[], now: number): Promise<boolean[]> {
    // Check every record first, so that a bad one writes nothing.
    const frozen = tasks.map((t) => freezeRecord(t));
    const created: boolean[] = [];
    const fresh = new Set<string>();
    for (const t of frozen) {
      if (this.data.records.has(taskKey(t.id)) || fresh.has(t.id)) {
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

  async claim(id: string, claim: Claim, token: string): Promise<{ task: Task | null; current: Task | undefined }> {
    const current = this.#record(id);
    if (!claimable(current, claim.now)) return { task: null, current };
    const task = Object.freeze(claimed(current, claim, token));
    this.#write(current, task, claim.now);
    return { task, current: task };
  }

  async claimNext(claim: ClaimNext): Promise<Task[]> {
    return this.#claimNext(claim);
  }

  #claimNext(claim: ClaimNext): Task[] {
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

  async transition(id: string, expect: Expect, next: Task, now: number, then?: ClaimNext): Promise<Transition> {
    const current = this.#record(id);
    if (!expectHolds(current, expect, sameRecord)) return { ok: false, current };
    const task = freezeRecord(next);
    this.#write(current, task, now);
    return { ok: true, task, next: then ? this.#claimNext(then) : [] };
  }

  async pending(visibility: Visibility, now: number, limit: number): Promise<Task[]> {
    const queues = this.#visible(visibility);
    for (const q of queues) this.#promote(q, now);
    const key = `${[...visibility.pools].sort().join("\u0000")}\u0001${[...visibility.capabilities].sort().join("\u0000")}\u0001${limit}`;
    const cached = this.#pendingCache;
    // Cached while nothing was written and no delayed task can have come due (promotion writes nothing).
    if (cached && cached.version === this.#version && cached.key === key) return cached.tasks;
    const found: Task[] = [];
    for (const q of queues) {
      for (const e of q.ready.items()) {
        const t = this.#record(e.id);
        if (claimable(t, now) && this.#inReady.has(e.id)) found.push(t);
      }
    }
    const tasks = [...new Set(found)]
      .sort((a, b) => (runsBefore(a, b) ? -1 : runsBefore(b, a) ? 1 : 0))
      .slice(0, limit);
    this.#pendingCache = { version: this.#version, key, now, tasks };
    return tasks;
  }

  async expired(now: number, limit: number): Promise<Task[]> {
    const out: Task[] = [];
    const keep: TimedEntry[] = [];
    while (out.length < limit) {
      const e = this.#held.peek();
      if (!e || e.until > now) break;
      this.#held.pop();
      const t = this.#record(e.id);
      if (!t || placementOf(t, now).at !== "held" || t.leaseExpiresAt !== e.until) continue; // stale entry
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
    for (const e of this.#finished[state].from(-Infinity)) {
      if (e.since >= before || out.length >= limit) break;
      out.push(this.#record(e.id)!);
    }
    return out;
  }

  async finishedSince(since: number, limit: number): Promise<FinishedEntry[]> {
    // The first `limit` of each state hold the first `limit` of all.
    const out: FinishedEntry[] = [];
    for (const state of FINAL) {
      let n = 0;
      for (const e of this.#finished[state].from(since)) {
        if (n++ >= limit) break;
        out.push({ id: e.id, state, updatedAt: e.since });
      }
    }
    return out.sort(byFinish).slice(0, limit);
  }

  async remove(ids: readonly string[]): Promise<number> {
    let n = 0;
    for (const id of ids) {
      const t = this.#record(id);
      if (!t || !isFinished(t)) continue;
      this.data.delete(taskKey(id));
      this.#finished[t.state as FinalState].delete(id);
      this.#counts[t.state]--;
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
    this.data.set(taskKey(next.id), next);
    this.#version++;
    if (prev) {
      this.#counts[prev.state]--;
      if (isFinished(prev)) this.#finished[prev.state as FinalState].delete(prev.id);
    }
    this.#counts[next.state]++;
    const place = placementOf(next, now);
    if (place.at === "finished") {
      this.#open.delete(next.id);
      this.#finished[place.state].add(next.id, place.since);
      return;
    }
    this.#open.add(next.id);
    if (place.at === "held") {
      if (place.until !== null) this.#held.push({ id: next.id, until: place.until });
    } else if (place.at === "ready") {
      this.#placeReady(next);
    } else {
      this.#placeDelayed(next, place.until);
    }
  }

  #queue(t: Task): Queue {
    let q = this.#queues.get(t.queue);
    if (!q) {
      q = {
        poolId: t.poolId,
        capabilities: [...t.requiredCapabilities],
        ready: new Heap<ReadyEntry>(runsBefore),
        delayed: new Heap<TimedEntry>(sooner),
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
    if (this.#inReady.has(t.id)) return; // its entry is still in the heap: same priority and seq
    this.#inReady.add(t.id);
    this.#queue(t).ready.push({ id: t.id, priority: t.priority, seq: t.seq });
  }

  #placeDelayed(t: Task, until: number): void {
    const known = this.#delayedUntil.get(t.id);
    if (known !== undefined && known <= until) return; // an earlier entry will look again then
    this.#delayedUntil.set(t.id, until);
    this.#queue(t).delayed.push({ id: t.id, until });
  }

  /** Moves the queue's delayed tasks that came due to ready. */
  #promote(q: Queue, now: number): void {
    for (let e = q.delayed.peek(); e && e.until <= now; e = q.delayed.peek()) {
      q.delayed.pop();
      if (this.#delayedUntil.get(e.id) !== e.until) continue; // a stale duplicate
      this.#delayedUntil.delete(e.id);
      const t = this.#record(e.id);
      if (t?.state !== "pending") continue;
      if ((t.notBefore ?? 0) <= now) this.#placeReady(t);
      else this.#placeDelayed(t, t.notBefore!);
    }
  }

  /** The queue's best ready entry that is still claimable, dropping stale ones on the way. */
  #readyTop(q: Queue, now: number): ReadyEntry | undefined {
    for (let e = q.ready.peek(); e; e = q.ready.peek()) {
      if (claimable(this.#record(e.id), now)) return e;
      q.ready.pop();
      this.#inReady.delete(e.id);
      const t = this.#record(e.id);
      // Pending but not due: a retry's backoff started after the entry was made.
      if (t?.state === "pending") this.#placeDelayed(t, t.notBefore!);
    }
    return undefined;
  }
}

function sameRecord(a: Task, b: Task): boolean {
  return a === b || JSON.stringify(a) === JSON.stringify(b);
}

/**
 * The record as the JSON backends would hold it, frozen: values a transition brought in (a
 * result, progress, a user's inputs) are checked and copied; values already frozen are shared.
 */
function freezeRecord(t: Task): Task {
  if (Object.isFrozen(t)) return t;
  const key = taskKey(t.id);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(t)) {
    if (v === undefined) continue; // JSON drops it
    if (typeof v === "object" && v !== null) out[k] = Object.isFrozen(v) ? v : frozenCopy(`${key} ${k}`, v);
    else if (typeof v === "number" && !Number.isFinite(v))
      out[k] = null; // as JSON writes it
    else if (typeof v === "function" || typeof v === "symbol" || typeof v === "bigint") {
      throw new StoreError(`value for "${key}" is not JSON-serialisable: ${k} is a ${typeof v}`);
    } else out[k] = v;
  }
  return deepFreeze(out) as unknown as Task;
}

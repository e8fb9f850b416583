/**
 * Following what finishes, in this process and in every other sharing the store: the engine of
 * `TaskManager.waitFor` and `TaskManager.on("completed" | "failed" | "cancelled", listener)`.
 *
 * The store's wake-up channels carry no payload, so the facts come from the finished index
 * (TaskQueue.finishedSince: ids, states and times, no records). Every final transition (a report,
 * a last failure, a cancel) wakes FINISHED_CHANNEL, at most once per ANNOUNCE_MS per process
 * (task-manager.ts): a busy worker sends a few wake-ups a second, not one per task. A process that
 * follows reads the index since its cursor once per wake-up, however many waiters and listeners it
 * has, and reads the records of only those tasks someone here waits for or listens to.
 *
 * Times in the index are the writers' clocks, and a write may commit a little after one stamped
 * later (its process paused between reading the clock and writing), behind a cursor that already
 * moved on. So every SWEEP_MS the index is read again from LATE_MS before the cursor, skipping what
 * was delivered (by id and time): a listener hears each finish once, provided it commits within
 * LATE_MS of its timestamp. Waiters do not rely even on that: every CHECK_EVERY sweeps, the
 * records of every task waited for are read, which also notices a task removed while awaited.
 */
import { NotFoundError, StoreClosedError, WaitTimeoutError } from "../core/errors.ts";
import { FINAL_STATE_LIST, FINAL_STATES, type FinalState, type Task } from "../core/task.ts";
import { quoted } from "../core/text.ts";
import { type Logger, RateLimitedLog } from "../observability/log.ts";
import type { Clock } from "../store/clock.ts";
import type { Store } from "../store/store.ts";
import type { FinishedEntry, TaskQueue } from "../store/task-queue.ts";

/** Woken by every final transition (coalesced per process). */
export const FINISHED_CHANNEL = "tasks:finished";
/** The events a listener may subscribe to: a task reaching that final state. */
export type TaskEvent = FinalState;
export const TASK_EVENTS: readonly TaskEvent[] = FINAL_STATE_LIST;
/** Called with the finished record; a throw or a rejected promise is logged, and others still hear. */
export type TaskListener = (task: Task) => void | Promise<void>;

export interface WaitOptions {
  /** Give up after this long (ms): the promise rejects with WaitTimeoutError. Default: no limit. */
  timeoutMs?: number;
  /** Give up when this aborts: the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** Entries read from the index per call. */
const PAGE = 1000;
/** How often the index is read again from LATE_MS back, and how far back (see the header). */
const SWEEP_MS = 1000;
const LATE_MS = 5000;
/** Every this many sweeps, the records of all awaited tasks are read. */
const CHECK_EVERY = 5;

interface Waiter {
  resolve(task: Task): void;
  reject(err: unknown): void;
  /** The state last read, for the timeout's message. */
  state?: string;
  /** Until the first read of its task answered (which may find that there is no such task). */
  fresh: boolean;
}

const keyOf = (e: FinishedEntry) => `${e.updatedAt}:${e.id}`;

export class TaskWatcher {
  readonly #listeners: Record<TaskEvent, Set<TaskListener>> = {
    completed: new Set(),
    failed: new Set(),
    cancelled: new Set(),
  };
  readonly #waiters = new Map<string, Set<Waiter>>();
  /** Entries delivered, by key, with their time (kept while within LATE_MS of the cursor). */
  readonly #seen = new Map<string, number>();
  /** Tasks whose new waiters await their first read (see #readSoon). */
  readonly #firstReads = new Set<string>();
  readonly #failures: RateLimitedLog;
  /** The time up to which the index was read; undefined until the clock answered after a start. */
  #cursor: number | undefined;
  /** Where the cursor started: re-reads never go back before it. */
  #floor = 0;
  /** performance.now() when following started (the cursor starts at that moment on the store's clock). */
  #startedAt = 0;
  /** Bumped by every start and stop, so that a pass begun before does not move a newer cursor. */
  #generation = 0;
  #unsubscribe: (() => void) | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #sweeps = 0;
  #passing = false;
  #again: { full: boolean } | undefined;

  constructor(
    private readonly queue: TaskQueue,
    private readonly store: Store,
    private readonly now: Clock,
    private readonly log: Logger,
  ) {
    this.#failures = new RateLimitedLog(log, { level: "warn" });
  }

  /** Calls `listener` with each task that reaches `event` from now on; returns the unsubscribe function. */
  on(event: TaskEvent, listener: TaskListener): () => void {
    const set = this.#listeners[event];
    if (!set) throw new TypeError(`unknown task event ${quoted(String(event))}; use ${TASK_EVENTS.join(", ")}`);
    this.#start();
    set.add(listener);
    return () => {
      set.delete(listener);
      this.#stopIfUnused();
    };
  }

  /** The task once it is finished (completed, failed or cancelled); see TaskManager.waitFor. */
  wait(id: string, options: WaitOptions = {}): Promise<Task> {
    const { timeoutMs, signal } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<Task>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const onAbort = () => w.reject(signal!.reason);
      const end = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        const set = this.#waiters.get(id);
        set?.delete(w);
        if (set?.size === 0) this.#waiters.delete(id);
        this.#stopIfUnused();
      };
      let done = false;
      const w: Waiter = {
        fresh: true,
        resolve: (t) => {
          if (done) return;
          done = true;
          end();
          resolve(t);
        },
        reject: (err) => {
          if (done) return;
          done = true;
          end();
          reject(err);
        },
      };
      try {
        this.#start();
      } catch (err) {
        return reject(err);
      }
      const set = this.#waiters.get(id) ?? new Set();
      this.#waiters.set(id, set);
      set.add(w);
      signal?.addEventListener("abort", onAbort, { once: true });
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          const state = w.state ? ` (it is ${w.state})` : "";
          const after = timeoutMs >= 1000 ? `${+(timeoutMs / 1000).toFixed(3)} s` : `${timeoutMs} ms`;
          w.reject(
            new WaitTimeoutError(`task ${quoted(id, 80)} did not finish within ${after}${state}`, {
              taskId: id,
              state: w.state,
            }),
          );
        }, timeoutMs);
      }
      // Registered first, read second: a finish between the two is seen by one or the other.
      this.#readSoon(id);
    });
  }

  /** The first read for new waiters: those begun in the same tick share one getMany (e.g. `tasks wait`). */
  #readSoon(id: string): void {
    this.#firstReads.add(id);
    if (this.#firstReads.size > 1) return;
    queueMicrotask(() => {
      const ids = [...this.#firstReads];
      this.#firstReads.clear();
      this.queue.getMany(ids).then(
        (records) => {
          for (const [i, id] of ids.entries()) this.#settle(id, records[i], true);
        },
        (err) => {
          for (const id of ids) for (const w of [...(this.#waiters.get(id) ?? [])]) if (w.fresh) w.reject(err);
        },
      );
    });
  }

  #start(): void {
    if (this.#unsubscribe) return;
    this.#unsubscribe = this.store.subscribe(FINISHED_CHANNEL, () => this.#schedule(false));
    this.#generation++;
    this.#cursor = undefined;
    this.#startedAt = performance.now();
    this.#sweeps = 0;
    // Unref'd: what keeps a waiting process alive is the store's subscription (or a timeout), not the sweep.
    this.#timer = setInterval(() => this.#schedule(true), SWEEP_MS);
    this.#timer.unref();
    this.#schedule(false); // reads the clock for the cursor
  }

  #stopIfUnused(): void {
    if (this.#waiters.size > 0 || TASK_EVENTS.some((e) => this.#listeners[e].size > 0)) return;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#seen.clear();
    this.#generation++;
  }

  /** The store was closed under us: waiters learn it, listeners hear no more, and following stops. */
  #storeClosed(err: StoreClosedError): void {
    this.#passing = false;
    this.#again = undefined;
    for (const set of [...this.#waiters.values()]) for (const w of [...set]) w.reject(err);
    for (const e of TASK_EVENTS) this.#listeners[e].clear();
    this.#stopIfUnused();
  }

  /** Runs a pass, or one more after the one under way (wake-ups during a pass become one pass). */
  #schedule(full: boolean): void {
    if (this.#passing) {
      this.#again = { full: full || (this.#again?.full ?? false) };
      return;
    }
    this.#passing = true;
    void (async () => {
      for (let f = full; ; ) {
        try {
          await this.#pass(f);
        } catch (err) {
          if (err instanceof StoreClosedError) return this.#storeClosed(err);
          this.#failures.write("cannot follow finished tasks; trying again", { err });
        }
        if (!this.#again) {
          this.#passing = false;
          return;
        }
        f = this.#again.full;
        this.#again = undefined;
      }
    })();
  }

  async #pass(full: boolean): Promise<void> {
    const generation = this.#generation;
    if (!this.#unsubscribe) return;
    if (this.#cursor === undefined) {
      const now = await this.now();
      if (generation !== this.#generation) return;
      this.#cursor = now - (performance.now() - this.#startedAt);
      this.#floor = this.#cursor;
    }
    // Never from before following began: those finishes are not events for these listeners.
    let since = full ? Math.max(this.#floor, this.#cursor - LATE_MS) : this.#cursor;
    let limit = PAGE;
    for (;;) {
      const entries = await this.queue.finishedSince(since, limit);
      if (generation !== this.#generation) return;
      const fresh = entries.filter((e) => !this.#seen.has(keyOf(e)));
      for (const e of fresh) this.#seen.set(keyOf(e), e.updatedAt);
      await this.#deliver(fresh);
      const last = entries[entries.length - 1];
      if (last && last.updatedAt > this.#cursor!) this.#cursor = last.updatedAt;
      if (!last || entries.length < limit) break;
      // A page all of one millisecond: read a bigger one from the same time.
      if (last.updatedAt === since) limit *= 2;
      else [since, limit] = [last.updatedAt, PAGE];
    }
    const keepFrom = this.#cursor! - LATE_MS;
    for (const [k, at] of this.#seen) if (at < keepFrom) this.#seen.delete(k);
    if (full && ++this.#sweeps % CHECK_EVERY === 0 && this.#waiters.size > 0) {
      const ids = [...this.#waiters.keys()];
      const records = await this.queue.getMany(ids);
      for (const [i, id] of ids.entries()) this.#settle(id, records[i], false);
    }
  }

  /** Reads the records of entries someone here wants, and tells waiters and listeners. */
  async #deliver(entries: readonly FinishedEntry[]): Promise<void> {
    const wanted = entries.filter((e) => this.#listeners[e.state].size > 0 || this.#waiters.has(e.id));
    if (wanted.length === 0) return;
    const records = await this.queue.getMany(wanted.map((e) => e.id));
    wanted.forEach((e, i) => {
      const t = records[i];
      // Gone, or changed again since (retried, or finished anew: that is an entry of its own).
      if (!t || t.state !== e.state || t.updatedAt !== e.updatedAt) return;
      this.#settle(e.id, t, false);
      for (const listener of [...this.#listeners[e.state]]) this.#call(listener, t);
    });
  }

  #call(listener: TaskListener, task: Task): void {
    const failed = (err: unknown) => this.log.warn("a task listener failed", { task: task.id, err });
    try {
      const r = listener(task);
      if (r instanceof Promise) r.catch(failed);
    } catch (err) {
      failed(err);
    }
  }

  /** Ends the waits for `id` when the record read is final; `first`: the first read for new waiters. */
  #settle(id: string, t: Task | undefined, first: boolean): void {
    const waiters = this.#waiters.get(id);
    if (!waiters) return;
    for (const w of [...waiters]) {
      const fresh = w.fresh;
      if (first) w.fresh = false;
      if (t && FINAL_STATES.has(t.state)) w.resolve(t);
      else if (t) w.state = t.state;
      else if (first && fresh) w.reject(new NotFoundError(`task ${quoted(id, 80)} does not exist`));
      else if (!first) w.reject(new NotFoundError(`task ${quoted(id, 80)} was removed while awaited`));
    }
  }
}

/**
 * Tasks in a shared Store, with claims that are exact across every process sharing it.
 *
 * The record `task:<id>` is the truth. The store's task queue (store/task-queue.ts: native for
 * memory, SQLite and Redis, generic over any other Store) changes a record and its place (ready,
 * delayed, held, finished) in one atomic step, so exactly one claimer wins. A claim is a lease: it
 * yields a token that report, fail, renew and release must present, so a holder whose lease
 * expired and was taken over cannot overwrite the new holder's work ("lease lost").
 *
 * What a transition writes is decided here, from the record as this process last wrote it for a
 * lease it holds (only the token's holder writes a held task, so that record is current), or as
 * read just before for the system's own transitions (cancel, retry, an expired lease), which then
 * apply only if the record is still exactly that one. Claims alone are decided by the queue.
 *
 * Time comes from one clock (the store's own by default, e.g. Redis TIME), so hosts with skewed
 * clocks agree on leases and retry times; tests give a fake one.
 *
 * Producers wait for results with `waitFor` and `on` (task-events.ts): every final transition
 * wakes FINISHED_CHANNEL, at most once per ANNOUNCE_MS per manager and without waiting for it, so
 * that a worker's report costs no extra round trip (`settle()` sends what is due before a close).
 */
import { randomUUID } from "node:crypto";
import { LeaseLostError, NotFoundError, TaskStateError } from "../core/errors.ts";
import {
  claimTtlMs,
  FINAL_STATES,
  FINAL_STATE_LIST,
  type FinalState,
  HELD_STATES,
  isTaskState,
  newTask,
  type Task,
  type TaskInit,
  type TaskState,
} from "../core/task.ts";
import { logger } from "../observability/log.ts";
import { type Clock, clockFor } from "../store/clock.ts";
import { GenericTaskQueue } from "../store/generic-queue.ts";
import type { Store } from "../store/store.ts";
import {
  type Answer,
  andThen,
  type ClaimNext,
  type Expect,
  type TaskQueue,
  type Transition,
  type TransitionOptions,
  type Visibility,
} from "../store/task-queue.ts";
import { FINISHED_CHANNEL, type TaskEvent, type TaskListener, TaskWatcher, type WaitOptions } from "./task-events.ts";
import { constraintWarnings, type SubmitWarning } from "./task-warnings.ts";

/** Channel notified when work may have become claimable (submit, release, retry). */
export const TASKS_CHANNEL = "tasks";
/** The most tasks `pendingFor` returns (the best). */
const PENDING_LIMIT = 1000;
/** How many expired leases one reaper pass hands back at most. */
const REAP_BATCH = 1000;
/** How often a system transition re-reads and tries again when the record keeps changing under it. */
const CAS_ATTEMPTS = 20;
const MAX_BACKOFF_MS = 60_000;
/** At most one wake-up of FINISHED_CHANNEL per this many ms per manager (the first at once, then the rest together). */
const ANNOUNCE_MS = 10;
const log = logger("tasks");

export interface Lease {
  taskId: string;
  token: string;
  /** Epoch ms; null when the lease never expires. */
  expiresAt: number | null;
  task: Task;
}

/** Who acts on a claimed task: the agent, and the lease token from `claim`. */
export interface Holder {
  agentId: string;
  token?: string;
}

/** What an agent may take: pools it belongs to, capabilities it has. */
export interface Scope {
  pools?: Iterable<string>;
  capabilities?: Iterable<string>;
}

export interface TaskManagerOptions {
  /** Lease length for tasks whose constraints set no `claim_ttl_sec`; none by default (Python semantics). */
  defaultClaimTtlSec?: number;
  /** First retry delay; doubles each attempt (capped at 60 s). A task may set `retry_backoff_ms`. */
  retryBackoffMs?: number;
  /** Where time comes from (default: the store's clock). */
  clock?: Clock;
  /**
   * Told of tasks accepted with a likely mistake (task-warnings.ts: an unknown constraint key), one
   * call per problem per submit; default: a warning log line.
   */
  onWarning?: (warning: SubmitWarning) => void;
  /**
   * Wake FINISHED_CHANNEL on final transitions (default true), so that waitFor and listeners in
   * other processes hear at once; without it they notice within about a second, by their sweeps.
   */
  announceFinished?: boolean;
}

export interface SubmitResult {
  task: Task;
  /** False when a task with this id already existed (it was left as it is). */
  created: boolean;
}

const unassigned = { assignedTo: null, claimedAt: null, leaseToken: null, leaseExpiresAt: null } as const;

export class TaskManager {
  readonly queue: TaskQueue;
  readonly #now: Clock;
  readonly #defaultTtlMs: number | null;
  /**
   * The record as this process last wrote it, for each lease held here (the base of the holder's
   * next change); not kept for a queue that can peek at its records for free (memory).
   */
  readonly #held = new Map<string, Task>();
  readonly #keepHeld: boolean;
  #seq = 0;
  #reaper: { refs: number; timer: ReturnType<typeof setInterval> } | undefined;
  #watcher: TaskWatcher | undefined;
  #announced = -Infinity;
  #announceTimer: ReturnType<typeof setTimeout> | undefined;
  #announcing: Promise<void> | undefined;

  constructor(
    readonly store: Store,
    private readonly options: TaskManagerOptions = {},
  ) {
    this.queue = store.tasks ?? new GenericTaskQueue(store);
    this.#now = options.clock ?? this.queue.clock ?? clockFor(store);
    this.#keepHeld = this.queue.peek === undefined;
    const ttl = options.defaultClaimTtlSec;
    this.#defaultTtlMs = ttl !== undefined && ttl > 0 ? Math.round(ttl * 1000) : null;
  }

  /** The time on the manager's clock (epoch ms). */
  async now(): Promise<number> {
    return this.#now();
  }

  /** Submit order within this process, by the clock across processes. */
  #nextSeq(now: number): number {
    this.#seq = Math.max(this.#seq + 1, now * 1024);
    return this.#seq;
  }

  /** Stores a new pending task; an existing id is refused (TaskStateError). */
  async submit(init: TaskInit): Promise<Task> {
    const [r] = await this.submitMany([init]);
    if (!r!.created) throw new TaskStateError(`task ${r!.task.id} already exists`);
    return r!.task;
  }

  /**
   * Stores many tasks in one batch of the store (one script, one transaction). A task whose id
   * exists is left as it is (`created: false`); every other is created. A bad init refuses them all.
   */
  async submitMany(inits: readonly TaskInit[]): Promise<SubmitResult[]> {
    if (inits.length === 0) return [];
    const t0 = this.#now();
    const now = typeof t0 === "number" ? t0 : await t0;
    const tasks = inits.map((init) => newTask(init, now, this.#nextSeq(now)));
    const created = await this.queue.submit(tasks, now);
    if (created.some(Boolean)) await this.#notify();
    for (const w of constraintWarnings(tasks.filter((_, i) => created[i]))) {
      if (this.options.onWarning) this.options.onWarning(w);
      else log.warn(w.message);
    }
    return tasks.map((task, i) => ({ task, created: created[i]! }));
  }

  /**
   * The task once it is finished: completed, failed or cancelled (whoever finished it, in whatever
   * process). Rejects with NotFoundError when there is no such task (or it is removed meanwhile),
   * WaitTimeoutError after `timeoutMs`, or the signal's reason when `signal` aborts.
   */
  waitFor(taskId: string, options: WaitOptions = {}): Promise<Task> {
    return this.#events().wait(taskId, options);
  }

  /**
   * Calls `listener` with every task that reaches `event` (completed, failed or cancelled) from
   * now on, in any process sharing the store; returns the function that unsubscribes it.
   */
  on(event: TaskEvent, listener: TaskListener): () => void {
    return this.#events().on(event, listener);
  }

  #events(): TaskWatcher {
    return (this.#watcher ??= new TaskWatcher(this.queue, this.store, this.#now, log));
  }

  /** Sends a wake-up of FINISHED_CHANNEL still held back, and waits for it: call it before closing the store. */
  async settle(): Promise<void> {
    if (this.#announceTimer) {
      clearTimeout(this.#announceTimer);
      this.#announceTimer = undefined;
      this.#announce();
    }
    await this.#announcing;
  }

  /** A task reached a final state: wake FINISHED_CHANNEL now, or with the others due within ANNOUNCE_MS. */
  #finished(): void {
    if (this.options.announceFinished === false || this.#announceTimer) return;
    const wait = this.#announced + ANNOUNCE_MS - performance.now();
    if (wait <= 0) return this.#announce();
    this.#announceTimer = setTimeout(() => {
      this.#announceTimer = undefined;
      this.#announce();
    }, wait);
  }

  #announce(): void {
    this.#announced = performance.now();
    const sent: Promise<void> = this.store.notify(FINISHED_CHANNEL).then(
      () => {
        if (this.#announcing === sent) this.#announcing = undefined;
      },
      (err) => {
        if (this.#announcing === sent) this.#announcing = undefined;
        log.debug("could not announce finished tasks; waiters notice by their sweeps", { err });
      },
    );
    this.#announcing = sent;
  }

  async get(taskId: string): Promise<Task | undefined> {
    return this.queue.get(taskId);
  }

  #claim(agentId: string, now: number, ttlMs?: number) {
    return { agentId, now, defaultTtlMs: this.#defaultTtlMs, ttlMs };
  }

  #lease(t: Task): Lease {
    if (this.#keepHeld) this.#held.set(t.id, t);
    return { taskId: t.id, token: t.leaseToken!, expiresAt: t.leaseExpiresAt, task: t };
  }

  /**
   * Claims this pending task for `agentId`. Exactly one concurrent claimer gets a Lease; the
   * others get null (the task was not pending, is not due yet, or someone else won).
   */
  async claim(taskId: string, agentId: string, options: { ttlMs?: number } = {}): Promise<Lease | null> {
    const t0 = this.#now();
    const now = typeof t0 === "number" ? t0 : await t0;
    const r = this.queue.claim(taskId, this.#claim(agentId, now, options.ttlMs), token());
    const { task } = r instanceof Promise ? await r : r;
    return task ? this.#lease(task) : null;
  }

  /** Claims up to `max` of the best due tasks the agent may take (priority, then submit order). */
  async claimNext(agentId: string, scope: Scope, max = 1): Promise<Lease[]> {
    if (max <= 0) return [];
    const t0 = this.#now();
    const now = typeof t0 === "number" ? t0 : await t0;
    const r = this.queue.claimNext(this.#claimNext(agentId, scope, max, now));
    return (r instanceof Promise ? await r : r).map((t) => this.#lease(t));
  }

  #claimNext(agentId: string, scope: Scope, max: number, now: number): ClaimNext {
    return {
      agentId,
      now,
      defaultTtlMs: this.#defaultTtlMs,
      visibility: visibility(scope),
      tokens: Array.from({ length: max }, token),
    };
  }

  /** Extends a lease while work goes on; LeaseLostError when the token is no longer current. */
  async renew(taskId: string, leaseToken: string, ttlMs?: number): Promise<Lease> {
    const t0 = this.#now();
    const now = typeof t0 === "number" ? t0 : await t0;
    const after = await this.#byHolder(taskId, { agentId: "", token: leaseToken }, now, (t) => {
      const ttl = ttlMs ?? claimTtlMs(t, this.options.defaultClaimTtlSec);
      return { ...t, leaseExpiresAt: ttl === undefined ? null : now + ttl, updatedAt: now };
    });
    return this.#lease(after.task);
  }

  /** Records the holder's progress on the task record (field `progress`); the task is then `running`. */
  async progress(taskId: string, value: unknown, holder: Holder): Promise<Task> {
    const t0 = this.#now();
    const now = typeof t0 === "number" ? t0 : await t0;
    return (
      await this.#byHolder(taskId, holder, now, (t) => ({
        ...t,
        state: "running",
        progress: value ?? null,
        updatedAt: now,
      }))
    ).task;
  }

  /** Completes a task. Only the holder: `token` must be the current lease (or, lease-less, agentId the assignee). */
  async report(taskId: string, result: unknown, holder: Holder): Promise<Task> {
    const r = this.#complete(taskId, result, holder);
    return (r instanceof Promise ? await r : r).task;
  }

  /**
   * Completes a task and, in the same step of the store (one round trip on Redis), claims up to
   * `next.max` more for the same agent: a busy worker keeps itself fed without extra calls.
   */
  async reportAndClaim(
    taskId: string,
    result: unknown,
    holder: Holder,
    next?: { scope: Scope; max: number },
    options?: TransitionOptions,
  ): Promise<{ task: Task; next: Lease[] }> {
    const c = this.#complete(taskId, result, holder, next, options);
    const r = c instanceof Promise ? await c : c;
    return { task: r.task, next: r.next.map((t) => this.#lease(t)) };
  }

  /** report and reportAndClaim: at once where the queue answers at once (memory), taking no turn of the loop. */
  #complete(
    taskId: string,
    result: unknown,
    holder: Holder,
    next?: { scope: Scope; max: number },
    options?: TransitionOptions,
  ): Answer<{ task: Task; next: Task[] }> {
    const t0 = this.#now();
    if (typeof t0 !== "number") return t0.then((now) => this.#completeAt(now, taskId, result, holder, next, options));
    return this.#completeAt(t0, taskId, result, holder, next, options);
  }

  #completeAt(
    now: number,
    taskId: string,
    result: unknown,
    holder: Holder,
    next?: { scope: Scope; max: number },
    options?: TransitionOptions,
  ): Answer<{ task: Task; next: Task[] }> {
    const then = next && next.max > 0 ? this.#claimNext(holder.agentId, next.scope, next.max, now) : undefined;
    const done = this.#byHolder(taskId, holder, now, (t) => completed(t, result, now), then, options);
    return andThen(done, this.#reported);
  }

  readonly #reported = <T>(r: T): T => {
    this.#finished();
    return r;
  };

  /**
   * Fails an attempt. While `constraints.max_retries` allows (attempts ≤ max_retries), the task
   * goes back to pending after an exponential backoff; otherwise it ends failed with `error`.
   * `holder` is the assignee's lease, or "system" for the runtime's own decisions.
   */
  async fail(taskId: string, error: string, holder: Holder | "system"): Promise<Task> {
    const t0 = this.#now();
    const now = typeof t0 === "number" ? t0 : await t0;
    const next = (t: Task): Task => {
      const maxRetries = Number(t.constraints.max_retries ?? 0);
      if (t.attempts <= maxRetries && t.attempts > 0) {
        const base = Number(t.constraints.retry_backoff_ms ?? this.options.retryBackoffMs ?? 1000);
        const delay = Math.min(MAX_BACKOFF_MS, base * 2 ** (t.attempts - 1));
        return { ...t, ...unassigned, state: "pending", error, notBefore: now + delay, updatedAt: now };
      }
      return { ...t, state: "failed", error, leaseToken: null, leaseExpiresAt: null, updatedAt: now };
    };
    const after =
      holder === "system"
        ? await this.#bySystem(taskId, now, (t) => openProblem(t, taskId), next)
        : (await this.#byHolder(taskId, holder, now, next)).task;
    if (after.state === "pending") await this.#notify();
    else if (after.state === "failed") {
      this.#finished();
      if (holder === "system") await this.settle();
    }
    return after;
  }

  /** Gives a claimed task back to pending without counting the attempt (graceful shutdown). */
  async release(taskId: string, holder: Holder): Promise<Task> {
    const t0 = this.#now();
    const now = typeof t0 === "number" ? t0 : await t0;
    const { task } = await this.#byHolder(taskId, holder, now, (t) => ({
      ...t,
      ...unassigned,
      state: "pending",
      attempts: Math.max(0, t.attempts - 1),
      updatedAt: now,
    }));
    await this.#notify();
    return task;
  }

  /** Cancels a task that is not finished yet. */
  async cancel(taskId: string): Promise<Task> {
    const t0 = this.#now();
    const now = typeof t0 === "number" ? t0 : await t0;
    const after = await this.#bySystem(
      taskId,
      now,
      (t) => openProblem(t, taskId),
      (t) => ({ ...t, ...unassigned, state: "cancelled", updatedAt: now }),
    );
    this.#finished();
    await this.settle();
    return after;
  }

  /** Puts a failed or cancelled task back to pending with a fresh attempt count (operator retry). */
  async retry(taskId: string): Promise<Task> {
    const t0 = this.#now();
    const now = typeof t0 === "number" ? t0 : await t0;
    const after = await this.#bySystem(
      taskId,
      now,
      (t) => retryProblem(t, taskId),
      (t) => ({ ...t, ...unassigned, state: "pending", attempts: 0, error: null, notBefore: null, updatedAt: now }),
    );
    await this.#notify();
    return after;
  }

  /** Held tasks whose lease has expired go back to pending; returns their ids. */
  async releaseExpiredClaims(now?: number): Promise<string[]> {
    const at = now ?? (await this.#now());
    const released: string[] = [];
    for (const t of await this.queue.expired(at, REAP_BATCH)) {
      const r = await this.queue.transition(
        t.id,
        { record: t },
        { ...t, ...unassigned, state: "pending", updatedAt: at },
        at,
      );
      if (r.ok) {
        released.push(t.id);
        this.#held.delete(t.id);
      }
    }
    if (released.length) await this.#notify();
    return released;
  }

  /**
   * Runs `releaseExpiredClaims` every `everyMs` until the matching `stopReaper` (callers share one
   * timer: every runtime over this manager starts it). Failures are logged by `onError`.
   */
  startReaper(everyMs: number, report: (released: string[], err?: unknown) => void): void {
    if (this.#reaper) {
      this.#reaper.refs++;
      return;
    }
    const timer = setInterval(() => {
      this.releaseExpiredClaims().then(
        (ids) => ids.length > 0 && report(ids),
        (err) => report([], err),
      );
    }, everyMs);
    this.#reaper = { refs: 1, timer };
  }

  stopReaper(): void {
    if (this.#reaper && --this.#reaper.refs === 0) {
      clearInterval(this.#reaper.timer);
      this.#reaper = undefined;
    }
  }

  /** Every task that is not finished (pending, assigned, running), oldest first. */
  async openTasks(): Promise<Task[]> {
    return byAge(await this.queue.open());
  }

  /**
   * The best due tasks `agentId` may claim now, at most PENDING_LIMIT (a decide pass needs no
   * more): a task with `poolId` only for members of that pool, one with `requiredCapabilities`
   * only for agents having all of them.
   */
  async pendingFor(
    agentId: string,
    poolIds: Iterable<string> = [],
    capabilities: Iterable<string> = [],
    now?: number,
  ): Promise<Task[]> {
    void agentId;
    return this.queue.pending(visibility({ pools: poolIds, capabilities }), now ?? (await this.#now()), PENDING_LIMIT);
  }

  /** Tasks in `state` (all tasks when omitted), oldest first. */
  async list(state?: TaskState): Promise<Task[]> {
    if (state !== undefined && !isTaskState(state)) throw new TaskStateError(`unknown task state "${state}"`);
    if (state !== undefined && FINAL_STATES.has(state))
      return byAge(await this.queue.finished(state as FinalState, Infinity, Infinity));
    const open = await this.queue.open();
    if (state !== undefined) return byAge(open.filter((t) => t.state === state));
    const done = await Promise.all(FINAL_STATE_LIST.map((s) => this.queue.finished(s, Infinity, Infinity)));
    return byAge([...open, ...done.flat()]);
  }

  /** How many tasks are in each state. */
  counts(): Promise<Record<TaskState, number>> {
    return this.queue.counts();
  }

  /**
   * A change the holder of a lease makes, from the record this process last wrote for it (read
   * when this process holds none, e.g. a command line acting with a token).
   */
  #byHolder(
    taskId: string,
    holder: Holder,
    now: number,
    change: (t: Task) => Task,
    then?: ClaimNext,
    options?: TransitionOptions,
  ): Answer<{ task: Task; next: Task[] }> {
    const expect: Expect = holder.token !== undefined ? { lease: holder.token } : { assignee: holder.agentId };
    const base = this.queue.peek ? this.queue.peek(taskId) : this.#held.get(taskId);
    if (!base || ("lease" in expect && base.leaseToken !== expect.lease)) {
      const read = this.queue.get(taskId);
      return read.then((t) => this.#change(t, taskId, holder, expect, now, change, then, options));
    }
    return this.#change(base, taskId, holder, expect, now, change, then, options);
  }

  #change(
    base: Task | undefined,
    taskId: string,
    holder: Holder,
    expect: Expect,
    now: number,
    change: (t: Task) => Task,
    then?: ClaimNext,
    options?: TransitionOptions,
  ): Answer<{ task: Task; next: Task[] }> {
    const problem = holderProblem(base, taskId, holder);
    if (problem) throw problem;
    const next = change(base!);
    const r = this.queue.transition(taskId, expect, next, now, then, options);
    // No closure for an answer given at once: this runs for every report.
    if (r instanceof Promise) return r.then((x) => this.#changed(x, taskId, holder, next));
    return this.#changed(r, taskId, holder, next);
  }

  #changed(r: Transition, taskId: string, holder: Holder, next: Task): { task: Task; next: Task[] } {
    if (!r.ok) {
      this.#held.delete(taskId);
      // A retry after a lost reply (the store applied it, the answer never came) finds it done.
      if (landed(r.current, next)) return { task: r.current!, next: [] };
      throw (
        holderProblem(r.current, taskId, holder) ??
        new TaskStateError(`task ${taskId} changed while it was being updated`)
      );
    }
    if (!this.#keepHeld) return r;
    if (HELD_STATES.has(r.task.state)) this.#held.set(taskId, r.task);
    else this.#held.delete(taskId);
    return r;
  }

  /** A change the system makes (cancel, retry, a system failure): read, check, compare and set. */
  async #bySystem(
    taskId: string,
    now: number,
    problemOf: (t: Task | undefined) => Error | undefined,
    change: (t: Task) => Task,
  ): Promise<Task> {
    let current = await this.queue.get(taskId);
    for (let i = 0; i < CAS_ATTEMPTS; i++) {
      const problem = problemOf(current);
      if (problem) throw problem;
      const r = await this.queue.transition(taskId, { record: current! }, change(current!), now);
      if (r.ok) {
        if (!HELD_STATES.has(r.task.state)) this.#held.delete(taskId);
        return r.task;
      }
      current = r.current;
    }
    throw new TaskStateError(`task ${taskId} kept changing while being updated; try again`);
  }

  async #notify(): Promise<void> {
    await this.store.notify(TASKS_CHANNEL);
  }
}

/**
 * A lease token: unique across processes and restarts (a random prefix per process, then a
 * counter), so it fences exactly as a UUID would, at a fraction of the cost on the claim path.
 */
function token(): string {
  return `${TOKEN_PREFIX}${(++tokenSeq).toString(36)}`;
}
const TOKEN_PREFIX = `${randomUUID()}-`;
let tokenSeq = 0;

function completed(t: Task, result: unknown, now: number): Task {
  return {
    ...t,
    state: "completed",
    result: result ?? null,
    leaseToken: null,
    leaseExpiresAt: null,
    error: null,
    updatedAt: now,
  };
}

/** A live Set (a runtime's memberships) is read as it is: the queues only read a Visibility. */
function visibility(scope: Scope): Visibility {
  const { pools, capabilities } = scope;
  return {
    pools: pools instanceof Set ? pools : new Set(pools ?? []),
    capabilities: capabilities instanceof Set ? capabilities : new Set(capabilities ?? []),
  };
}

function byAge(tasks: Task[]): Task[] {
  return tasks.sort((a, b) => a.createdAt - b.createdAt || a.seq - b.seq || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

function openProblem(t: Task | undefined, taskId: string): Error | undefined {
  if (!t) return new NotFoundError(`task ${taskId} does not exist`);
  if (FINAL_STATES.has(t.state)) return new TaskStateError(`task ${taskId} is already ${t.state}`);
  return undefined;
}

function retryProblem(t: Task | undefined, taskId: string): Error | undefined {
  if (!t) return new NotFoundError(`task ${taskId} does not exist`);
  if (t.state !== "failed" && t.state !== "cancelled") {
    return new TaskStateError(`task ${taskId} is ${t.state}; only failed or cancelled tasks can be retried`);
  }
  return undefined;
}

/**
 * Whether `current` is what a holder's final transition to `next` wrote: same final state, same
 * holder and attempt, same result and error. Only the holder's own write can leave that behind
 * (anyone else's would be a later attempt, or another state), so a retried report or failure
 * whose first try landed counts as done rather than as a lost lease.
 */
function landed(current: Task | undefined, next: Task): boolean {
  return (
    current !== undefined &&
    (next.state === "completed" || next.state === "failed") &&
    current.state === next.state &&
    current.assignedTo === next.assignedTo &&
    current.attempts === next.attempts &&
    JSON.stringify(current.result) === JSON.stringify(next.result) &&
    (current.error ?? null) === (next.error ?? null)
  );
}

function holderProblem(t: Task | undefined, taskId: string, holder: Holder): Error | undefined {
  if (!t) return new NotFoundError(`task ${taskId} does not exist`);
  if (holder.token !== undefined) {
    if (!HELD_STATES.has(t.state) || t.leaseToken !== holder.token) {
      const by = t.assignedTo ? ` by ${t.assignedTo.slice(0, 12)}` : "";
      return new LeaseLostError(`lease lost on task ${taskId}: it is now ${t.state}${by} under another lease`);
    }
    return undefined;
  }
  if (!HELD_STATES.has(t.state) || t.assignedTo !== holder.agentId) {
    const who = t.assignedTo ? `, assigned to ${t.assignedTo.slice(0, 12)}` : "";
    return new TaskStateError(`task ${taskId} is ${t.state}${who}; only its assignee may do that`);
  }
  if (t.leaseToken) return new TaskStateError(`task ${taskId} is held under a lease; present its token`);
  return undefined;
}

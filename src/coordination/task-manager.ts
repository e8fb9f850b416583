/**
 * Tasks in a shared Store, with claims that are exact across every process sharing it.
 *
 * The record `task:<id>` is the truth; every transition is one atomic `store.update`, so exactly
 * one claimer wins. A claim is a lease: it yields a token that report, fail, renew and release must
 * present, so a holder whose lease expired and was taken over cannot overwrite the new holder's work.
 *
 * The index set `tasks:open` lists every task that is not final, so that finding pending work and
 * expired leases costs in proportion to open work, not to history. It never misses an open task:
 * every write that can change whether a task is final (submit, report, fail, release, cancel,
 * retry) is an update that sets the task's membership in the same atomic step as the record
 * (UpdateOptions.index: member if the written state is not final, else not), so there is no moment
 * when an open record is unindexed, and no final record written here stays indexed. Transitions
 * from open to open (claim, renew, progress, an expired lease released) leave membership as it is.
 * Records written by older code may still leave a final task in the index; a reader that meets
 * one drops it with a rewrite of the same record that takes it out of the index in the same step
 * (and declines, leaving the entry, if the task is open again by then). Only for an id whose
 * record is gone does the reader remove the entry and re-read, restoring it if a submit raced.
 *
 * Each update passes this process's last-seen record as a hint (UpdateOptions.expected), so that
 * on Redis a transition costs one round trip when nothing changed behind our back; the hint never
 * decides anything, the real record does.
 *
 * Finding work reads this process's PendingView of the open tasks (see pending-view.ts), which
 * every transition made here keeps up to date, rather than every open record on every pass.
 */
import { randomUUID } from "node:crypto";
import { hasAllCapabilities } from "../core/capability.ts";
import { LeaseLostError, TaskStateError } from "../core/errors.ts";
import {
  FINAL_STATES,
  claimTtlMs,
  isTaskState,
  newTask,
  type Task,
  type TaskInit,
  type TaskState,
} from "../core/task.ts";
import { ABSENT, DECLINE, getMany, type Store, type UpdateOptions } from "../store/store.ts";
import { PENDING_LIMIT, PendingView } from "./pending-view.ts";

export const TASK_PREFIX = "task:";
export const OPEN_INDEX = "tasks:open";
/** Channel notified when work may have become claimable (submit, release, retry). */
export const TASKS_CHANNEL = "tasks";

export interface Lease {
  taskId: string;
  token: string;
  /** Epoch ms; null when the task has no claim TTL (the lease never expires). */
  expiresAt: number | null;
  task: Task;
}

export interface TaskManagerOptions {
  /** Lease length for tasks whose constraints set no `claim_ttl_sec`; none by default (Python semantics). */
  defaultClaimTtlSec?: number;
  /** First retry delay; doubles each attempt (capped at 60 s). A task may set `retry_backoff_ms`. */
  retryBackoffMs?: number;
}

const MAX_BACKOFF_MS = 60_000;
const taskKey = (id: string) => TASK_PREFIX + id;
const isOpen = (t: Task) => !FINAL_STATES.has(t.state);

export class TaskManager {
  /** This process's view of the open tasks, what `pendingFor` reads. */
  readonly view: PendingView;
  #snapshot: Promise<Task[]> | undefined;
  #reapedAt = -Infinity;

  constructor(
    readonly store: Store,
    private readonly options: TaskManagerOptions = {},
  ) {
    this.view = new PendingView(store, OPEN_INDEX, (ids) => this.#getMany(ids));
  }

  /** Update options: the view's last-seen record as the hint, and, with `index`, the open index kept exact in the same step. */
  #opts(taskId: string, index = false, expected: Task | undefined = this.view.known(taskId)): UpdateOptions<Task> {
    return { expected, index: index ? { name: OPEN_INDEX, member: taskId, keep: isOpen } : undefined };
  }

  /** Tells the view about a task as a transition made here left it. */
  #saw(t: Task): Task {
    this.view.saw(t.id, t, true);
    return t;
  }

  /** Stores a new pending task; an existing id is refused. */
  async submit(init: TaskInit): Promise<Task> {
    const task = newTask(init, await this.store.now());
    let exists = false;
    const after = await this.store.update<Task>(
      taskKey(task.id),
      (cur) => ((exists = cur !== undefined) ? DECLINE : task),
      { expected: ABSENT, index: { name: OPEN_INDEX, member: task.id, keep: () => true } },
    );
    if (exists) throw new TaskStateError(`task ${task.id} already exists`);
    this.#saw(after!);
    await this.#notify();
    return task;
  }

  async get(taskId: string): Promise<Task | undefined> {
    return this.store.get<Task>(taskKey(taskId));
  }

  /** The records of `ids`, in order (one batched read where the store has one). */
  #getMany(ids: readonly string[]): Promise<(Task | undefined)[]> {
    return getMany<Task>(this.store, ids.map(taskKey));
  }

  /**
   * Claims a pending task for `agentId`. Exactly one concurrent claimer gets a Lease; the others
   * get null (the task was not pending, is waiting for a retry backoff, or someone else won).
   */
  async claim(taskId: string, agentId: string, options: { ttlMs?: number } = {}): Promise<Lease | null> {
    // A task this process knows to be taken (a claim under way here, or seen held) is not tried.
    if (this.view.taken(taskId)) return null;
    const { lease, current } = await this.view.claiming(taskId, this.#claim(taskId, agentId, options));
    if (lease) this.#saw(lease.task);
    else if (current)
      this.view.saw(taskId, current, true); // as the store has it now: held by another, or waiting for a retry
    else this.view.lost(taskId);
    return lease;
  }

  async #claim(
    taskId: string,
    agentId: string,
    options: { ttlMs?: number },
  ): Promise<{ lease: Lease | null; current?: Task }> {
    const now = await this.store.now();
    const token = randomUUID();
    let won = false;
    const after = await this.store.update<Task>(
      taskKey(taskId),
      (t) => {
        won = false;
        if (t?.state !== "pending" || (t.notBefore ?? 0) > now) return DECLINE;
        const ttl = options.ttlMs ?? claimTtlMs(t, this.options.defaultClaimTtlSec);
        won = true;
        return {
          ...t,
          state: "assigned",
          assignedTo: agentId,
          claimedAt: now,
          attempts: t.attempts + 1,
          leaseToken: token,
          leaseExpiresAt: ttl === undefined ? null : now + ttl,
          notBefore: null,
          updatedAt: now,
        };
      },
      this.#opts(taskId),
    );
    if (!won || !after) return { lease: null, current: after };
    return { lease: { taskId, token, expiresAt: after.leaseExpiresAt ?? null, task: after } };
  }

  /** Extends a lease while work goes on; LeaseLostError when the token is no longer current. */
  async renew(taskId: string, token: string, ttlMs?: number): Promise<Lease> {
    const now = await this.store.now();
    const after = await this.#change(
      taskId,
      (t) => leaseProblem(t, taskId, token),
      (t) => {
        const ttl = ttlMs ?? claimTtlMs(t, this.options.defaultClaimTtlSec);
        return { ...t, leaseExpiresAt: ttl === undefined ? null : now + ttl, updatedAt: now };
      },
    );
    return { taskId, token, expiresAt: after.leaseExpiresAt ?? null, task: after };
  }

  /** Records the holder's progress on the task record (field `progress`). */
  async progress(taskId: string, value: unknown, holder: Holder): Promise<Task> {
    const now = await this.store.now();
    return this.#transition(taskId, holder, (t) => ({
      ...t,
      state: "running",
      progress: value ?? null,
      updatedAt: now,
    }));
  }

  /** Completes a task. Only the assignee: `token` must be the current lease (or, for a lease-less caller, agentId the assignee). */
  async report(taskId: string, result: unknown, holder: Holder): Promise<Task> {
    const now = await this.store.now();
    return this.#transition(
      taskId,
      holder,
      (t) => ({
        ...t,
        state: "completed",
        result: result ?? null,
        leaseToken: null,
        leaseExpiresAt: null,
        error: null,
        updatedAt: now,
      }),
      true,
    );
  }

  /**
   * Fails an attempt. While `constraints.max_retries` allows (attempts ≤ max_retries), the task
   * goes back to pending after an exponential backoff; otherwise it ends failed with `error`.
   * `holder` is the assignee's lease, or "system" for the runtime's own decisions.
   */
  async fail(taskId: string, error: string, holder: Holder | "system"): Promise<Task> {
    const now = await this.store.now();
    const after = await this.#transition(
      taskId,
      holder,
      (t) => {
        const maxRetries = Number(t.constraints.max_retries ?? 0);
        if (t.attempts <= maxRetries && t.attempts > 0) {
          const base = Number(t.constraints.retry_backoff_ms ?? this.options.retryBackoffMs ?? 1000);
          const delay = Math.min(MAX_BACKOFF_MS, base * 2 ** (t.attempts - 1));
          return { ...t, ...unassigned, state: "pending", error, notBefore: now + delay, updatedAt: now };
        }
        return { ...t, state: "failed", error, leaseToken: null, leaseExpiresAt: null, updatedAt: now };
      },
      true,
    );
    if (after.state === "pending") await this.#notify();
    return after;
  }

  /** Gives a claimed task back to pending without counting the attempt (graceful shutdown). */
  async release(taskId: string, holder: Holder): Promise<Task> {
    const now = await this.store.now();
    const after = await this.#transition(
      taskId,
      holder,
      (t) => ({ ...t, ...unassigned, state: "pending", attempts: Math.max(0, t.attempts - 1), updatedAt: now }),
      true,
    );
    await this.#notify();
    return after;
  }

  /** Cancels a task that is not final yet. */
  async cancel(taskId: string): Promise<Task> {
    const now = await this.store.now();
    return this.#change(
      taskId,
      (t) => systemProblem(t, taskId),
      (t) => ({ ...t, ...unassigned, state: "cancelled", updatedAt: now }),
      true,
    );
  }

  /** Puts a failed or cancelled task back to pending with a fresh attempt count (operator retry). */
  async retry(taskId: string): Promise<Task> {
    const now = await this.store.now();
    const after = await this.#change(
      taskId,
      (t) => retryProblem(t, taskId),
      (t) => ({ ...t, ...unassigned, state: "pending", attempts: 0, error: null, updatedAt: now }),
      true,
    );
    await this.#notify();
    return after;
  }

  /**
   * Assigned tasks whose lease has expired go back to pending; returns their ids. This reads every
   * open record, so without an explicit `now` (the runtime's periodic reaper) a full pass runs at
   * most every second, or every 0.5 ms per open task, whichever is longer.
   */
  async releaseExpiredClaims(now?: number): Promise<string[]> {
    if (now === undefined) {
      if (performance.now() < this.#reapedAt + Math.max(1000, this.view.size * 0.5)) return [];
      this.#reapedAt = performance.now();
    }
    const at = now ?? (await this.store.now());
    const released: string[] = [];
    for (const t of await this.openTasks()) {
      if (!isExpired(t, at)) continue;
      let did = false;
      const after = await this.store.update<Task>(
        taskKey(t.id),
        (cur) => {
          did = !!cur && isExpired(cur, at);
          return did ? { ...cur!, ...unassigned, state: "pending", updatedAt: at } : DECLINE;
        },
        this.#opts(t.id, false, t),
      );
      if (did) released.push(this.#saw(after!).id);
    }
    if (released.length) await this.#notify();
    return released;
  }

  /**
   * Every task that is not final (pending, assigned, running), read through the open index (one
   * batched read where the store has one): what listing and the reaper need; finding work reads the view instead.
   * Concurrent callers in this process share one read.
   */
  openTasks(): Promise<Task[]> {
    if (!this.#snapshot) {
      const read = this.#readOpen().finally(() => {
        if (this.#snapshot === read) this.#snapshot = undefined;
      });
      this.#snapshot = read;
    }
    return this.#snapshot;
  }

  async #notify(): Promise<void> {
    this.#snapshot = undefined; // a read under way may predate this change
    await this.store.notify(TASKS_CHANNEL);
  }

  async #readOpen(): Promise<Task[]> {
    const ids = await this.store.indexMembers(OPEN_INDEX);
    const records = await this.#getMany(ids);
    const open: Task[] = [];
    const stale: [string, Task | undefined][] = [];
    records.forEach((t, i) => {
      if (t && !FINAL_STATES.has(t.state)) open.push(t);
      else stale.push([ids[i]!, t]);
    });
    if (stale.length) void Promise.all(stale.map(([id, t]) => this.#dropStale(id, t))).catch(() => {});
    return open.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1));
  }

  /**
   * The oldest pending tasks `agentId` may claim now, at most PENDING_LIMIT (a decide pass needs
   * no more): a task with `poolId` only for members of that pool, one with `requiredCapabilities`
   * only for agents having all of them, none before its retry time. Read from the view as it
   * stands when it shows this agent work, else from a refresh begun after this call (so the submit
   * that woke the caller is seen). The view may be a moment behind: a claim stays exact anyway.
   */
  async pendingFor(
    agentId: string,
    poolIds: Iterable<string> = [],
    capabilities: Iterable<string> = [],
    now = Date.now(),
  ): Promise<Task[]> {
    void agentId;
    const pools = new Set(poolIds);
    const caps = new Set(capabilities);
    const visible = (t: Task) =>
      (t.notBefore ?? 0) <= now &&
      (t.poolId === null || pools.has(t.poolId)) &&
      hasAllCapabilities(caps, t.requiredCapabilities);
    const seen = await this.view.pending(false, visible, PENDING_LIMIT);
    return seen.length > 0 ? seen : this.view.pending(true, visible, PENDING_LIMIT);
  }

  /** Tasks in `state` (all tasks when omitted); final states read the whole history. */
  async list(state?: TaskState): Promise<Task[]> {
    if (state !== undefined && !isTaskState(state)) throw new TaskStateError(`unknown task state "${state}"`);
    if (state !== undefined && !FINAL_STATES.has(state))
      return (await this.openTasks()).filter((t) => t.state === state);
    const keys = await this.store.list(TASK_PREFIX);
    const all = (await getMany<Task>(this.store, keys)).filter((t): t is Task => !!t);
    return (state ? all.filter((t) => t.state === state) : all).sort(
      (a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1),
    );
  }

  /** One atomic transition that only the current lease holder (or the system) may make. */
  #transition(taskId: string, holder: Holder | "system", fn: (t: Task) => Task, index = false): Promise<Task> {
    return this.#change(
      taskId,
      (t) => (holder === "system" ? systemProblem(t, taskId) : holderProblem(t, taskId, holder)),
      fn,
      index,
    );
  }

  /**
   * The one shape of every checked transition: `check` refuses (a Problem) or lets `fn` write, in
   * one atomic update (`index`: keep the open index exact in the same step). The callback may run
   * more than once, so the verdict is taken afresh on every run.
   */
  async #change(
    taskId: string,
    check: (t: Task | undefined) => Problem | undefined,
    fn: (t: Task) => Task,
    index = false,
  ): Promise<Task> {
    let problem: Problem | undefined;
    const after = await this.store.update<Task>(
      taskKey(taskId),
      (t) => {
        problem = check(t);
        return problem ? DECLINE : fn(t!);
      },
      this.#opts(taskId, index),
    );
    if (problem) throw problem.leaseLost ? new LeaseLostError(problem.message) : new TaskStateError(problem.message);
    return this.#saw(after!);
  }

  /**
   * Drops an open-index entry a reader found stale (`seen`: the record it read, final or absent;
   * only records written by older code, or deleted by hand, leave such entries). A final record is
   * rewritten unchanged by an update that removes the entry in the same step, or declines if the
   * task is open again. An absent record has nothing to update: the entry is removed and the key
   * read again, and the entry restored if a submit created the task meanwhile.
   */
  async #dropStale(taskId: string, seen: Task | undefined): Promise<void> {
    if (seen) {
      await this.store.update<Task>(
        taskKey(taskId),
        (t) => (t && !isOpen(t) ? t : DECLINE),
        this.#opts(taskId, true, seen),
      );
      return;
    }
    await this.store.indexRemove(OPEN_INDEX, taskId);
    const t = await this.get(taskId);
    if (t && isOpen(t)) await this.store.indexAdd(OPEN_INDEX, taskId);
  }
}

/** Who acts on a claimed task: the lease token from `claim`, and the agent id. */
export interface Holder {
  agentId: string;
  token?: string;
}

const unassigned = { assignedTo: null, claimedAt: null, leaseToken: null, leaseExpiresAt: null } as const;

function isExpired(t: Task, at: number): boolean {
  if (t.state !== "assigned" && t.state !== "running") return false;
  const expires = t.leaseExpiresAt ?? (t.claimedAt !== null ? t.claimedAt + (claimTtlMs(t) ?? Infinity) : Infinity);
  return expires <= at;
}

interface Problem {
  message: string;
  /** The caller held a lease that is no longer current: someone else's work stands. */
  leaseLost: boolean;
}

function systemProblem(t: Task | undefined, taskId: string): Problem | undefined {
  if (!t) return { message: `task ${taskId} does not exist`, leaseLost: false };
  if (FINAL_STATES.has(t.state)) return { message: `task ${taskId} is already ${t.state}`, leaseLost: false };
  return undefined;
}

function retryProblem(t: Task | undefined, taskId: string): Problem | undefined {
  if (!t) return { message: `task ${taskId} does not exist`, leaseLost: false };
  if (t.state !== "failed" && t.state !== "cancelled")
    return { message: `task ${taskId} is ${t.state}; only failed or cancelled tasks can be retried`, leaseLost: false };
  return undefined;
}

function leaseProblem(t: Task | undefined, taskId: string, token: string): Problem | undefined {
  if (!t) return { message: `task ${taskId} does not exist`, leaseLost: false };
  if ((t.state !== "assigned" && t.state !== "running") || t.leaseToken !== token) {
    const holder = t.assignedTo ? ` by ${t.assignedTo.slice(0, 12)}` : "";
    return {
      message: `lease lost on task ${taskId}: it is now ${t.state}${holder} under another lease`,
      leaseLost: true,
    };
  }
  return undefined;
}

function holderProblem(t: Task | undefined, taskId: string, holder: Holder): Problem | undefined {
  if (holder.token !== undefined) return leaseProblem(t, taskId, holder.token);
  if (!t) return { message: `task ${taskId} does not exist`, leaseLost: false };
  if ((t.state !== "assigned" && t.state !== "running") || t.assignedTo !== holder.agentId) {
    const who = t.assignedTo ? `, assigned to ${t.assignedTo.slice(0, 12)}` : "";
    return { message: `task ${taskId} is ${t.state}${who}; only its assignee may do that`, leaseLost: false };
  }
  if (t.leaseToken) return { message: `task ${taskId} is held under a lease; present its token`, leaseLost: false };
  return undefined;
}

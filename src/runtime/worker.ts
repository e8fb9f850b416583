/**
 * The worker side of an agent with `onTask`: claims the best visible tasks up to its concurrency
 * (one call for all free slots), runs the handler, renews the lease at half its length while the
 * handler runs, and reports the result (taking the next tasks in the same step of the store) or
 * fails the attempt (the task manager retries while `max_retries` allows). A lost lease aborts the
 * handler's signal and nothing is reported: the new holder's work stands. A task's
 * `constraints.timeout_sec` aborts the handler and fails the attempt once that long has passed.
 * On drain it stops claiming, lets running handlers finish within the grace period, then aborts
 * the rest and gives their tasks back to pending.
 *
 * Exactly once, honestly: a result is recorded at most once, but a handler may run again after a
 * lost lease (a store outage longer than the lease), so `ctx.attempt` and `ctx.idempotencyKey`
 * let handlers make their side effects idempotent.
 */
import type { Agent, TaskContext } from "../core/agent.ts";
import { LeaseLostError, StoreClosedError, StoreError } from "../core/errors.ts";
import { fairTurn } from "../core/fair-turn.ts";
import { Message, type MessageInit } from "../core/message.ts";
import type { Holder, Lease, Scope, TaskManager } from "../coordination/task-manager.ts";
import { type Logger, logger } from "../observability/log.ts";
import type { LeaseRegistry } from "./leases.ts";
import { TaskTimings } from "./task-timings.ts";

export interface WorkerOptions {
  /** Tasks run at once (default 1). */
  concurrency?: number;
  /**
   * Where lease renewals, timeouts and the drain's grace period are timed (default: the global
   * timers; tests pass a fake clock's).
   */
  timers?: Timers;
}

/** The timer functions the worker uses, so that a test can move time by hand. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

const GLOBAL_TIMERS: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (h) => clearInterval(h as ReturnType<typeof setInterval>),
};

export interface WorkerStats {
  claimed: number;
  completed: number;
  failed: number;
  retried: number;
  timedOut: number;
  leasesRenewed: number;
  leasesLost: number;
  released: number;
}

export interface WorkerIo {
  send(m: Message): Promise<void>;
  /** Wakes the decide loop (a slot freed with nothing claimed for it). */
  wake(): void;
  /** What the agent may take now: its pools and capabilities. */
  scope(): Scope;
  /** The agent's leases, shared with its decisions (so it can delegate a task it works on). */
  leases: LeaseRegistry;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

interface Running {
  lease: Lease;
  abort: AbortController;
  done: Promise<void>;
  /** Set once the outcome is being recorded, or the lease was lost or handed back (then it must not be reported). */
  settled: boolean;
  /** Set when the lease was lost or handed back: renewing stops. */
  leaseGone: boolean;
}

/** Retry delays for recording an outcome while the store is unreachable (ms). */
const RECORD_RETRY_MIN_MS = 100;
const RECORD_RETRY_MAX_MS = 2000;

export class TaskWorker {
  readonly running = new Map<string, Running>();
  readonly stats: WorkerStats = {
    claimed: 0,
    completed: 0,
    failed: 0,
    retried: 0,
    timedOut: 0,
    leasesRenewed: 0,
    leasesLost: 0,
    released: 0,
  };
  /** Queue waits and durations by capability set, for /metrics (runtime/metrics.ts). */
  readonly timings = new TaskTimings();
  readonly concurrency: number;
  readonly #timers: Timers;
  #draining = false;
  /** Set when drain is over: outcomes still unrecorded are left to lease expiry. */
  #stopped = false;
  /** A claim call is under way: another would only race it for the same slots. */
  #filling = false;
  readonly #log: Logger;

  constructor(
    readonly agent: Agent & { onTask: NonNullable<Agent["onTask"]> },
    readonly tasks: TaskManager,
    private readonly io: WorkerIo,
    options: WorkerOptions = {},
  ) {
    this.concurrency = Math.max(1, options.concurrency ?? 1);
    this.#timers = options.timers ?? GLOBAL_TIMERS;
    this.#log = logger("worker").child({ agent: agent.id.slice(0, 12) });
  }

  get capacity(): number {
    return this.#draining ? 0 : this.concurrency - this.running.size;
  }

  /** Claims the best visible tasks for every free slot, in one call, and starts them. */
  async fill(): Promise<void> {
    if (this.capacity <= 0 || this.#filling) return;
    this.#filling = true;
    let leases: Lease[];
    try {
      leases = await this.tasks.claimNext(this.agent.id, this.io.scope(), this.capacity);
    } catch (err) {
      this.#log.warn("claim failed", { err });
      return; // the store is struggling; try again on the next pass
    } finally {
      this.#filling = false;
    }
    this.#startAll(leases);
  }

  #startAll(leases: readonly Lease[]): void {
    for (const lease of leases) {
      if (this.capacity <= 0) {
        // drain began while claiming: hand it straight back
        this.tasks.release(lease.taskId, this.#holder(lease)).catch(() => {});
        continue;
      }
      this.stats.claimed++;
      this.timings.claimed(lease.task);
      if (this.#log.enabled("debug"))
        this.#log.debug("claimed task", { task: lease.taskId, attempt: lease.task.attempts });
      this.#start(lease);
    }
  }

  #holder(lease: Lease): Holder & { token: string } {
    return { agentId: this.agent.id, token: lease.token };
  }

  #start(lease: Lease): void {
    const abort = new AbortController();
    const r: Running = { lease, abort, settled: false, leaseGone: false, done: Promise.resolve() };
    const holder = this.#holder(lease);
    const task = lease.task;
    const ttl = lease.expiresAt !== null ? lease.expiresAt - task.claimedAt! : undefined;
    const renew = async () => {
      if (r.leaseGone) return;
      try {
        await this.tasks.renew(lease.taskId, lease.token);
        this.stats.leasesRenewed++;
      } catch (err) {
        if (!(err instanceof LeaseLostError)) {
          return void this.#log.warn("lease renewal failed; will retry", { task: lease.taskId, err });
        }
        if (r.leaseGone) return;
        r.leaseGone = true;
        if (r.settled) return; // recording the outcome, which meets the lost lease itself
        r.settled = true;
        this.stats.leasesLost++;
        this.#log.warn("lease lost; abandoning task", { task: lease.taskId });
        abort.abort(err);
      }
    };
    const timers = this.#timers;
    const renewTimer = ttl !== undefined ? timers.setInterval(renew, Math.max(50, ttl / 2)) : undefined;
    const timeoutSec = task.constraints.timeout_sec;
    let timedOut = false;
    const timeoutTimer =
      typeof timeoutSec === "number"
        ? timers.setTimeout(() => {
            timedOut = true;
            abort.abort(new Error(`timed out after ${timeoutSec} s`));
          }, timeoutSec * 1000)
        : undefined;
    const send = (m: Message | MessageInit) => this.io.send(m instanceof Message ? m : new Message(m));
    const ctx: TaskContext = {
      agentId: this.agent.id,
      task,
      signal: abort.signal,
      attempt: task.attempts,
      idempotencyKey: task.id,
      attemptKey: `${task.id}#${task.attempts}`,
      renew,
      progress: async (value) => void (await this.tasks.progress(lease.taskId, value, holder)),
      send,
    };
    const done = (wake = true) => {
      if (renewTimer !== undefined) timers.clearInterval(renewTimer);
      if (timeoutTimer !== undefined) timers.clearTimeout(timeoutTimer);
      if (this.running.get(lease.taskId) !== r) return;
      this.running.delete(lease.taskId);
      this.io.leases.delete(lease.taskId);
      if (wake) this.io.wake();
    };
    this.io.leases.set(lease);
    r.done = (async () => {
      // On a synchronous store this chain never leaves the microtask queue: let timers run first.
      const turn = fairTurn();
      if (turn) await turn;
      if (r.settled) return; // drained or lost meanwhile: the drain (or the new holder) has it
      const handled = (async (): Promise<Outcome> => {
        try {
          return { ok: true, value: await this.agent.onTask(task, ctx) };
        } catch (error) {
          return { ok: false, error };
        }
      })();
      // A timeout settles the attempt even if the handler ignores its signal and keeps running.
      const outcome =
        timeoutTimer === undefined
          ? await handled
          : await Promise.race([
              handled,
              new Promise<Outcome>((resolve) => {
                abort.signal.addEventListener("abort", () => {
                  if (timedOut) resolve({ ok: false, error: abort.signal.reason });
                });
              }),
            ]);
      if (r.settled) return;
      r.settled = true;
      if (timedOut) this.stats.timedOut++;
      // The renew timer keeps running while the outcome is recorded: the lease stays ours while the store is down.
      const next = await this.#record(lease, holder, outcome);
      // The decide loop is woken only for a slot the report did not refill (WorkerIo.wake).
      done(false);
      this.#startAll(next);
      if (this.capacity > 0) this.io.wake();
    })().finally(() => done());
    this.running.set(lease.taskId, r);
  }

  /**
   * Reports the handler's result (claiming the next tasks for the slots that are free then) or
   * fails the attempt. While the store is unreachable it keeps trying (the handler's work is
   * done, and the lease is still ours until someone takes it over), until the lease is lost or
   * the worker has drained; only then is the task left to lease expiry.
   */
  async #record(lease: Lease, holder: Holder & { token: string }, outcome: Outcome): Promise<Lease[]> {
    for (let delay = RECORD_RETRY_MIN_MS, tries = 1; ; delay = Math.min(delay * 2, RECORD_RETRY_MAX_MS), tries++) {
      try {
        let next: Lease[] = [];
        if (outcome.ok) {
          // This task's slot counts as free: the next tasks start as soon as it is recorded.
          const free = this.#draining ? 0 : this.capacity + 1;
          // Together: the other slots' reports of this turn share the store's step (one SQLite commit).
          const done = await this.tasks.reportAndClaim(
            lease.taskId,
            outcome.value ?? null,
            holder,
            { scope: this.io.scope(), max: free },
            { together: true },
          );
          next = done.next;
          this.stats.completed++;
          const ms = this.timings.finished(lease.task, done.task, "completed");
          this.#log.info("task completed", { task: lease.taskId, attempt: lease.task.attempts, duration_ms: ms });
        } else {
          const message = (outcome.error as Error)?.message ?? String(outcome.error);
          const after = await this.tasks.fail(lease.taskId, message, holder);
          const retry = after.state === "pending";
          retry ? this.stats.retried++ : this.stats.failed++;
          const ms = this.timings.finished(lease.task, after, retry ? "retried" : "failed");
          this.#log.info(retry ? "task attempt failed; will retry" : "task failed", {
            task: lease.taskId,
            attempt: lease.task.attempts,
            duration_ms: ms,
            err: message,
          });
        }
        if (tries > 1)
          this.#log.info("recorded the task's outcome after the store came back", { task: lease.taskId, tries });
        return next;
      } catch (err) {
        if (err instanceof LeaseLostError) {
          this.stats.leasesLost++;
          this.#log.warn("lease lost before the outcome was recorded; the new holder's work stands", {
            task: lease.taskId,
          });
          return [];
        }
        // A closed store does not come back: no retry waits for it.
        if (!(err instanceof StoreError) || err instanceof StoreClosedError || this.#stopped) {
          this.#log.error("could not record the task's outcome; its lease will expire and it will be retried", {
            task: lease.taskId,
            err,
          });
          return [];
        }
        if (tries === 1) {
          this.#log.warn("could not record the task's outcome; retrying until the store answers", {
            task: lease.taskId,
            err,
          });
        }
        await Bun.sleep(delay);
      }
    }
  }

  /**
   * Stops claiming; waits up to `graceMs` for running handlers; aborts the rest and releases their
   * leases back to pending. Resolves with how many finished and how many were handed back.
   */
  async drain(graceMs: number): Promise<{ finished: number; released: number }> {
    this.#draining = true;
    const before = this.running.size;
    if (before === 0) {
      this.#stopped = true;
      return { finished: 0, released: 0 };
    }
    let timer: unknown;
    await Promise.race([
      Promise.allSettled([...this.running.values()].map((r) => r.done)),
      new Promise<void>((r) => {
        timer = this.#timers.setTimeout(r, graceMs);
      }),
    ]);
    this.#timers.clearTimeout(timer);
    this.#stopped = true;
    const left = [...this.running.values()].filter((r) => !r.settled);
    await Promise.all(
      left.map(async (r) => {
        r.settled = true;
        r.leaseGone = true;
        r.abort.abort(new Error("worker shutting down"));
        try {
          await this.tasks.release(r.lease.taskId, this.#holder(r.lease));
          this.stats.released++;
        } catch (err) {
          this.#log.warn("could not hand a task back; its lease will expire instead", { task: r.lease.taskId, err });
        }
      }),
    );
    return { finished: before - left.length, released: left.length };
  }
}

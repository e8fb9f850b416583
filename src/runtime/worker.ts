/**
 * The worker side of an agent with `onTask`: claims visible tasks up to its concurrency, runs the
 * handler, renews the lease at half its length while the handler runs, and reports the result or
 * fails the attempt (the task manager retries while `max_retries` allows). A lost lease aborts the
 * handler's signal and nothing is reported: the new holder's work stands. On drain it stops
 * claiming, lets running handlers finish within the grace period, then aborts the rest and gives
 * their tasks back to pending.
 */
import type { Agent, TaskContext } from "../core/agent.ts";
import { LeaseLostError, StoreError } from "../core/errors.ts";
import { Message, type MessageInit } from "../core/message.ts";
import type { Task } from "../core/task.ts";
import type { Lease, TaskManager } from "../coordination/task-manager.ts";
import { logger, type Logger } from "../observability/log.ts";

export interface WorkerOptions {
  /** Tasks run at once (default 1). */
  concurrency?: number;
}

export interface WorkerStats {
  claimed: number;
  completed: number;
  failed: number;
  retried: number;
  leasesRenewed: number;
  leasesLost: number;
  released: number;
}

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

/** How many of the oldest visible tasks an agent picks among, to spread concurrent claimers (in this process and others). */
const SPREAD = 256;

export class TaskWorker {
  readonly running = new Map<string, Running>();
  readonly stats: WorkerStats = {
    claimed: 0,
    completed: 0,
    failed: 0,
    retried: 0,
    leasesRenewed: 0,
    leasesLost: 0,
    released: 0,
  };
  readonly concurrency: number;
  #draining = false;
  /** Set when drain is over: outcomes still unrecorded are left to lease expiry. */
  #stopped = false;
  readonly #log: Logger;

  constructor(
    readonly agent: Agent & { onTask: NonNullable<Agent["onTask"]> },
    readonly tasks: TaskManager,
    private readonly io: { send(m: Message): Promise<void>; wake(): void },
    options: WorkerOptions = {},
  ) {
    this.concurrency = Math.max(1, options.concurrency ?? 1);
    this.#log = logger("worker").child({ agent: agent.id.slice(0, 12) });
  }

  get capacity(): number {
    return this.#draining ? 0 : this.concurrency - this.running.size;
  }

  /** Claims from `visible` (pending tasks this agent may take) until full. */
  async fill(visible: readonly Task[]): Promise<void> {
    if (this.capacity <= 0) return;
    const candidates: Task[] = [];
    const want = Math.max(SPREAD, this.concurrency * 8);
    for (const t of visible) {
      if (candidates.length >= want) break;
      if (!this.running.has(t.id)) candidates.push(t);
    }
    shuffle(candidates);
    let lost = 0;
    for (const t of candidates) {
      if (this.capacity <= 0) break;
      let lease: Lease | null;
      try {
        lease = await this.tasks.claim(t.id, this.agent.id);
      } catch (err) {
        this.#log.warn("claim failed", { task: t.id, err });
        return; // the store is struggling; try again on the next pass
      }
      if (!lease) {
        lost++;
        continue;
      }
      if (this.capacity <= 0) {
        // drain began while claiming: hand it straight back
        await this.tasks.release(lease.taskId, { agentId: this.agent.id, token: lease.token }).catch(() => {});
        break;
      }
      this.stats.claimed++;
      this.#log.debug("claimed task", { task: lease.taskId, attempt: lease.task.attempts });
      this.#start(lease);
    }
    // Others won every task we tried while we still have room: look again now rather than at the
    // next poll (a task manager with a pending view has learnt from the lost claims).
    if (lost > 0 && lost === candidates.length && this.capacity > 0) this.io.wake();
  }

  #start(lease: Lease): void {
    const abort = new AbortController();
    const r: Running = { lease, abort, settled: false, leaseGone: false, done: Promise.resolve() };
    const holder = { agentId: this.agent.id, token: lease.token };
    const ttl = lease.expiresAt !== null ? lease.expiresAt - lease.task.claimedAt! : undefined;
    const renew = async () => {
      if (r.leaseGone) return;
      try {
        await this.tasks.renew(lease.taskId, lease.token);
        this.stats.leasesRenewed++;
      } catch (err) {
        if (!(err instanceof LeaseLostError))
          return void this.#log.warn("lease renewal failed; will retry", { task: lease.taskId, err });
        if (r.leaseGone) return;
        r.leaseGone = true;
        if (r.settled) return; // recording the outcome, which meets the lost lease itself
        r.settled = true;
        this.stats.leasesLost++;
        this.#log.warn("lease lost; abandoning task", { task: lease.taskId });
        abort.abort(err);
      }
    };
    const timer = ttl !== undefined ? setInterval(renew, Math.max(50, ttl / 2)) : undefined;
    const send = (m: Message | MessageInit) => this.io.send(m instanceof Message ? m : new Message(m));
    const ctx: TaskContext = {
      agentId: this.agent.id,
      task: lease.task,
      signal: abort.signal,
      renew,
      progress: async (value) => void (await this.tasks.progress(lease.taskId, value, holder)),
      send,
    };
    r.done = (async () => {
      let outcome: { ok: true; value: unknown } | { ok: false; error: unknown };
      try {
        outcome = { ok: true, value: await this.agent.onTask(lease.task, ctx) };
      } catch (error) {
        outcome = { ok: false, error };
      }
      if (r.settled) return;
      r.settled = true;
      // The renew timer keeps running while the outcome is recorded: the lease stays ours while the store is down.
      await this.#record(lease, holder, outcome);
    })().finally(() => {
      clearInterval(timer);
      this.running.delete(lease.taskId);
      this.io.wake();
    });
    this.running.set(lease.taskId, r);
  }

  /**
   * Reports the handler's result or fails the attempt. While the store is unreachable it keeps
   * trying (the handler's work is done, and the lease is still ours until someone takes it over),
   * until the lease is lost or the worker has drained; only then is the task left to lease expiry.
   */
  async #record(
    lease: Lease,
    holder: { agentId: string; token: string },
    outcome: { ok: true; value: unknown } | { ok: false; error: unknown },
  ): Promise<void> {
    for (let delay = RECORD_RETRY_MIN_MS, tries = 1; ; delay = Math.min(delay * 2, RECORD_RETRY_MAX_MS), tries++) {
      try {
        if (outcome.ok) {
          await this.tasks.report(lease.taskId, outcome.value ?? null, holder);
          this.stats.completed++;
          this.#log.debug("completed task", { task: lease.taskId });
        } else {
          const message = (outcome.error as Error)?.message ?? String(outcome.error);
          const after = await this.tasks.fail(lease.taskId, message, holder);
          after.state === "pending" ? this.stats.retried++ : this.stats.failed++;
          this.#log.info(after.state === "pending" ? "task attempt failed; will retry" : "task failed", {
            task: lease.taskId,
            attempt: after.attempts,
            error: message,
          });
        }
        if (tries > 1)
          this.#log.info("recorded the task's outcome after the store came back", { task: lease.taskId, tries });
        return;
      } catch (err) {
        if (err instanceof LeaseLostError) {
          this.stats.leasesLost++;
          return void this.#log.warn("lease lost before the outcome was recorded; the new holder's work stands", {
            task: lease.taskId,
          });
        }
        if (!(err instanceof StoreError) || this.#stopped) {
          return void this.#log.error(
            "could not record the task's outcome; its lease will expire and it will be retried",
            { task: lease.taskId, err },
          );
        }
        if (tries === 1)
          this.#log.warn("could not record the task's outcome; retrying until the store answers", {
            task: lease.taskId,
            err,
          });
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
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.allSettled([...this.running.values()].map((r) => r.done)),
      new Promise((r) => (timer = setTimeout(r, graceMs))),
    ]);
    clearTimeout(timer);
    this.#stopped = true;
    const left = [...this.running.values()].filter((r) => !r.settled);
    await Promise.all(
      left.map(async (r) => {
        r.settled = true;
        r.leaseGone = true;
        r.abort.abort(new Error("worker shutting down"));
        try {
          await this.tasks.release(r.lease.taskId, { agentId: this.agent.id, token: r.lease.token });
          this.stats.released++;
        } catch (err) {
          this.#log.warn("could not hand a task back; its lease will expire instead", { task: r.lease.taskId, err });
        }
      }),
    );
    return { finished: before - left.length, released: left.length };
  }
}

function shuffle<T>(a: T[]): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
}

/**
 * The task queue over any Store (task-queue.ts), for backends without a native one: the file
 * store, and stores users write against the Store contract. Every change is one `store.update` of
 * the record, which keeps the index set `tasks:open` (every task not finished) exact in the same
 * atomic step; finding work reads the open records, so its cost follows open work, not history.
 * Claims are exact because the update takes a task only while its record says it is pending.
 *
 * Slower than the native queues by design: each claim pass reads every open record (concurrent
 * callers in this process share one read), and listing finished tasks (by age, or since a time)
 * reads every record. One
 * weakness the Store contract cannot close: `remove` re-reads a finished record and then deletes
 * it, so an operator's `retry` of that very task in the same instant could be deleted with it.
 * A record that does not parse is passed by in claims and scans, and named once in the log.
 */
import type { FinalState, Task, TaskState } from "../core/task.ts";
import { ABSENT, DECLINE, getMany, type Store, type UpdateOptions } from "./store.ts";
import {
  asTask,
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
  passDamaged,
  type TaskQueue,
  type Transition,
  taskKey,
  type Visibility,
} from "./task-queue.ts";

const OPEN_INDEX = "tasks:open";

export class GenericTaskQueue implements TaskQueue {
  /** Tasks being claimed in this process, which other claimers here skip. */
  readonly #claiming = new Set<string>();
  #reading: Promise<Task[]> | undefined;

  constructor(readonly store: Store) {}

  #index(id: string): UpdateOptions<Task>["index"] {
    return { name: OPEN_INDEX, member: id, keep: (t) => !isFinished(t) };
  }

  get(id: string): Promise<Task | undefined> {
    return this.store.get<Task>(taskKey(id));
  }

  getMany(ids: readonly string[]): Promise<(Task | undefined)[]> {
    return getMany<Task>(this.store, ids.map(taskKey));
  }

  async submit(tasks: readonly Task[]): Promise<boolean[]> {
    const created: boolean[] = [];
    for (const t of tasks) {
      let wrote = false;
      await this.store.update<Task>(
        taskKey(t.id),
        (cur) => {
          wrote = cur === undefined;
          return wrote ? t : DECLINE;
        },
        { expected: ABSENT, index: this.#index(t.id) },
      );
      created.push(wrote);
    }
    this.#reading = undefined;
    return created;
  }

  async claim(id: string, claim: Claim, token: string): Promise<{ task: Task | null; current: Task | undefined }> {
    let won: Task | null = null;
    const current = await this.store.update<Task>(taskKey(id), (t) => {
      won = claimable(t, claim.now) ? claimed(t, claim, token) : null;
      return won ?? DECLINE;
    });
    return { task: won, current };
  }

  async claimNext(claim: ClaimNext): Promise<Task[]> {
    const out: Task[] = [];
    if (claim.tokens.length === 0) return out;
    for (const t of await this.#due(claim.visibility, claim.now)) {
      if (out.length >= claim.tokens.length) break;
      if (this.#claiming.has(t.id)) continue;
      this.#claiming.add(t.id);
      try {
        const { task } = await this.claim(t.id, claim, claim.tokens[out.length]!);
        if (task) out.push(task);
      } finally {
        this.#claiming.delete(t.id);
      }
    }
    return out;
  }

  async transition(id: string, expect: Expect, next: Task, _now: number, then?: ClaimNext): Promise<Transition> {
    let ok = false;
    const current = await this.store.update<Task>(
      taskKey(id),
      (t) => {
        ok = expectHolds(t, expect);
        return ok ? next : DECLINE;
      },
      { expected: "record" in expect ? expect.record : undefined, index: this.#index(id) },
    );
    if (!ok || !current) return { ok: false, current };
    this.#reading = undefined;
    return { ok: true, task: current, next: then ? await this.claimNext(then) : [] };
  }

  async pending(visibility: Visibility, now: number, limit: number): Promise<Task[]> {
    return (await this.#due(visibility, now)).slice(0, limit);
  }

  async expired(now: number, limit: number): Promise<Task[]> {
    return (await this.#openRecords())
      .filter((t) => (t.state === "assigned" || t.state === "running") && t.leaseExpiresAt !== null)
      .filter((t) => (t.leaseExpiresAt ?? Infinity) <= now)
      .sort((a, b) => a.leaseExpiresAt! - b.leaseExpiresAt!)
      .slice(0, limit);
  }

  open(): Promise<Task[]> {
    return this.#openRecords();
  }

  async finished(state: FinalState, before: number, limit: number): Promise<Task[]> {
    return (await this.#all())
      .filter((t) => t.state === state && t.updatedAt < before)
      .sort((a, b) => a.updatedAt - b.updatedAt)
      .slice(0, limit);
  }

  async finishedSince(since: number, limit: number): Promise<FinishedEntry[]> {
    return (await this.#all())
      .filter((t) => isFinished(t) && t.updatedAt >= since)
      .map((t) => ({ id: t.id, state: t.state as FinalState, updatedAt: t.updatedAt }))
      .sort(byFinish)
      .slice(0, limit);
  }

  async remove(ids: readonly string[]): Promise<number> {
    let n = 0;
    for (const id of ids) {
      const t = await this.get(id);
      if (t && isFinished(t) && (await this.store.delete(taskKey(id)))) n++;
    }
    return n;
  }

  async counts(): Promise<Record<TaskState, number>> {
    const counts = emptyCounts();
    for (const t of await this.#all()) counts[t.state]++;
    return counts;
  }

  /** The due pending tasks the visibility allows, best first. */
  async #due(visibility: Visibility, now: number): Promise<Task[]> {
    return (await this.#openRecords())
      .filter((t) => claimable(t, now) && canSee(visibility, t.poolId, t.requiredCapabilities))
      .sort(byRun);
  }

  /** The open records; concurrent callers share one read of the index and the records. */
  #openRecords(): Promise<Task[]> {
    if (!this.#reading) {
      const read = (async () => {
        const records = await this.#records(await this.store.indexMembers(OPEN_INDEX));
        return records.filter((t) => !isFinished(t));
      })().finally(() => {
        if (this.#reading === read) this.#reading = undefined;
      });
      this.#reading = read;
    }
    return this.#reading;
  }

  async #all(): Promise<Task[]> {
    const keys = await this.store.list("task:");
    return this.#records(keys.map((k) => k.slice("task:".length)));
  }

  /**
   * The records of `ids` that exist. One that does not parse, or is no task record, is passed by
   * (task-queue.ts passDamaged); the first kind is found by reading them one by one, which only a
   * damaged record costs.
   */
  async #records(ids: readonly string[]): Promise<Task[]> {
    const where = this.store.description;
    let values: unknown[];
    try {
      values = await this.getMany(ids);
    } catch (err) {
      if (!passDamaged(err, where)) throw err;
      const one = (id: string) => this.get(id).catch((e) => (passDamaged(e, where) ? undefined : Promise.reject(e)));
      values = [];
      for (let i = 0; i < ids.length; i += 100) values.push(...(await Promise.all(ids.slice(i, i + 100).map(one))));
    }
    const out: Task[] = [];
    values.forEach((v, i) => {
      if (v === undefined) return;
      try {
        out.push(asTask(taskKey(ids[i]!), v));
      } catch (err) {
        if (!passDamaged(err, where)) throw err;
      }
    });
    return out;
  }
}

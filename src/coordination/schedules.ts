/**
 * Repeating tasks: a schedule (a cron expression in a time zone, or an interval) submits a task
 * from its template each time it is due, exactly once per due time however many processes run
 * the schedules at once (every `converge run` on a shared store may).
 *
 * Store layout (JSON, camelCase):
 * - `schedule:<id>` → Schedule `{ id, cron, timezone, everyMs, template, catchUp, nextRunAt,
 *   lastRunAt, lastTaskId, createdAt, updatedAt }` (cron and timezone, or everyMs; the others null);
 * - the index set `schedules` holds every schedule id, so that listing and each runner pass cost
 *   follows the number of schedules, never the history of the tasks they submitted;
 * - the channel `schedules` is notified on add and remove, so that sleeping runners re-read.
 *
 * The task for due time T has the id `<schedule id>@<T as ISO 8601 UTC>` (schedule ids cannot
 * hold `@`), e.g. `nightly@2026-03-01T08:00:00.000Z`: a handler can read the due time from it.
 *
 * Exactly once, and never zero times. A runner that finds a schedule due writes twice, in this
 * order: (1) it submits the due tasks under those deterministic ids, then (2) it advances the
 * schedule (`nextRunAt`, `lastRunAt`, `lastTaskId`) with the store's atomic `update`, a compare
 * and set against the record it read (one Lua script on Redis, one BEGIN IMMEDIATE transaction on
 * SQLite). Never zero: a schedule is advanced past T only after the task for T exists, so a crash
 * between the writes, or a store error on either, leaves the schedule due and the next pass (this
 * process's or any other's) submits T again; only if no pass could run before a later due time
 * does T count as missed, as after any downtime (below). Never twice: T's task can only ever have
 * one id, and the store creates a task id at most once (`submitMany` reports `created: false` for
 * the others), so runners racing on T, a retried pass and a pass after a crash all land on the one
 * task; of their advances exactly one compare and set wins, and a runner that reads the record
 * after it no longer sees T as due. The other order would not do: advance first, then a crash
 * before the submit, and T is lost.
 *
 * What this leans on: T's task is not removed while some runner may still submit T. Removing it
 * (retention cleaning, an operator) lets T be created again by a runner that read the schedule
 * before the advance and stalled before its submit, or by the next pass over a schedule that a
 * crash left unadvanced right after its submit. Retention removes only tasks finished longer ago
 * than its age, so either takes a stall or an outage longer than the task's run plus that age,
 * starting in the milliseconds between the two writes.
 *
 * Missed runs: the latest due time always runs, however late a runner gets to it; earlier ones a
 * runner could not submit in time (the fleet was down) are missed, and only the `catchUp` most
 * recent of them are submitted (0 by default: no backlog; at most MAX_CATCH_UP).
 */
import { ConfigError, ConvergeError, NotFoundError, StoreError } from "../core/errors.ts";
import { quoted } from "../core/text.ts";
import { newTask, type Task, type TaskInit } from "../core/task.ts";
import { logger, type Logger } from "../observability/log.ts";
import type { Clock } from "../store/clock.ts";
import { ABSENT, DECLINE, getMany, type Store } from "../store/store.ts";
import { checkTiming, localTimeZone, nextAfter, planAt, type Timing } from "./schedule-times.ts";
import { ScheduleRunner } from "./schedule-runner.ts";
import type { TaskManager } from "./task-manager.ts";

const SCHEDULE_PREFIX = "schedule:";
export const SCHEDULE_INDEX = "schedules";
/** Notified when a schedule is added or removed. */
export const SCHEDULES_CHANNEL = "schedules";
/** The most missed runs a schedule may catch up on when its runners come back. */
export const MAX_CATCH_UP = 1000;
const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** What each run's task is made of: a TaskInit without the per-run fields (id, notBefore). */
export type ScheduleTemplate = Omit<TaskInit, "id" | "notBefore">;
const TEMPLATE_KEYS = [
  "objective",
  "inputs",
  "outputs",
  "constraints",
  "evaluator",
  "poolId",
  "topic",
  "requiredCapabilities",
  "priority",
] as const;

/** A schedule as stored under `schedule:<id>`. */
export interface Schedule {
  id: string;
  cron: string | null;
  /** IANA zone the cron expression is read in; null for intervals. */
  timezone: string | null;
  everyMs: number | null;
  template: ScheduleTemplate;
  catchUp: number;
  /** The next due time (epoch ms); null once a cron expression fires no more. */
  nextRunAt: number | null;
  /** The latest due time submitted, and its task. */
  lastRunAt: number | null;
  lastTaskId: string | null;
  createdAt: number;
  updatedAt: number;
}

export interface ScheduleInit {
  /** 1 to 128 letters, digits, `.`, `_` or `-`, starting with a letter or digit. */
  id: string;
  /** A cron expression (5 fields, 6 with seconds first, 7 with years last, or @hourly, @daily...). */
  cron?: string;
  /** The zone `cron` is read in (default: this process's own, stored so every process agrees). */
  timezone?: string;
  /** Or an interval in ms (at least 1000), aligned to the Unix epoch. */
  everyMs?: number;
  template?: ScheduleTemplate;
  /** Missed runs to submit when runners come back after downtime (default 0, at most MAX_CATCH_UP). */
  catchUp?: number;
}

export interface ScheduleManagerOptions {
  /** Where time comes from (default: the task manager's clock, i.e. the store's). */
  clock?: Clock;
  /** Where the runner reports failed passes (default: the `schedules` logger). */
  log?: Logger;
}

export interface TickResult {
  /** The tasks this pass created (a due task another runner created first is not among them). */
  submitted: Task[];
  /** The earliest next due time over all schedules after this pass; null when none is due ever. */
  nextDueAt: number | null;
  /** Schedules this pass could not handle (left due, for the next pass). */
  failed: { scheduleId: string; err: unknown }[];
}

export function scheduleKey(id: string): string {
  return SCHEDULE_PREFIX + id;
}

/** The id of the task a schedule submits for due time `dueAt`. */
export function scheduledTaskId(scheduleId: string, dueAt: number): string {
  return `${scheduleId}@${new Date(dueAt).toISOString()}`;
}

function timingOf(s: Pick<Schedule, "cron" | "timezone" | "everyMs">): Timing {
  return s.everyMs !== null ? { everyMs: s.everyMs } : { cron: s.cron!, timezone: s.timezone! };
}

function checkScheduleId(id: unknown): asserts id is string {
  if (typeof id !== "string" || !ID.test(id))
    throw new ConfigError(
      `a schedule id is 1 to 128 letters, digits, ".", "_" or "-", starting with a letter or digit; got ${
        typeof id === "string" ? quoted(id) : String(id)
      }`,
    );
}

export class ScheduleManager {
  readonly store: Store;
  readonly #clock: Clock;
  readonly #runner: ScheduleRunner;

  constructor(
    readonly tasks: TaskManager,
    options: ScheduleManagerOptions = {},
  ) {
    this.store = tasks.store;
    this.#clock = options.clock ?? (() => tasks.now());
    this.#runner = new ScheduleRunner({
      tick: () => this.tick(),
      subscribe: (listener) => this.store.subscribe(SCHEDULES_CHANNEL, listener),
      clock: this.#clock,
      log: options.log ?? logger("schedules"),
    });
  }

  /** Validates and stores a new schedule; an existing id is refused (remove it first). */
  async add(init: ScheduleInit): Promise<Schedule> {
    const now = await this.#clock();
    const schedule = buildSchedule(init, now);
    let existed = false;
    await this.store.update<Schedule>(
      scheduleKey(schedule.id),
      (current) => {
        existed = current !== undefined;
        return existed ? DECLINE : schedule;
      },
      { expected: ABSENT, index: { name: SCHEDULE_INDEX, member: schedule.id, keep: () => true } },
    );
    if (existed)
      throw new ConvergeError(
        `schedule ${schedule.id} already exists; remove it first (converge schedules remove ${schedule.id})`,
      );
    await this.store.notify(SCHEDULES_CHANNEL);
    return schedule;
  }

  async get(id: string): Promise<Schedule | undefined> {
    checkScheduleId(id);
    return this.store.get<Schedule>(scheduleKey(id));
  }

  /** Every schedule, by id. */
  async list(): Promise<Schedule[]> {
    const ids = (await this.store.indexMembers(SCHEDULE_INDEX)).sort();
    const records = await getMany<Schedule>(
      this.store,
      ids.map((id) => scheduleKey(id)),
    );
    return records.filter((s): s is Schedule => s !== undefined);
  }

  /** Removes a schedule (its tasks stay); NotFoundError when there is none. */
  async remove(id: string): Promise<void> {
    checkScheduleId(id);
    // Record first: a crash before the index change leaves an id that list() skips, never a hidden record.
    const existed = await this.store.delete(scheduleKey(id));
    await this.store.indexRemove(SCHEDULE_INDEX, id);
    if (!existed) throw new NotFoundError(`schedule ${id} does not exist`);
    await this.store.notify(SCHEDULES_CHANNEL);
  }

  /**
   * One pass: submits what is due at `now` (default: the clock) for every schedule and advances
   * them (see the header for why that is exactly once). A schedule whose pass fails (the store
   * refused a write, its record is corrupt) is reported in `failed` and left due for the next pass;
   * the others go on. Throws only when the schedules cannot be listed at all.
   */
  async tick(now?: number): Promise<TickResult> {
    const at = now ?? (await this.#clock());
    const { schedules, failed } = await this.#load();
    const outcomes = await Promise.all(
      schedules.map(async (s) => {
        if (s.nextRunAt === null || s.nextRunAt > at) return { after: s, created: [] as Task[] };
        try {
          return await this.#fire(s, at);
        } catch (err) {
          failed.push({ scheduleId: s.id, err });
          return { after: s, created: [] as Task[] };
        }
      }),
    );
    let nextDueAt: number | null = null;
    for (const { after } of outcomes) {
      const n = after?.nextRunAt ?? null;
      if (n !== null && (nextDueAt === null || n < nextDueAt)) nextDueAt = n;
    }
    return { submitted: outcomes.flatMap((o) => o.created), nextDueAt, failed };
  }

  /** Every schedule record that reads as one; the others as failures (one bad record stops no other). */
  async #load(): Promise<{ schedules: Schedule[]; failed: TickResult["failed"] }> {
    const ids = await this.store.indexMembers(SCHEDULE_INDEX);
    const keys = ids.map((id) => scheduleKey(id));
    let reads: PromiseSettledResult<unknown>[];
    try {
      reads = (await getMany(this.store, keys)).map((value) => ({ status: "fulfilled", value }));
    } catch {
      reads = await Promise.allSettled(keys.map((k) => this.store.get(k)));
    }
    const schedules: Schedule[] = [];
    const failed: TickResult["failed"] = [];
    reads.forEach((r, i) => {
      const scheduleId = ids[i]!;
      if (r.status === "rejected") failed.push({ scheduleId, err: r.reason });
      else if (r.value === undefined)
        return; // removed (the index entry may outlive the record)
      else if (!isSchedule(r.value, scheduleId))
        failed.push({ scheduleId, err: new StoreError(`${scheduleKey(scheduleId)} does not hold a schedule record`) });
      else schedules.push(r.value);
    });
    return { schedules, failed };
  }

  /** Submits the due tasks, then advances the schedule if it is still the record read (see the header). */
  async #fire(s: Schedule, now: number): Promise<{ after: Schedule | undefined; created: Task[] }> {
    const { due, next } = planAt(timingOf(s), s.nextRunAt!, now, s.catchUp);
    const results = await this.tasks.submitMany(due.map((t) => ({ ...s.template, id: scheduledTaskId(s.id, t) })));
    const last = due[due.length - 1]!;
    const after = await this.store.update<Schedule>(
      scheduleKey(s.id),
      (current) =>
        current && current.createdAt === s.createdAt && current.nextRunAt === s.nextRunAt
          ? { ...current, nextRunAt: next, lastRunAt: last, lastTaskId: scheduledTaskId(s.id, last), updatedAt: now }
          : DECLINE,
      { expected: s },
    );
    return { after, created: results.filter((r) => r.created).map((r) => r.task) };
  }

  /**
   * Runs passes until `stop()`: each sleeps until the earliest next due time over every schedule
   * (at most a minute, to notice what a lost notification did not say), and a schedule added or
   * removed anywhere wakes it. Any number of processes may run it on one store.
   */
  start(): void {
    this.#runner.start();
  }

  /** Stops the runner, waiting for a pass in flight; idempotent. */
  stop(): Promise<void> {
    return this.#runner.stop();
  }
}

/** The record for `init` at `now`, or ConfigError naming what is wrong. */
function buildSchedule(init: ScheduleInit, now: number): Schedule {
  checkScheduleId(init.id);
  const hasCron = init.cron !== undefined;
  const hasEvery = init.everyMs !== undefined;
  if (hasCron === hasEvery) throw new ConfigError("a schedule needs either a cron expression or an interval");
  if (!hasCron && init.timezone !== undefined)
    throw new ConfigError("a time zone applies to cron expressions only (intervals are aligned to UTC)");
  const timing: Timing = hasCron
    ? { cron: init.cron!.trim(), timezone: init.timezone ?? localTimeZone() }
    : { everyMs: init.everyMs! };
  checkTiming(timing, now);
  const catchUp = init.catchUp ?? 0;
  if (!Number.isSafeInteger(catchUp) || catchUp < 0 || catchUp > MAX_CATCH_UP)
    throw new ConfigError(`catch-up must be a whole number from 0 to ${MAX_CATCH_UP}, got ${catchUp}`);
  const template = templateOf(init.template ?? {});
  const nextRunAt = nextAfter(timing, now);
  // The template must make a valid task (constraints, priority, ...): refused now, not at each run.
  newTask({ ...template, id: scheduledTaskId(init.id, nextRunAt ?? now) }, now);
  return {
    id: init.id,
    cron: "cron" in timing ? timing.cron : null,
    timezone: "cron" in timing ? timing.timezone : null,
    everyMs: "everyMs" in timing ? timing.everyMs : null,
    template,
    catchUp,
    nextRunAt,
    lastRunAt: null,
    lastTaskId: null,
    createdAt: now,
    updatedAt: now,
  };
}

function templateOf(t: ScheduleTemplate & { id?: unknown; notBefore?: unknown }): ScheduleTemplate {
  if (t.id !== undefined) throw new ConfigError("a schedule's template has no id: each run's task gets its own");
  if (t.notBefore !== undefined)
    throw new ConfigError("a schedule's template has no notBefore: each run's task is due at its own time");
  const out: Record<string, unknown> = {};
  for (const k of TEMPLATE_KEYS) if (t[k] !== undefined) out[k] = t[k];
  return out as ScheduleTemplate;
}

/** Whether a stored value has the shape of the schedule `id` (what a pass relies on). */
function isSchedule(v: unknown, id: string): v is Schedule {
  if (typeof v !== "object" || v === null) return false;
  const s = v as Record<string, unknown>;
  const num = (x: unknown) => typeof x === "number" && Number.isFinite(x);
  const timed =
    (typeof s.cron === "string" && typeof s.timezone === "string" && s.everyMs === null) ||
    (num(s.everyMs) && (s.everyMs as number) > 0 && s.cron === null);
  return (
    s.id === id &&
    timed &&
    (s.nextRunAt === null || num(s.nextRunAt)) &&
    Number.isSafeInteger(s.catchUp) &&
    (s.catchUp as number) >= 0 &&
    (s.catchUp as number) <= MAX_CATCH_UP &&
    typeof s.template === "object" &&
    s.template !== null &&
    num(s.createdAt)
  );
}

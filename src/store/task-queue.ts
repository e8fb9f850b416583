/**
 * The TaskQueue contract: the claim path of a backend, behind TaskManager. Every task record
 * (`task:<id>`) sits in exactly one place, decided by the record alone (`placementOf`):
 *
 * - ready, in its queue (one per routing key: pool and capability set), best first: higher
 *   `priority`, then lower `seq` (submit order);
 * - delayed, in its queue, until `notBefore` (a delayed task, or a retry's backoff);
 * - held, under a lease that ends at `leaseExpiresAt` (never, when null);
 * - finished, by final state, in order of `updatedAt` (for listing and retention).
 *
 * Each operation changes the record and its place in one atomic step of the backend (a Lua script,
 * an SQLite transaction, a synchronous block), so a claim is exact however many processes share
 * the store: a task leaves `ready` in the same step that makes it `assigned`, and only one caller
 * can take that step. TaskManager (coordination/task-manager.ts) decides what records become;
 * claims alone are computed here (`claimed`), since the backend picks the task.
 *
 * Memory, SQLite and Redis implement this natively; generic-queue.ts implements it over any Store
 * (the file store, and stores written by users), at the cost of reading open records to find work.
 * The one contract suite in test/store/task-queue-contract.ts holds them all to the same behaviour.
 */
import { CorruptRecordError } from "../core/errors.ts";
import {
  type FinalState,
  HELD_STATES,
  HOT_FIELDS,
  isFinalState,
  isTaskState,
  routeId,
  type Task,
  type TaskState,
} from "../core/task.ts";
import { quoted } from "../core/text.ts";
import { logger } from "../observability/log.ts";
import { parseRecord } from "./json.ts";

const log = logger("store.tasks");

/** Damaged records already named in this process's log, by store (bounded: one line each is the point). */
const damagedSaid = new Set<string>();

/**
 * For claims and scans: whether `err` is a record that does not parse, which the caller then
 * passes by (one damaged record must not stop every claim of its queue, nor the lease reaper).
 * Said once per record of the store `where` names and per process, at warn; any other error is the
 * caller's to throw.
 */
export function passDamaged(err: unknown, where: string): boolean {
  if (!(err instanceof CorruptRecordError)) return false;
  const said = `${where}\n${err.key}`;
  if (!damagedSaid.has(said) && damagedSaid.size < 10_000) {
    damagedSaid.add(said);
    log.warn(`${err.message}; claims and scans pass it by until then`, { store: where });
  }
  return true;
}

/**
 * A stored task value as a Task, or CorruptRecordError when it cannot be one (valid JSON that is
 * no record: null, a number, an object without a state). Claims and scans rely on its fields.
 */
export function asTask(key: string, v: unknown): Task {
  if (typeof v === "object" && v !== null && isTaskState((v as Task).state)) return v as Task;
  throw new CorruptRecordError(key, `the record ${quoted(key)} is corrupt (not a task record); repair or delete it`);
}

/** Task `id`'s stored JSON text as a Task; CorruptRecordError, naming it, when it is not one. */
export function taskOf(id: string, text: unknown): Task {
  const key = taskKey(id);
  return asTask(key, parseRecord(key, text));
}

/** Which tasks an agent may take: those of pools it belongs to (or of none), needing only capabilities it has. */
export interface Visibility {
  readonly pools: ReadonlySet<string>;
  readonly capabilities: ReadonlySet<string>;
}

/** Who claims, when, and for how long. */
export interface Claim {
  agentId: string;
  now: number;
  /** Lease length for tasks whose record sets none (`claimTtlMs`); null: such leases never expire. */
  defaultTtlMs: number | null;
  /** A lease length for this claim that overrides the task's own. */
  ttlMs?: number;
}

/** A claim of the best visible due tasks: at most `tokens.length`, one lease token each. */
export interface ClaimNext extends Claim {
  visibility: Visibility;
  tokens: readonly string[];
}

/** What must hold of the current record for a transition to apply. */
export type Expect =
  /** Held (assigned or running) under this lease token. */
  | { lease: string }
  /** Held by this agent under no token (records of callers that claimed without leases). */
  | { assignee: string }
  /** Exactly the record that was read (compare and set). */
  | { record: Task };

export type Transition = { ok: true; task: Task; next: Task[] } | { ok: false; current: Task | undefined };

/** How a transition may be run. */
export interface TransitionOptions {
  /**
   * More transitions are coming from this caller in this turn of the event loop (a busy worker's
   * slots): the backend may hold this one until the turn ends and commit them together (SQLite:
   * one transaction for all). Each still applies, or not, on its own; a transition of the same task
   * asked later in the turn without it runs first.
   */
  together?: boolean;
}

/** A task's entry in the finished index: enough to follow what finishes without reading records. */
export interface FinishedEntry {
  id: string;
  state: FinalState;
  updatedAt: number;
}

/**
 * What a claim or a transition answers: a promise, or (memory, where the step is synchronous) the
 * value itself, so that a caller on the embedded default takes no turn of the event loop per call.
 */
export type Answer<T> = T | Promise<T>;

/** `f` of the answer: at once when it is a value, after it when it is a promise. */
export function andThen<T, U>(a: Answer<T>, f: (value: T) => Answer<U>): Answer<U> {
  return a instanceof Promise ? a.then(f) : f(a);
}

export interface TaskQueue {
  /** Optional: the backend's clock when reading it costs nothing (epoch ms); else TaskManager asks the store. */
  readonly clock?: () => number;
  /** Optional: the record, synchronously, where reading it costs nothing (memory): no cache of it is needed. */
  peek?(id: string): Task | undefined;
  /** Stores each task whose id is new, placed by its record; true where it was created, false where the id existed. */
  submit(tasks: readonly Task[], now: number): Promise<boolean[]>;
  get(id: string): Promise<Task | undefined>;
  getMany(ids: readonly string[]): Promise<(Task | undefined)[]>;
  /** Claims this task if it is pending and due (`claimed`); else `task` is null and `current` is the record. */
  claim(id: string, claim: Claim, token: string): Answer<{ task: Task | null; current: Task | undefined }>;
  /** Claims the best visible due tasks, each with the next token, in claim order. */
  claimNext(claim: ClaimNext): Answer<Task[]>;
  /**
   * Replaces the record with `next` if `expect` holds of the current one, and places it anew; then,
   * with `then`, claims more in the same step (report and take the next task in one round trip).
   * `next` keeps the record's id, queue, priority and seq; `now` places it (due or delayed).
   */
  transition(
    id: string,
    expect: Expect,
    next: Task,
    now: number,
    then?: ClaimNext,
    options?: TransitionOptions,
  ): Answer<Transition>;
  /** Due pending tasks the visibility allows, best first, at most `limit`. */
  pending(visibility: Visibility, now: number, limit: number): Promise<Task[]>;
  /** Held tasks whose lease ended by `now`, soonest ended first, at most `limit`. */
  expired(now: number, limit: number): Promise<Task[]>;
  /** Every task that is not finished (pending, delayed, held). */
  open(): Promise<Task[]>;
  /** Tasks finished in `state` and last updated before `before`, oldest first, at most `limit`. */
  finished(state: FinalState, before: number, limit: number): Promise<Task[]>;
  /**
   * Entries of tasks finished in any state and last updated at or after `since`, by updatedAt then
   * id, at most `limit`: the index alone, no records (coordination/task-events.ts follows it).
   */
  finishedSince(since: number, limit: number): Promise<FinishedEntry[]>;
  /** Deletes these tasks where each is still finished; returns how many were deleted. */
  remove(ids: readonly string[]): Promise<number>;
  /** How many tasks are in each state. */
  counts(): Promise<Record<TaskState, number>>;
}

export type Placement =
  | { at: "ready"; queue: string }
  | { at: "delayed"; queue: string; until: number }
  | { at: "held"; until: number | null }
  | { at: "finished"; state: FinalState; since: number };

/** Where a record belongs at `now`. */
export function placementOf(t: Task, now: number): Placement {
  if (t.state === "pending") {
    const until = t.notBefore ?? 0;
    return until > now ? { at: "delayed", queue: t.queue, until } : { at: "ready", queue: t.queue };
  }
  if (HELD_STATES.has(t.state)) return { at: "held", until: t.leaseExpiresAt ?? null };
  return { at: "finished", state: t.state as FinalState, since: t.updatedAt };
}

/** True when `a` runs before `b`: higher priority, then submit order. */
export function runsBefore(a: Pick<Task, "priority" | "seq">, b: Pick<Task, "priority" | "seq">): boolean {
  return a.priority !== b.priority ? a.priority > b.priority : a.seq < b.seq;
}

/** The "best first" order as a comparator (for sort): `runsBefore` first. */
export function byRun(a: Pick<Task, "priority" | "seq">, b: Pick<Task, "priority" | "seq">): number {
  return runsBefore(a, b) ? -1 : runsBefore(b, a) ? 1 : 0;
}

/** Whether an agent with this visibility may take tasks of the route (pool, capabilities). */
export function canSee(v: Visibility, poolId: string | null, requiredCapabilities: readonly string[]): boolean {
  if (poolId !== null && !v.pools.has(poolId)) return false;
  for (const c of requiredCapabilities) if (!v.capabilities.has(c)) return false;
  return true;
}

/** Whether the record may be claimed now. */
export function claimable(t: Task | undefined, now: number): t is Task {
  // != null: a damaged record may hold null (valid JSON), which claims a record passes by.
  return t != null && t.state === "pending" && (t.notBefore ?? 0) <= now;
}

/** The record after a claim: assigned to the agent under the token, one attempt more. */
export function claimed(t: Task, claim: Claim, token: string): Task {
  const ttl = claim.ttlMs ?? t.claimTtlMs ?? claim.defaultTtlMs;
  return {
    ...t,
    state: "assigned",
    assignedTo: claim.agentId,
    claimedAt: claim.now,
    attempts: t.attempts + 1,
    leaseToken: token,
    leaseExpiresAt: ttl === null ? null : claim.now + ttl,
    notBefore: null,
    updatedAt: claim.now,
  };
}

/**
 * Whether `expect` holds of the current record. A compare and set compares whole records as the
 * JSON backends store them: the same object, or the same JSON text.
 */
export function expectHolds(current: Task | undefined, expect: Expect): current is Task {
  if (!current) return false;
  if ("record" in expect) {
    const r = expect.record;
    return current === r || JSON.stringify(current) === JSON.stringify(r);
  }
  if (!HELD_STATES.has(current.state)) return false;
  if ("lease" in expect) return current.leaseToken === expect.lease;
  return current.assignedTo === expect.assignee && !current.leaseToken;
}

/** The order of `finishedSince`: updatedAt, then id. */
export function byFinish(a: FinishedEntry, b: FinishedEntry): number {
  return a.updatedAt - b.updatedAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

export function isFinished(t: Task): boolean {
  return isFinalState(t.state);
}

export function emptyCounts(): Record<TaskState, number> {
  return { pending: 0, assigned: 0, running: 0, completed: 0, failed: 0, cancelled: 0 };
}

/** `task:<id>`: where every backend keeps the record. */
export const taskKey = (id: string): string => `task:${id}`;

/**
 * A record in the current layout (core/task.ts): the hot fields first, each present. Records
 * written by converge 0.1 lack some and are adopted through this when a store first meets them.
 * A record already in the layout is returned as it is (no copy).
 */
export function canonical(raw: Partial<Task> & { id: string }): Task {
  if (isCanonical(raw)) return raw as Task;
  const constraints = (raw.constraints ?? {}) as Record<string, unknown>;
  const ttl = constraints.claim_ttl_sec;
  const createdAt = raw.createdAt ?? raw.updatedAt ?? Date.now();
  const hot = {
    state: raw.state ?? "pending",
    assignedTo: raw.assignedTo ?? null,
    claimedAt: raw.claimedAt ?? null,
    attempts: raw.attempts ?? 0,
    leaseToken: raw.leaseToken ?? null,
    leaseExpiresAt: raw.leaseExpiresAt ?? null,
    notBefore: raw.notBefore ?? null,
    updatedAt: raw.updatedAt ?? createdAt,
    priority: raw.priority ?? 0,
    seq: raw.seq ?? createdAt * 1024,
    queue: raw.queue ?? routeId(raw.poolId ?? null, raw.requiredCapabilities ?? []),
    claimTtlMs: raw.claimTtlMs ?? (typeof ttl === "number" ? Math.round(ttl * 1000) : null),
  };
  const rest: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) if (!(k in hot)) rest[k] = v;
  return { ...hot, ...rest } as Task;
}

/** Whether a record already has the current layout (its first keys are HOT_FIELDS, in order). */
export function isCanonical(t: object): boolean {
  const keys = Object.keys(t);
  return HOT_FIELDS.every((f, i) => keys[i] === f);
}

/**
 * A task as persisted under `task:<id>` (JSON, camelCase). Times are epoch milliseconds from the
 * store's clock, so they mean the same thing in every process. Readers ignore fields they do not
 * know.
 *
 * Field order is part of the layout: the twelve fields a claim or a lease changes come first, in
 * the order of HOT_FIELDS, with scalar values only, so that the Redis claim script can rewrite them
 * without parsing (and re-encoding) the user's data after them. Every record is built by
 * `newTask`, and transitions copy it with `{ ...task, changes }`, which keeps the order.
 */
import { createHash, randomUUID } from "node:crypto";
import { ConfigError } from "./errors.ts";
import { quoted } from "./text.ts";
import type { Topic } from "./topic.ts";

export const TASK_STATES = ["pending", "assigned", "running", "completed", "failed", "cancelled"] as const;
export type TaskState = (typeof TASK_STATES)[number];
/** The states a task ends in, in the order they are listed everywhere. */
export const FINAL_STATE_LIST = ["completed", "failed", "cancelled"] as const;
export type FinalState = (typeof FINAL_STATE_LIST)[number];

export const FINAL_STATES: ReadonlySet<TaskState> = new Set(FINAL_STATE_LIST);

/** Whether `s` is a final state (three comparisons: this runs for every claim and report). */
export function isFinalState(s: TaskState): s is FinalState {
  return s === "completed" || s === "failed" || s === "cancelled";
}
/** States in which someone holds the task under a lease. */
export const HELD_STATES: ReadonlySet<TaskState> = new Set(["assigned", "running"]);

/** The fields claims and leases change, first in every record, in this order (see the header). */
export const HOT_FIELDS = [
  "state",
  "assignedTo",
  "claimedAt",
  "attempts",
  "leaseToken",
  "leaseExpiresAt",
  "notBefore",
  "updatedAt",
  "priority",
  "seq",
  "queue",
  "claimTtlMs",
] as const;

export interface Task {
  state: TaskState;
  assignedTo: string | null;
  claimedAt: number | null;
  attempts: number;
  /** The current lease: whoever presents this token may report, fail or renew. */
  leaseToken: string | null;
  leaseExpiresAt: number | null;
  /** Not claimable before this time (a delayed task, or a retry's backoff). */
  notBefore: number | null;
  updatedAt: number;
  /** Higher runs first among visible tasks; ties in submit order (`seq`). */
  priority: number;
  /** Submit order: increasing within a process, by the store's clock across processes. */
  seq: number;
  /** The routing key (pool and capability set) as a short hex id: the queue the task waits in. */
  queue: string;
  /** The task's own lease length (`constraints.claim_ttl_sec`), in ms; null: the claimer's default. */
  claimTtlMs: number | null;
  id: string;
  objective: string;
  inputs: Record<string, unknown>;
  outputs: Record<string, unknown>;
  /** e.g. `claim_ttl_sec`, `max_retries`, `retry_backoff_ms`, `timeout_sec`, `output_schema`. */
  constraints: Record<string, unknown>;
  evaluator: string | null;
  result: unknown;
  poolId: string | null;
  topic: Topic | null;
  requiredCapabilities: string[];
  createdAt: number;
  /** The holder's last reported progress. */
  progress?: unknown;
  /** The last failure's message. */
  error?: string | null;
}

export interface TaskInit {
  /** Default: a new UUID. 1 to 256 characters, no control characters. */
  id?: string;
  objective?: string;
  inputs?: Record<string, unknown>;
  outputs?: Record<string, unknown>;
  constraints?: Record<string, unknown>;
  evaluator?: string | null;
  poolId?: string | null;
  topic?: Topic | null;
  requiredCapabilities?: string[];
  /** An integer; higher runs first (default 0). */
  priority?: number;
  /** Epoch ms before which the task is not claimable. */
  notBefore?: number | null;
}

/** The largest |priority|: a safe integer range that every backend orders exactly. */
export const MAX_PRIORITY = 1_000_000_000;

export function newTask(init: TaskInit = {}, now = Date.now(), seq = now * 1024): Task {
  const constraints = init.constraints ?? {};
  checkConstraints(constraints);
  const id = init.id ?? randomUUID();
  checkTaskId(id);
  const priority = init.priority ?? 0;
  if (!Number.isSafeInteger(priority) || Math.abs(priority) > MAX_PRIORITY) {
    throw new ConfigError(`task priority must be an integer from -${MAX_PRIORITY} to ${MAX_PRIORITY}, got ${priority}`);
  }
  const notBefore = init.notBefore ?? null;
  if (notBefore !== null && !(Number.isFinite(notBefore) && notBefore >= 0)) {
    throw new ConfigError(`task notBefore must be epoch milliseconds, got ${notBefore}`);
  }
  const poolId = init.poolId ?? null;
  const requiredCapabilities = init.requiredCapabilities ?? [];
  const ttl = constraints.claim_ttl_sec;
  return {
    state: "pending",
    assignedTo: null,
    claimedAt: null,
    attempts: 0,
    leaseToken: null,
    leaseExpiresAt: null,
    notBefore: notBefore === null ? null : Math.round(notBefore),
    updatedAt: now,
    priority,
    seq,
    queue: routeId(poolId, requiredCapabilities),
    claimTtlMs: typeof ttl === "number" ? Math.round(ttl * 1000) : null,
    id,
    objective: init.objective ?? "",
    inputs: init.inputs ?? {},
    outputs: init.outputs ?? {},
    constraints,
    evaluator: init.evaluator ?? null,
    result: null,
    poolId,
    topic: init.topic ?? null,
    requiredCapabilities,
    createdAt: now,
  };
}

/** The longest task id accepted. */
export const MAX_TASK_ID = 256;
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const ID_UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

/**
 * A task id is 1 to MAX_TASK_ID characters, none of them a control character or a line break:
 * ids end up in store keys, log lines and tables, where a newline would forge a second line.
 */
export function checkTaskId(id: unknown): asserts id is string {
  if (typeof id !== "string" || id === "") throw new ConfigError("a task id must be a non-empty string");
  if (id.length > MAX_TASK_ID) {
    throw new ConfigError(`a task id may be at most ${MAX_TASK_ID} characters, got ${id.length}: ${quoted(id, 40)}`);
  }
  if (ID_UNSAFE.test(id)) throw new ConfigError(`a task id must not contain control characters, got ${quoted(id)}`);
}

/**
 * The queue a task waits in: one per routing key (pool and set of required capabilities), as 16
 * hex digits of a SHA-256, so that store scripts can use it in key names without escaping.
 */
export function routeId(poolId: string | null, requiredCapabilities: readonly string[]): string {
  const caps = requiredCapabilities.length === 0 ? requiredCapabilities : [...new Set(requiredCapabilities)].sort();
  const key = JSON.stringify([poolId, caps]);
  let id = routeIds.get(key);
  if (id === undefined) {
    id = createHash("sha256").update(key).digest("hex").slice(0, 16);
    // Routing keys are few; the bound only keeps a flood of distinct ones from growing the cache.
    if (routeIds.size >= 10_000) routeIds.clear();
    routeIds.set(key, id);
  }
  return id;
}
const routeIds = new Map<string, string>();

/** The constraints converge itself acts on must make sense; others are the agents' business. */
function checkConstraints(c: Record<string, unknown>): void {
  const bad = (what: string) =>
    new ConfigError(`task constraint ${what}, got ${JSON.stringify(c[what.split(" ")[0]!])}`);
  if (c.claim_ttl_sec !== undefined && !(typeof c.claim_ttl_sec === "number" && c.claim_ttl_sec > 0))
    throw bad("claim_ttl_sec must be a number of seconds greater than 0");
  if (c.max_retries !== undefined && !(Number.isInteger(c.max_retries) && (c.max_retries as number) >= 0))
    throw bad("max_retries must be a whole number of at least 0");
  if (c.retry_backoff_ms !== undefined && !(typeof c.retry_backoff_ms === "number" && c.retry_backoff_ms >= 0))
    throw bad("retry_backoff_ms must be a number of at least 0");
  if (c.timeout_sec !== undefined && !(typeof c.timeout_sec === "number" && c.timeout_sec > 0))
    throw bad("timeout_sec must be a number of seconds greater than 0");
}

export function isTaskState(s: unknown): s is TaskState {
  return typeof s === "string" && (TASK_STATES as readonly string[]).includes(s);
}

/**
 * The lease length for a task, in ms: its own (`claimTtlMs`, from `claim_ttl_sec`), else the
 * fallback; undefined when none.
 */
export function claimTtlMs(task: Pick<Task, "claimTtlMs" | "constraints">, fallbackSec?: number): number | undefined {
  if (typeof task.claimTtlMs === "number" && task.claimTtlMs > 0) return task.claimTtlMs;
  const v = task.constraints.claim_ttl_sec ?? fallbackSec;
  return typeof v === "number" && v > 0 ? Math.round(v * 1000) : undefined;
}

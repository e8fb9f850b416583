/**
 * A task as persisted under `task:<id>` (JSON, camelCase). Times are epoch milliseconds from the
 * wall clock, so they mean the same thing in every process. Extra fields (lease, retry) may be
 * present; readers ignore fields they do not know.
 */
import { randomUUID } from "node:crypto";
import { ConfigError } from "./errors.ts";
import { quoted } from "./text.ts";
import type { Topic } from "./topic.ts";

export const TASK_STATES = ["pending", "assigned", "running", "completed", "failed", "cancelled"] as const;
export type TaskState = (typeof TASK_STATES)[number];

export const FINAL_STATES: ReadonlySet<TaskState> = new Set(["completed", "failed", "cancelled"]);

export interface Task {
  id: string;
  objective: string;
  inputs: Record<string, unknown>;
  outputs: Record<string, unknown>;
  /** e.g. `claim_ttl_sec`, `max_retries`, `cpu`, `memory_mb`. */
  constraints: Record<string, unknown>;
  evaluator: string | null;
  state: TaskState;
  assignedTo: string | null;
  result: unknown;
  claimedAt: number | null;
  poolId: string | null;
  topic: Topic | null;
  requiredCapabilities: string[];
  attempts: number;
  createdAt: number;
  updatedAt: number;
  /** The current lease: whoever presents this token may report, fail or renew. */
  leaseToken?: string | null;
  leaseExpiresAt?: number | null;
  /** A retried task is not visible before this time. */
  notBefore?: number | null;
  /** The holder's last reported progress. */
  progress?: unknown;
  /** The last failure's message. */
  error?: string | null;
}

export interface TaskInit {
  id?: string;
  objective?: string;
  inputs?: Record<string, unknown>;
  outputs?: Record<string, unknown>;
  constraints?: Record<string, unknown>;
  evaluator?: string | null;
  poolId?: string | null;
  topic?: Topic | null;
  requiredCapabilities?: string[];
}

export function newTask(init: TaskInit = {}, now = Date.now()): Task {
  checkConstraints(init.constraints ?? {});
  if (init.id !== undefined) checkTaskId(init.id);
  return {
    id: init.id ?? randomUUID(),
    objective: init.objective ?? "",
    inputs: init.inputs ?? {},
    outputs: init.outputs ?? {},
    constraints: init.constraints ?? {},
    evaluator: init.evaluator ?? null,
    state: "pending",
    assignedTo: null,
    result: null,
    claimedAt: null,
    poolId: init.poolId ?? null,
    topic: init.topic ?? null,
    requiredCapabilities: init.requiredCapabilities ?? [],
    attempts: 0,
    createdAt: now,
    updatedAt: now,
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
export function checkTaskId(id: unknown): void {
  if (typeof id !== "string" || id === "") throw new ConfigError("a task id must be a non-empty string");
  if (id.length > MAX_TASK_ID)
    throw new ConfigError(`a task id may be at most ${MAX_TASK_ID} characters, got ${id.length}: ${quoted(id, 40)}`);
  if (ID_UNSAFE.test(id)) throw new ConfigError(`a task id must not contain control characters, got ${quoted(id)}`);
}

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
}

export function isTaskState(s: unknown): s is TaskState {
  return typeof s === "string" && (TASK_STATES as readonly string[]).includes(s);
}

/** The lease length for a task, from `constraints.claim_ttl_sec`, in ms; undefined when none. */
export function claimTtlMs(task: Task, fallbackSec?: number): number | undefined {
  const v = task.constraints.claim_ttl_sec ?? fallbackSec;
  return typeof v === "number" && v > 0 ? Math.round(v * 1000) : undefined;
}

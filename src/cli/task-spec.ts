/**
 * What `converge tasks submit` turns into a task, from its options or from one line of a JSON
 * Lines file (`--file`): the same fields either way, named as the options are (`max_retries` or
 * `max-retries` in a line). A line's fields win over the options, which act as defaults for every
 * line; a dedicated field (`max_retries`) wins over the same key in `constraints`. Every value is
 * checked here and by `newTask`, so a bad one is refused with the option or the line it came from.
 */
import { parseDuration } from "../core/duration.ts";
import { ConfigError } from "../core/errors.ts";
import type { TaskInit } from "../core/task.ts";
import { printable, quoted } from "../core/text.ts";

/** A task's fields as `tasks submit` takes them (all optional). */
export interface TaskSpec {
  objective?: string;
  inputs?: Record<string, unknown>;
  id?: string;
  pool?: string | null;
  capabilities?: string[];
  constraints?: Record<string, unknown>;
  priority?: number;
  /** From now, ms. */
  delayMs?: number;
  /** Epoch ms. */
  notBefore?: number;
  claimTtlSec?: number;
  maxRetries?: number;
}

/** The fields a line may hold (with `-` or `_`), and what each must be. */
const LINE_FIELDS = [
  "objective",
  "inputs",
  "id",
  "pool",
  "capabilities",
  "constraints",
  "priority",
  "delay",
  "not_before",
  "claim_ttl_sec",
  "max_retries",
] as const;

/** Comma-separated text as a list, each item trimmed and blanks dropped; none when there is no text. */
export function commaList(text: string | undefined): string[] {
  return (text ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

export function parsePriority(value: unknown, where: string): number {
  const n = typeof value === "string" && /^\s*-?\d+\s*$/.test(value) ? Number(value) : value;
  if (typeof n !== "number" || !Number.isSafeInteger(n))
    throw new ConfigError(`${where} must be an integer (higher runs first), got ${shownValue(value)}`);
  return n;
}

/** An ISO 8601 time (with a zone, or UTC when it has none) or epoch milliseconds. */
export function parseTime(value: unknown, where: string): number {
  if (typeof value === "number" && Number.isFinite(value) && value >= 0) return Math.round(value);
  if (typeof value === "string") {
    const s = value.trim();
    if (/^\d+$/.test(s)) return Number(s);
    if (/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$/i.test(s)) {
      const zoned = /(Z|[+-]\d{2}:?\d{2})$/i.test(s) || s.length === 10 ? s : `${s}Z`;
      const t = Date.parse(zoned);
      if (Number.isFinite(t)) return t;
    }
  }
  throw new ConfigError(
    `${where} must be an ISO 8601 time such as 2030-01-02T03:04:05Z, or epoch milliseconds; got ${shownValue(value)}`,
  );
}

function nonNegative(value: unknown, where: string, integer: boolean): number {
  const n = typeof value === "string" && /^\s*\d+(\.\d+)?\s*$/.test(value) ? Number(value) : value;
  if (typeof n !== "number" || !Number.isFinite(n) || n < 0 || (integer && !Number.isInteger(n)))
    throw new ConfigError(
      `${where} must be ${integer ? "a whole number" : "a number"} of at least 0, got ${shownValue(value)}`,
    );
  return n;
}

export function parseClaimTtl(value: unknown, where: string): number {
  const n = nonNegative(value, where, false);
  if (n === 0) throw new ConfigError(`${where} must be greater than 0`);
  return n;
}

export function parseMaxRetries(value: unknown, where: string): number {
  return nonNegative(value, where, true);
}

/** A delay: a duration such as 90s or 5m, or a number of seconds. */
export function parseDelay(value: unknown, where: string): number {
  if (typeof value === "number") return nonNegative(value, where, false) * 1000;
  if (typeof value === "string") return parseDuration(value, where, { bareSeconds: true });
  throw new ConfigError(`${where} must be a number of seconds or a duration such as 5m, got ${shownValue(value)}`);
}

/** The fields of one JSON line (`where` is e.g. `tasks.jsonl line 3`); unknown fields are refused. */
export function specOfLine(value: unknown, where: string): TaskSpec {
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new ConfigError(`${where}: a line must be a JSON object such as {"inputs": {"x": 1}}`);
  const spec: TaskSpec = {};
  for (const [raw, v] of Object.entries(value)) {
    const key = raw.replaceAll("-", "_");
    const at = `${where}: ${key}`;
    if (v === null && key !== "pool") throw new ConfigError(`${at} must not be null`);
    switch (key as (typeof LINE_FIELDS)[number]) {
      case "objective":
      case "id":
        if (typeof v !== "string") throw new ConfigError(`${at} must be a string, got ${shownValue(v)}`);
        spec[key as "objective" | "id"] = v;
        break;
      case "inputs":
      case "constraints":
        if (typeof v !== "object" || Array.isArray(v))
          throw new ConfigError(`${at} must be a JSON object, got ${shownValue(v)}`);
        spec[key as "inputs" | "constraints"] = v as Record<string, unknown>;
        break;
      case "pool":
        if (v !== null && typeof v !== "string") throw new ConfigError(`${at} must be a string, got ${shownValue(v)}`);
        spec.pool = v as string | null;
        break;
      case "capabilities":
        if (typeof v === "string") spec.capabilities = commaList(v);
        else if (Array.isArray(v) && v.every((c) => typeof c === "string")) spec.capabilities = v as string[];
        else throw new ConfigError(`${at} must be a list of strings (or "a,b"), got ${shownValue(v)}`);
        break;
      case "priority":
        spec.priority = parsePriority(v, at);
        break;
      case "delay":
        spec.delayMs = parseDelay(v, at);
        break;
      case "not_before":
        spec.notBefore = parseTime(v, at);
        break;
      case "claim_ttl_sec":
        spec.claimTtlSec = parseClaimTtl(v, at);
        break;
      case "max_retries":
        spec.maxRetries = parseMaxRetries(v, at);
        break;
      default:
        throw new ConfigError(`${where}: unknown field ${quoted(raw, 60)}; a line may hold ${LINE_FIELDS.join(", ")}`);
    }
  }
  if (spec.delayMs !== undefined && spec.notBefore !== undefined)
    throw new ConfigError(`${where}: give delay or not_before, not both`);
  return spec;
}

/** The task a spec describes over `defaults` (the options, for a file's lines), at `now` (store clock). */
export function initOf(spec: TaskSpec, defaults: TaskSpec, now: number): TaskInit {
  const pick = <K extends keyof TaskSpec>(k: K): TaskSpec[K] => (spec[k] !== undefined ? spec[k] : defaults[k]);
  const constraints: Record<string, unknown> = { ...defaults.constraints, ...spec.constraints };
  const ttl = pick("claimTtlSec");
  const retries = pick("maxRetries");
  if (ttl !== undefined) constraints.claim_ttl_sec = ttl;
  if (retries !== undefined) constraints.max_retries = retries;
  // A line's own time wins over both of the defaults' (delay and not_before exclude each other).
  const ownTime = spec.delayMs !== undefined || spec.notBefore !== undefined;
  const delayMs = ownTime ? spec.delayMs : defaults.delayMs;
  const notBefore = ownTime ? spec.notBefore : defaults.notBefore;
  return {
    id: spec.id,
    objective: spec.objective ?? "",
    inputs: spec.inputs ?? {},
    poolId: pick("pool") ?? null,
    requiredCapabilities: pick("capabilities") ?? [],
    constraints,
    priority: pick("priority"),
    notBefore: delayMs !== undefined ? now + delayMs : (notBefore ?? null),
  };
}

function shownValue(v: unknown): string {
  return typeof v === "string" ? quoted(v, 60) : printable(JSON.stringify(v) ?? String(v), 60);
}

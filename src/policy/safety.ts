/**
 * Safety checks to run before a decision is carried out; nothing runs them unless they are given to
 * the executor as guards (RuntimeOptions.guards: `policy.guard()`):
 * - ActionPolicy: which decision types an agent may take (an allowlist; `ActionPolicy.allowAll()`
 *   for no restriction).
 * - ResourceLimits: what the agent's host offers (`cpu` cores, `memory_mb`); a task or decision
 *   whose constraints ask for more is refused. A limit left out is unlimited.
 */
import { ConfigError, ConvergeError } from "../core/errors.ts";

export type PolicyResult = { ok: true } | { ok: false; reason: string };

/** Thrown by `enforce` when a check refuses. */
export class PolicyViolation extends ConvergeError {}

/** A check as the executor's guard shape: the reason to refuse, or undefined to let it through. */
export type Guard = (decision: { type: string; [key: string]: unknown }) => string | undefined;

/** Turns a refusal into a PolicyViolation. */
export function enforce(result: PolicyResult): void {
  if (!result.ok) throw new PolicyViolation(result.reason);
}

export class ActionPolicy {
  readonly #allowed: ReadonlySet<string> | null;

  /** `allowed`: the decision types permitted; null permits every type. */
  constructor(allowed: Iterable<string> | null) {
    this.#allowed = allowed === null ? null : new Set(allowed);
  }

  static allowAll(): ActionPolicy {
    return new ActionPolicy(null);
  }

  allows(type: string): boolean {
    return this.#allowed === null || this.#allowed.has(type);
  }

  check(decision: { type: string }): PolicyResult {
    const type = (decision as { type?: unknown } | null)?.type;
    if (typeof type !== "string") return { ok: false, reason: "a decision must be an object with a string type" };
    if (this.allows(type)) return { ok: true };
    return {
      ok: false,
      reason:
        `decision type ${type} is not allowed by the action policy ` +
        `(allowed: ${[...this.#allowed!].sort().join(", ") || "none"})`,
    };
  }

  /** `check` as a guard for the executor. */
  guard(): Guard {
    return (decision) => reasonOf(this.check(decision));
  }
}

export interface ResourceLimitSpec {
  /** CPU cores. */
  cpu?: number;
  memory_mb?: number;
}

const RESOURCES = ["cpu", "memory_mb"] as const;

export class ResourceLimits {
  readonly limits: Readonly<ResourceLimitSpec>;

  constructor(limits: ResourceLimitSpec = {}) {
    for (const r of RESOURCES) {
      const v = limits[r];
      if (v !== undefined && !(typeof v === "number" && Number.isFinite(v) && v >= 0))
        throw new ConfigError(`resource limit ${r} must be a non-negative number, got ${String(v)}`);
    }
    this.limits = Object.freeze({ ...limits });
  }

  /** Checks requested resources (e.g. a task's `constraints`) against the limits. */
  checkConstraints(constraints: Readonly<Record<string, unknown>> | null | undefined): PolicyResult {
    if (!constraints) return { ok: true };
    for (const r of RESOURCES) {
      if (!(r in constraints)) continue;
      const asked = constraints[r];
      if (asked === undefined || asked === null) continue;
      if (typeof asked !== "number" || !Number.isFinite(asked) || asked < 0)
        return { ok: false, reason: `constraint ${r} must be a non-negative number, got ${JSON.stringify(asked)}` };
      const limit = this.limits[r];
      if (limit !== undefined && asked > limit)
        return { ok: false, reason: `asks for ${r}=${asked} but this agent is limited to ${r}=${limit}` };
    }
    return { ok: true };
  }

  checkTask(task: { constraints?: Readonly<Record<string, unknown>> | null }): PolicyResult {
    return this.checkConstraints(task.constraints);
  }

  /** SubmitTask: its task's constraints; any other decision: its own `constraints` field, if any. */
  checkDecision(decision: { type: string; [key: string]: unknown }): PolicyResult {
    if (decision.type === "SubmitTask") {
      const task = decision.task as { constraints?: Record<string, unknown> } | undefined;
      return this.checkConstraints(task?.constraints);
    }
    const c = decision.constraints;
    if (c === undefined || c === null) return { ok: true };
    if (typeof c !== "object" || Array.isArray(c))
      return { ok: false, reason: `decision ${decision.type} has constraints that are not a map` };
    return this.checkConstraints(c as Record<string, unknown>);
  }

  /** `checkDecision` as a guard for the executor. */
  guard(): Guard {
    return (decision) => reasonOf(this.checkDecision(decision));
  }
}

function reasonOf(r: PolicyResult): string | undefined {
  return r.ok ? undefined : r.reason;
}

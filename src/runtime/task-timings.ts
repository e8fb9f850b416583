/**
 * How long tasks take, per worker, for /metrics: queue wait (submit to first claim) and duration
 * (claim to the recorded outcome), as histograms labelled by the task's capability set. Both are
 * differences of times in the task's own record (createdAt, claimedAt, updatedAt), which all come
 * from the store's clock, so hosts with skewed clocks still agree.
 *
 * Label cardinality stays bounded: a worker sees only tasks whose capabilities it has, and each
 * worker names at most MAX_CAPABILITY_SETS sets (collectMetrics applies the same bound to the
 * process); the rest count under OTHER_SET. The label is the required capabilities, sorted and
 * joined by commas ("" for none), cut to MAX_LABEL characters.
 *
 * On the task path this costs a map lookup by the task's queue id and one histogram observe.
 */
import type { Task } from "../core/task.ts";
import { printable } from "../core/text.ts";
import { Histogram } from "../observability/metrics.ts";

export const MAX_CAPABILITY_SETS = 32;
export const OTHER_SET = "(other)";
const MAX_LABEL = 200;

export type Outcome = "completed" | "failed" | "retried";

export interface Timings {
  /** The capability-set label. */
  readonly capabilities: string;
  readonly wait: Histogram;
  readonly duration: Record<Outcome, Histogram>;
}

export class TaskTimings {
  /** By the task's queue id (pool and capability set): the label is computed once per queue. */
  readonly #byQueue = new Map<string, Timings>();
  readonly #byLabel = new Map<string, Timings>();

  /** Every capability set seen, with its histograms. */
  get all(): Iterable<Timings> {
    return this.#byLabel.values();
  }

  /** A first claim: submit to claim. A retry's wait is its backoff, not the queue's, so it is not counted. */
  claimed(task: Task): void {
    if (task.attempts !== 1 || task.claimedAt === null) return;
    this.#for(task).wait.observe(Math.max(0, task.claimedAt - task.createdAt) / 1000);
  }

  /** An attempt ended: `after` is the record as the outcome was written. */
  finished(claimed: Task, after: Task, outcome: Outcome): number {
    const ms = claimed.claimedAt === null ? 0 : Math.max(0, after.updatedAt - claimed.claimedAt);
    this.#for(claimed).duration[outcome].observe(ms / 1000);
    return ms;
  }

  #for(task: Task): Timings {
    const known = this.#byQueue.get(task.queue);
    if (known) return known;
    let label = capabilityLabel(task.requiredCapabilities);
    if (!this.#byLabel.has(label) && this.#byLabel.size >= MAX_CAPABILITY_SETS) label = OTHER_SET;
    let t = this.#byLabel.get(label);
    if (!t) this.#byLabel.set(label, (t = newTimings(label)));
    // Queues beyond the bound share OTHER_SET without remembering each (the map stays bounded too).
    if (label !== OTHER_SET) this.#byQueue.set(task.queue, t);
    return t;
  }
}

/** The label of a capability set: sorted, deduplicated, comma-joined, printable, bounded. */
export function capabilityLabel(caps: readonly string[]): string {
  return printable([...new Set(caps)].sort().join(","), MAX_LABEL);
}

function newTimings(capabilities: string): Timings {
  return {
    capabilities,
    wait: new Histogram(),
    duration: { completed: new Histogram(), failed: new Histogram(), retried: new Histogram() },
  };
}

/**
 * Waiting for tasks from the command line (`converge tasks wait`, `converge tasks submit --wait`),
 * through TaskManager.waitFor, and the summary it prints. The exit code is what a CI job needs:
 * 0 when every task completed, 1 when any failed, was cancelled or was removed, 124 on timeout.
 */
import { NotFoundError, WaitTimeoutError } from "../core/errors.ts";
import { formatDuration } from "../core/duration.ts";
import { isFinalState, type Task } from "../core/task.ts";
import { printable, quoted } from "../core/text.ts";
import type { TaskManager } from "../coordination/task-manager.ts";

export interface WaitResult {
  /** The last record read of each task waited for, in the order waited for; undefined: removed meanwhile. */
  tasks: Map<string, Task | undefined>;
  /** True when time ran out before every task finished. */
  timedOut: boolean;
}

/**
 * Waits until the tasks `ids` are finished, or, with `ids` undefined, until no task is open (those
 * open at the start, and any that open meanwhile). An id that does not exist is a NotFoundError
 * before anything is waited for.
 */
export async function waitForTasks(
  tm: TaskManager,
  ids: string[] | undefined,
  timeoutMs?: number,
): Promise<WaitResult> {
  const tasks = new Map<string, Task | undefined>();
  const abort = new AbortController();
  const timer = timeoutMs !== undefined ? setTimeout(() => abort.abort(TIMED_OUT), timeoutMs) : undefined;
  try {
    let round = ids ? await named(tm, ids) : await tm.openTasks();
    while (round.length > 0 && !abort.signal.aborted) {
      for (const t of round) tasks.set(t.id, t);
      await Promise.all(
        round.map((t) =>
          tm.waitFor(t.id, { signal: abort.signal }).then(
            (done) => void tasks.set(t.id, done),
            (err) => {
              if (err === TIMED_OUT) return;
              if (err instanceof NotFoundError) return void tasks.set(t.id, undefined);
              throw err;
            },
          ),
        ),
      );
      // Without ids: until nothing is open, tasks submitted (or retried) meanwhile included.
      round = ids || abort.signal.aborted ? [] : await tm.openTasks();
    }
    if (abort.signal.aborted) {
      const open = [...tasks].filter(([, t]) => t !== undefined && !isFinalState(t.state)).map(([id]) => id);
      for (const [i, t] of (await tm.queue.getMany(open)).entries()) tasks.set(open[i]!, t);
    }
    return { tasks, timedOut: abort.signal.aborted };
  } finally {
    clearTimeout(timer);
  }
}

const TIMED_OUT = Symbol("timed out");
/** Tasks that did not complete listed one by one, at most. */
const SHOWN_ROWS = 50;
const ORDER = ["failed", "cancelled", "removed", "unfinished"];

async function named(tm: TaskManager, ids: string[]): Promise<Task[]> {
  const unique = [...new Set(ids)];
  const records = await tm.queue.getMany(unique);
  const missing = unique.filter((_, i) => records[i] === undefined);
  if (missing.length > 0) {
    const shown = missing.slice(0, 5).map((id) => quoted(id, 80));
    const more = missing.length > 5 ? ` and ${missing.length - 5} more` : "";
    throw new NotFoundError(`no such task: ${shown.join(", ")}${more}`);
  }
  return records as Task[];
}

/**
 * The summary: one line per task that did not complete (state, id, error; the first SHOWN_ROWS,
 * failures first), then the counts. Exit
 * code: 0 when all completed, 1 when any did not; a timeout throws WaitTimeoutError (124) after it.
 */
export function summarise(result: WaitResult, print: (line: string) => void, timeoutMs?: number): number {
  const counts = { completed: 0, failed: 0, cancelled: 0, removed: 0, open: 0 };
  const rows: string[][] = [];
  for (const [id, t] of result.tasks) {
    const state = t === undefined ? "removed" : isFinalState(t.state) ? t.state : "open";
    counts[state as keyof typeof counts]++;
    if (state === "completed") continue;
    const what =
      t === undefined ? "removed while waited for" : isFinalState(t.state) ? (t.error ?? "") : `still ${t.state}`;
    rows.push([state === "open" ? "unfinished" : state, printable(id), printable(what)]);
  }
  // Failures first; a long list is cut (the counts below, and `converge tasks list`, have the rest).
  rows.sort((a, b) => ORDER.indexOf(a[0]!) - ORDER.indexOf(b[0]!));
  const shown = rows.slice(0, SHOWN_ROWS);
  const width = Math.max(0, ...shown.map((r) => r[0]!.length));
  for (const [state, id, what] of shown) print(`${state!.padEnd(width)}  ${id}${what ? `  ${what}` : ""}`);
  if (rows.length > shown.length) print(`… and ${rows.length - shown.length} more that did not complete`);
  const n = result.tasks.size;
  const parts = [`${counts.completed} completed`, `${counts.failed} failed`, `${counts.cancelled} cancelled`];
  if (counts.removed) parts.push(`${counts.removed} removed`);
  if (counts.open) parts.push(`${counts.open} not finished`);
  print(`${n} task${n === 1 ? "" : "s"}: ${parts.join(", ")}`);
  if (result.timedOut && counts.open > 0)
    throw new WaitTimeoutError(
      `${counts.open} of ${n} task${n === 1 ? "" : "s"} did not finish within ` +
        `${formatDuration(timeoutMs ?? 0)} (--timeout)`,
    );
  return counts.completed === n ? 0 : 1;
}

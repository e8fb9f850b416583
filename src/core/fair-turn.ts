/**
 * Fair turns for loops that never leave the microtask queue. On a synchronous store (SQLite,
 * memory) every await of a claim or a report resolves at once, so a busy worker's chain of
 * promises runs on and on: timers, sockets and signal handlers get no turn until the backlog is
 * gone (20,000 tasks on SQLite held the event loop for 3 s, lease renewals and heartbeats with it).
 *
 * `fairTurn()` returns undefined while the event loop has had a turn within the last few ms, and
 * otherwise a promise that resolves after one (setImmediate, which runs after timers and I/O).
 * It knows the loop has had a turn because a marker it schedules with setImmediate has run.
 * Cost: a clock read per call and at most one setImmediate per budget.
 */

/** How long a chain of microtasks may run before it lets the event loop have a turn (ms). */
export const TURN_BUDGET_MS = 5;

let markedAt: number | null = null;

function mark(now: number): void {
  markedAt = now;
  setImmediate(() => {
    markedAt = null;
  });
}

/** Undefined when the caller may go on, else a promise to await first: `const t = fairTurn(); if (t) await t;` */
export function fairTurn(budgetMs = TURN_BUDGET_MS): Promise<void> | undefined {
  const now = performance.now();
  if (markedAt === null) {
    mark(now);
    return undefined;
  }
  if (now - markedAt < budgetMs) return undefined;
  return new Promise((resolve) => setImmediate(resolve));
}

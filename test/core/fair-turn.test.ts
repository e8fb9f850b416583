import { expect, test } from "bun:test";
import { fairTurn, TURN_BUDGET_MS } from "../../src/core/fair-turn.ts";

test("when a chain of microtasks runs past its budget, a timer that fell due meanwhile runs before it goes on", async () => {
  let fired = false;
  setTimeout(() => {
    fired = true;
  }, 0);
  const started = performance.now();
  let turns = 0;
  // A chain whose awaits all resolve at once, as a worker's on a synchronous store.
  while (!fired && performance.now() - started < 2000) {
    const t = fairTurn();
    if (t) {
      turns++;
      await t;
    }
    await Promise.resolve();
  }
  expect(fired).toBe(true);
  expect(turns).toBeGreaterThan(0);
});

test("while the loop has had a turn within the budget, the caller goes on at once", async () => {
  await new Promise((r) => setImmediate(r));
  const first = fairTurn();
  expect(first).toBeUndefined();
  const second = fairTurn(TURN_BUDGET_MS * 1000);
  expect(second).toBeUndefined();
});

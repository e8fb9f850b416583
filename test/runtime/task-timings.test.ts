import { expect, test } from "bun:test";
import { newTask, type Task } from "../../src/core/task.ts";
import { capabilityLabel, MAX_CAPABILITY_SETS, OTHER_SET, TaskTimings } from "../../src/runtime/task-timings.ts";

/** A task as a claim leaves it: submitted at `createdAt`, claimed at `claimedAt`, on its `attempts`th claim. */
function claimedTask(caps: string[], createdAt: number, claimedAt: number, attempts = 1): Task {
  return { ...newTask({ requiredCapabilities: caps }, createdAt), state: "assigned", claimedAt, attempts };
}

test("queue wait is submit to first claim and duration is claim to the recorded outcome, in seconds", () => {
  const t = new TaskTimings();
  const task = claimedTask(["ocr"], 1_000, 1_250);
  t.claimed(task);
  expect(t.finished(task, { ...task, state: "completed", updatedAt: 3_250 }, "completed")).toBe(2000);
  const [only] = [...t.all];
  expect(only!.capabilities).toBe("ocr");
  expect([only!.wait.count, only!.wait.sum]).toEqual([1, 0.25]);
  expect([only!.duration.completed.count, only!.duration.completed.sum]).toEqual([1, 2]);
  expect(only!.duration.failed.count + only!.duration.retried.count).toBe(0);
});

test("a retry's claim adds no queue wait (its wait is the backoff), but its duration counts under its outcome", () => {
  const t = new TaskTimings();
  const retry = claimedTask([], 0, 10_000, 2);
  t.claimed(retry);
  t.finished(retry, { ...retry, state: "pending", updatedAt: 10_100 }, "retried");
  const [only] = [...t.all];
  expect(only!.capabilities).toBe("");
  expect(only!.wait.count).toBe(0);
  expect(only!.duration.retried.count).toBe(1);
});

test("the label is the capability set sorted and deduplicated, so one set is one series", () => {
  expect(capabilityLabel(["b", "a", "b"])).toBe("a,b");
  const t = new TaskTimings();
  t.claimed(claimedTask(["b", "a"], 0, 1));
  t.claimed(claimedTask(["a", "b"], 0, 1));
  expect([...t.all].map((x) => [x.capabilities, x.wait.count])).toEqual([["a,b", 2]]);
  expect(capabilityLabel(["x\ny".repeat(100)])).toMatch(/^x\\ny.*… \(300 chars\)$/);
});

test(`beyond ${MAX_CAPABILITY_SETS} capability sets, the rest count together under ${OTHER_SET}`, () => {
  const t = new TaskTimings();
  for (let i = 0; i < MAX_CAPABILITY_SETS + 10; i++) t.claimed(claimedTask([`c${i}`], 0, 1));
  const all = [...t.all];
  expect(all).toHaveLength(MAX_CAPABILITY_SETS + 1);
  expect(all.find((x) => x.capabilities === OTHER_SET)!.wait.count).toBe(10);
});

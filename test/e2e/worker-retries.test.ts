/**
 * Retries through `converge run`: a handler that fails its first two attempts completes on the
 * third with max_retries 2; with max_retries 1 the task ends failed with the error's message, as
 * `converge tasks get` shows; `converge tasks retry` puts it back and it then completes.
 */
import { beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import { TaskManager } from "../../src/coordination/task-manager.ts";
import type { Task } from "../../src/core/task.ts";
import { runCli, stopAll, type Running } from "../support/cli.ts";
import { useE2eEnvironment } from "../support/e2e.ts";
import {
  MODULES,
  openStore,
  startWorker,
  submitViaCli,
  waitFinal,
  writeConfig,
  type StoreSpec,
} from "./fixtures/worker-support/harness.ts";

const { tmp } = useE2eEnvironment({ prefix: "converge-e2e-worker-retries-", cleanup: [stopAll] });
let spec: StoreSpec;
let config: string;
let worker: Running;

beforeAll(async () => {
  spec = { backend: "sqlite", path: join(tmp.path, "retries.db") };
  config = writeConfig(tmp.path, "retries", spec, { agents: 2, agent: join(MODULES, "flaky.js") });
  worker = await startWorker(config);
});

async function get(id: string): Promise<Task> {
  const r = await runCli(["tasks", "get", "-c", config, id]);
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout);
}

test("fails twice, then succeeds on the third attempt with max_retries 2; the failed one can be retried by hand", async () => {
  // retry_backoff_ms keeps the exponential backoff (50 ms, then 100 ms) short for the test.
  await submitViaCli(config, [
    { id: "flaky-2", inputs: {}, constraints: { max_retries: 2, retry_backoff_ms: 50 } },
    { id: "flaky-1", inputs: {}, constraints: { max_retries: 1, retry_backoff_ms: 50 } },
  ]);
  const store = await openStore(spec);
  try {
    await waitFinal(new TaskManager(store), ["flaky-2", "flaky-1"], 15_000);
  } finally {
    await store.close();
  }
  const ok = await get("flaky-2");
  expect(ok.state).toBe("completed");
  expect(ok.attempts).toBe(3);
  expect(ok.result).toEqual({ attempt: 3 });

  const failed = await get("flaky-1");
  expect(failed.state).toBe("failed");
  expect(failed.attempts).toBe(2);
  expect(failed.error).toBe("flaky failure on attempt 2");
  const listed = await runCli(["tasks", "list", "-c", config, "--state", "failed"]);
  expect(listed.stdout).toContain("flaky failure on attempt 2");

  // An operator retry starts the count again: attempts 1 and 2 fail, and max_retries 1 allows no third.
  const retried = await runCli(["tasks", "retry", "-c", config, "flaky-1"]);
  expect(retried.code).toBe(0);
  expect(retried.stdout.trim()).toBe("flaky-1 pending");
  const store2 = await openStore(spec);
  try {
    await waitFinal(new TaskManager(store2), ["flaky-1"], 15_000);
  } finally {
    await store2.close();
  }
  const again = await get("flaky-1");
  expect(again.state).toBe("failed");
  expect(again.attempts).toBe(2);

  expect(await worker.stop("SIGTERM")).toBe(0);
  expect(worker.stdout).toContain("1 task completed, 2 failed");
}, 30_000);

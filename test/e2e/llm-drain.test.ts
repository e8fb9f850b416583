/**
 * Drain during a slow request: the worker holding the task is stopped (SIGTERM) while its model
 * request is in flight; the request is aborted (the stand-in sees the client go), the task is
 * handed back, and a worker in another process completes it.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { TaskManager } from "../../src/coordination/task-manager.ts";
import { stopAll } from "../support/cli.ts";
import { useE2eEnvironment } from "../support/e2e.ts";
import { until } from "../support/wait.ts";
import { getTask, llmConfig } from "../fixtures/llm/harness.ts";
import { StandIn } from "../fixtures/llm/stand-in.ts";
import { agentIds, openStore, startWorker, submitViaCli, waitFinal } from "./fixtures/worker-support/harness.ts";

let s: StandIn | undefined;
const { tmp } = useE2eEnvironment({ prefix: "converge-e2e-llm-drain-", cleanup: [stopAll, () => s?.stop()] });

test("when a worker drains during a slow model request, the request is aborted and another worker completes the task", async () => {
  s = StandIn.start("anthropic", [{ hang: true }, { text: "finished elsewhere" }]);
  const spec = { backend: "sqlite" as const, path: join(tmp.path, "drain.db") };
  const config = llmConfig(
    tmp.path,
    "drain",
    spec,
    { provider: "anthropic", base_url: s.url },
    { shutdown_grace_sec: 0.3 },
  );
  const env = { ANTHROPIC_API_KEY: "k" };
  const first = await startWorker(config, { env });
  await submitViaCli(config, [{ id: "slow", inputs: { text: "a long one" } }]);
  await until(() => s!.requests.length === 1, "the first worker's request to arrive", 20_000);
  const second = await startWorker(config, { env });

  expect(await first.stop("SIGTERM")).toBe(0);
  await until(() => s!.requests[0]!.aborted, "the stand-in to see the first request aborted", 5000);
  const store = await openStore(spec);
  try {
    await waitFinal(new TaskManager(store), ["slow"], 20_000);
  } finally {
    await store.close();
  }
  const task = await getTask(config, "slow");
  expect(task.state).toBe("completed");
  expect(task.assignedTo).toBe(agentIds(second)[0]!);
  expect(task.attempts).toBe(1); // handed back, not failed: the attempt did not count
  expect((task.result as { output: string }).output).toBe("finished elsewhere");
  expect(s.requests).toHaveLength(2);
  expect(first.stderr).toContain("released=1");
  expect(await second.stop("SIGTERM")).toBe(0);
}, 40_000);

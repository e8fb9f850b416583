/**
 * Budgets per task attempt, through `converge run`: a model that keeps calling tools stops at
 * `max_requests_per_task` (the next request is never sent), one whose answers are large stops at
 * `max_tokens_per_task`; both fail with `budget exceeded: ...` naming the limit. A task within its
 * budgets reports usage equal to what the stand-in counted.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { TaskManager } from "../../src/coordination/task-manager.ts";
import { stopAll } from "../support/cli.ts";
import { useE2eEnvironment } from "../support/e2e.ts";
import { getTask, llmConfig } from "../fixtures/llm/harness.ts";
import { StandIn, taskIdOf, toolResultsOf, type Reply } from "../fixtures/llm/stand-in.ts";
import { openStore, startWorker, submitViaCli, waitFinal } from "./fixtures/worker-support/harness.ts";

let s: StandIn | undefined;
const { tmp } = useE2eEnvironment({ prefix: "converge-e2e-llm-budgets-", cleanup: [stopAll, () => s?.stop()] });

const USAGE: Record<string, { input: number; output: number }> = {
  runaway: { input: 10, output: 5 },
  hungry: { input: 60, output: 50 },
  modest: { input: 20, output: 10 },
};

test("when a task would go over max_requests_per_task or max_tokens_per_task it fails naming the limit; usage matches the provider's counts", async () => {
  s = StandIn.start("openai", (req): Reply => {
    const id = taskIdOf(req)!;
    if (id === "modest" && toolResultsOf(req).length > 0) return { text: "all done", usage: { input: 30, output: 15 } };
    // Every other answer asks for yet another tool call (a tool that does not exist: the model is told so).
    return { toolCalls: [{ name: "look_again", args: {} }], usage: USAGE[id] };
  });
  const spec = { backend: "sqlite" as const, path: join(tmp.path, "budgets.db") };
  const config = llmConfig(
    tmp.path,
    "budgets",
    spec,
    { provider: "openai", base_url: s.url, max_requests_per_task: 3, max_tokens_per_task: 250 },
    { agents: 3 },
  );
  const worker = await startWorker(config, { env: { OPENAI_API_KEY: "k" } });
  await submitViaCli(
    config,
    Object.keys(USAGE).map((id) => ({ id, inputs: {} })),
  );
  const store = await openStore(spec);
  try {
    await waitFinal(new TaskManager(store), Object.keys(USAGE), 20_000);
  } finally {
    await store.close();
  }
  const seen = (id: string) => s!.requests.filter((r) => taskIdOf(r) === id);

  const runaway = await getTask(config, "runaway");
  expect(runaway.state).toBe("failed");
  expect(runaway.error).toStartWith("budget exceeded: max_requests_per_task (3)");
  expect(runaway.error).toContain("used 45 tokens (30 in, 15 out) in 3 requests");
  expect(seen("runaway")).toHaveLength(3);

  const hungry = await getTask(config, "hungry");
  expect(hungry.state).toBe("failed");
  expect(hungry.error).toStartWith("budget exceeded: max_tokens_per_task (250)");
  expect(hungry.error).toContain("used 330 tokens (180 in, 150 out) in 3 requests");
  expect(seen("hungry")).toHaveLength(3);
  // The last request asked for no more output than the budget had left.
  expect(seen("hungry")[2]!.body.max_tokens).toBe(30);

  const modest = await getTask(config, "modest");
  expect(modest.state).toBe("completed");
  expect(seen("modest")).toHaveLength(2);
  expect(modest.result).toEqual({
    output: "all done",
    usage: { inputTokens: 20 + 30, outputTokens: 10 + 15, requests: 2 },
    model: "gpt-4o-mini",
  });
  // Calls of a tool that does not exist are logged (and the model told), never run.
  expect(worker.stderr).toContain("the model's tool call was refused and dropped task=runaway tool=look_again");
  expect(await worker.stop("SIGTERM")).toBe(0);
}, 40_000);

/**
 * `llm.mode: decider` through `converge run`: the agents' decide() asks the model, which claims a
 * submitted task and reports its result through tool calls; a wake-up with nothing new asks nothing.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { TaskManager } from "../../src/coordination/task-manager.ts";
import { stopAll } from "../support/cli.ts";
import { useE2eEnvironment } from "../support/e2e.ts";
import { getTask, llmConfig } from "../fixtures/llm/harness.ts";
import { StandIn, toolNamesOf, userText } from "../fixtures/llm/stand-in.ts";
import { agentIds, openStore, startWorker, submitViaCli, waitFinal } from "./fixtures/worker-support/harness.ts";

let s: StandIn | undefined;
const { tmp } = useE2eEnvironment({ prefix: "converge-e2e-llm-decider-", cleanup: [stopAll, () => s?.stop()] });

test("when llm.mode is decider, the model claims and reports a submitted task through tool calls", async () => {
  s = StandIn.start("mistral", (req) => {
    const id = /"id": "(poem-\d+)"/.exec(userText(req))?.[1];
    return id
      ? {
          toolCalls: [
            { name: "claim_task", args: { task_id: id } },
            { name: "report_task", args: { task_id: id, result: { poem: "Roses are red" } } },
          ],
        }
      : { text: "nothing to do" };
  });
  const spec = { backend: "sqlite" as const, path: join(tmp.path, "decider.db") };
  const config = llmConfig(tmp.path, "decider", spec, { provider: "mistral", base_url: s.url, mode: "decider" });
  const worker = await startWorker(config, { env: { MISTRAL_API_KEY: "k" } });
  expect(worker.stdout).toContain("llm: mistral mistral-small-latest, decider");
  expect(s.requests).toHaveLength(0); // started with nothing new: no model call
  await submitViaCli(config, [{ id: "poem-1", inputs: { about: "roses" } }]);
  const store = await openStore(spec);
  try {
    await waitFinal(new TaskManager(store), ["poem-1"], 20_000);
  } finally {
    await store.close();
  }
  const task = await getTask(config, "poem-1");
  expect(task.state).toBe("completed");
  expect(task.result).toEqual({ poem: "Roses are red" });
  expect(task.assignedTo).toBe(agentIds(worker)[0]!);
  expect(toolNamesOf(s.requests[0]!)).toEqual(
    expect.arrayContaining(["claim_task", "report_task", "send_message", "submit_task"]),
  );
  const asked = s.requests.length;
  expect(asked).toBe(1);
  expect(await worker.stop("SIGTERM")).toBe(0);
}, 40_000);

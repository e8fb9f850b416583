/**
 * The AI SDK inside the compiled binary: `dist/converge` (built here) runs an LLM worker with a
 * stdio MCP server against a stand-in, with no Bun or Node on its PATH, and the task completes
 * with the tool's result in the model's answer.
 */
import { beforeAll, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { TaskManager } from "../../src/coordination/task-manager.ts";
import { stopAll } from "../support/cli.ts";
import { useE2eEnvironment } from "../support/e2e.ts";
import { getTask, llmConfig, MCP_SERVER } from "../fixtures/llm/harness.ts";
import { StandIn, toolResultsOf } from "../fixtures/llm/stand-in.ts";
import { buildBinary, openStore, startWorker, submitViaCli, waitFinal } from "./fixtures/worker-support/harness.ts";

let s: StandIn | undefined;
const { tmp } = useE2eEnvironment({ prefix: "converge-e2e-llm-binary-", cleanup: [stopAll, () => s?.stop()] });

beforeAll(async () => {
  await buildBinary();
}, 120_000);

test("when converge runs as the compiled binary, an LLM worker with an MCP tool completes a task", async () => {
  s = StandIn.start("openai-compatible", (req) =>
    toolResultsOf(req).length === 0
      ? { toolCalls: [{ name: "capital_of", args: { country: "Japan" } }] }
      : { text: `answer: ${toolResultsOf(req).join(" ")}` },
  );
  const emptyPath = join(tmp.path, "empty-bin");
  mkdirSync(emptyPath);
  const spec = { backend: "sqlite" as const, path: join(tmp.path, "binary.db") };
  const config = llmConfig(tmp.path, "binary", spec, {
    provider: "openai-compatible",
    model: "qwen-local",
    base_url: s.url,
    mcp_servers: [{ name: "geo", command: process.execPath, args: [MCP_SERVER] }],
  });
  const worker = await startWorker(config, { binary: true, env: { PATH: emptyPath } });
  await submitViaCli(config, [{ id: "in-binary", inputs: { country: "Japan" } }], { binary: true });
  const store = await openStore(spec);
  try {
    await waitFinal(new TaskManager(store), ["in-binary"], 20_000);
  } finally {
    await store.close();
  }
  const task = await getTask(config, "in-binary");
  expect(task.state).toBe("completed");
  expect((task.result as { output: string }).output).toContain("The capital of Japan is Tokyo");
  expect(task.result).toMatchObject({ model: "qwen-local", usage: { requests: 2 } });
  expect(await worker.stop("SIGTERM")).toBe(0);
}, 60_000);

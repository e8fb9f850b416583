/**
 * A tool round through `converge run`: the model calls a registry tool (from an agent module that
 * mixes code and the configured model) and a tool of a stdio MCP server (a fixture process), gets
 * their results, errors included, and then answers. The allowlist hides a tool; the MCP server
 * process is stopped with the agents.
 */
import { expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { TaskManager } from "../../src/coordination/task-manager.ts";
import { stopAll } from "../support/cli.ts";
import { useE2eEnvironment } from "../support/e2e.ts";
import { getTask, LLM_MODULES, llmConfig, MCP_SERVER } from "../fixtures/llm/harness.ts";
import { StandIn, toolNamesOf, toolResultsOf } from "../fixtures/llm/stand-in.ts";
import { openStore, startWorker, submitViaCli, waitFinal } from "./fixtures/worker-support/harness.ts";

let s: StandIn | undefined;
const { tmp } = useE2eEnvironment({ prefix: "converge-e2e-llm-tools-", cleanup: [stopAll, () => s?.stop()] });

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test("when the model calls a registry tool and an MCP tool, it gets their results (errors as errors) and its answer completes the task", async () => {
  s = StandIn.start("anthropic", (req) =>
    toolResultsOf(req).length === 0
      ? {
          toolCalls: [
            { name: "multiply", args: { a: 6, b: 7 } },
            { name: "capital_of", args: { country: "France" } },
            { name: "capital_of", args: { country: "Atlantis" } },
            { name: "explode", args: {} },
          ],
        }
      : { text: `I found: ${toolResultsOf(req).join(" | ")}` },
  );
  const pids = join(tmp.path, "mcp.pids");
  const spec = { backend: "sqlite" as const, path: join(tmp.path, "tools.db") };
  const config = llmConfig(
    tmp.path,
    "tools",
    spec,
    {
      provider: "anthropic",
      model: "claude-test",
      base_url: s.url,
      tools: ["multiply", "explode", "capital_of"],
      mcp_servers: [{ name: "geo", command: process.execPath, args: [MCP_SERVER], env: { MCP_FIXTURE_PIDS: pids } }],
    },
    { agent: join(LLM_MODULES, "tools-worker.js"), agents: 2 },
  );
  const worker = await startWorker(config, { env: { ANTHROPIC_API_KEY: "k" } });
  expect(worker.stdout).toContain("llm: anthropic claude-test, worker");
  const serverPids = readFileSync(pids, "utf8").trim().split("\n").map(Number);
  expect(serverPids).toHaveLength(1); // one server process for the agents of this process
  expect(alive(serverPids[0]!)).toBe(true);

  await submitViaCli(config, [{ id: "tool-round", inputs: { question: "6 x 7, and the capital of France?" } }]);
  const store = await openStore(spec);
  try {
    await waitFinal(new TaskManager(store), ["tool-round"], 20_000);
  } finally {
    await store.close();
  }
  const task = await getTask(config, "tool-round");
  expect(task.state).toBe("completed");
  expect(s.requests).toHaveLength(2);
  // The allowlist leaves out the MCP server's "wait" tool.
  expect(toolNamesOf(s.requests[0]!).sort()).toEqual(["capital_of", "explode", "multiply"]);
  const anthropicResults = s.requests[1]!.body.messages.flatMap((m: any) =>
    Array.isArray(m.content) ? m.content.filter((p: any) => p.type === "tool_result") : [],
  );
  expect(anthropicResults).toHaveLength(4);
  const results = toolResultsOf(s.requests[1]!);
  expect(results.some((r) => r.includes('{"product":42}'))).toBe(true);
  expect(results.some((r) => r.includes("The capital of France is Paris"))).toBe(true);
  // The MCP error result and the registry tool's exception reach the model as errors.
  const errors = anthropicResults.filter((p: any) => p.is_error).map((p: any) => JSON.stringify(p.content));
  expect(errors.some((e: string) => e.includes("unknown country Atlantis"))).toBe(true);
  expect(errors.some((e: string) => e.includes("the explode tool always fails"))).toBe(true);
  const output = (task.result as { output: string }).output;
  expect(output).toContain('{"product":42}');
  expect(output).toContain("The capital of France is Paris");
  expect(task.result).toMatchObject({ usage: { requests: 2 }, model: "claude-test" });

  expect(await worker.stop("SIGTERM")).toBe(0);
  expect(alive(serverPids[0]!)).toBe(false);
  expect(existsSync(pids)).toBe(true);
}, 40_000);

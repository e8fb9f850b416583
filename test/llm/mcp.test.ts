/**
 * McpToolbox: stdio servers start with the first agent and stop with the last (or on close, a
 * stubborn one by signal); a streamable HTTP server is reached with the bearer token from its
 * variable; a server that fails to start fails the start, naming it; a tool call stops when the
 * task's signal fires.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { newTask } from "../../src/core/task.ts";
import { LlmClient } from "../../src/llm/client.ts";
import { McpToolbox } from "../../src/llm/mcp.ts";
import { ModelRunner } from "../../src/llm/runner.ts";
import { tempDir } from "../support/tmp.ts";
import { until } from "../support/wait.ts";
import { MCP_SERVER } from "../fixtures/llm/harness.ts";
import { answer } from "../fixtures/llm/mcp-methods.ts";
import { StandIn } from "../fixtures/llm/stand-in.ts";

const tmp = tempDir("converge-llm-mcp-");
const cleanups: (() => unknown)[] = [];
afterAll(async () => {
  for (const c of cleanups) await c();
  tmp.cleanup();
});

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const stdio = (name: string, env: Record<string, string> = {}) => ({
  name,
  command: process.execPath,
  args: [MCP_SERVER],
  env,
  pass_env: [],
});

describe("McpToolbox", () => {
  test("when two agents share it, the server starts once and stops when the last one leaves", async () => {
    const pids = join(tmp.path, "shared.pids");
    const box = new McpToolbox([stdio("geo", { MCP_FIXTURE_PIDS: pids })]);
    cleanups.push(() => box.close());
    await Promise.all([box.acquire(), box.acquire()]);
    expect([...box.tools.keys()].sort()).toEqual(["capital_of", "wait"]);
    const started = readFileSync(pids, "utf8").trim().split("\n").map(Number);
    expect(started).toHaveLength(1);
    await box.release();
    expect(alive(started[0]!)).toBe(true);
    await box.release();
    expect(alive(started[0]!)).toBe(false);
    expect(box.tools.size).toBe(0);
  });

  test("when a server ignores its closed stdin, close stops it with a signal", async () => {
    const box = new McpToolbox([stdio("stubborn", { MCP_FIXTURE_STUBBORN: "1" })]);
    cleanups.push(() => box.close());
    await box.acquire();
    const [pid] = await box.pids();
    await box.close();
    expect(alive(pid!)).toBe(false);
  }, 10_000);

  test("when a server fails to start, acquire fails naming it and nothing is left running", async () => {
    const pids = join(tmp.path, "failing.pids");
    const box = new McpToolbox([
      stdio("good", { MCP_FIXTURE_PIDS: pids }),
      { name: "broken", command: process.execPath, args: ["-e", "process.exit(3)"], env: {}, pass_env: [] },
    ]);
    const err = await box.acquire().catch((e) => e);
    expect(err.message).toStartWith('MCP server "broken" failed to start: it exited with code 3');
    const [good] = readFileSync(pids, "utf8").trim().split("\n").map(Number);
    await until(() => !alive(good!), "the good server to be stopped too");
  });

  test("a streamable HTTP server is called with the bearer token from its variable", async () => {
    const seen: string[] = [];
    const server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      async fetch(req) {
        seen.push(req.headers.get("authorization") ?? "");
        if (req.method !== "POST") return new Response(null, { status: 405 });
        const reply = await answer(await req.json());
        return reply === undefined ? new Response(null, { status: 202 }) : Response.json(reply);
      },
    });
    cleanups.push(() => server.stop(true));
    const box = new McpToolbox(
      [{ name: "remote", url: `http://127.0.0.1:${server.port}/mcp`, headers: {}, bearer_token_env: "REMOTE_TOKEN" }],
      { REMOTE_TOKEN: "t0k3n" },
    );
    cleanups.push(() => box.close());
    await box.acquire();
    const tool = box.tools.get("capital_of")!.tool;
    const out = await tool.execute!({ country: "Italy" }, { toolCallId: "1", messages: [] });
    expect(JSON.stringify(out)).toContain("The capital of Italy is Rome");
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((h) => h === "Bearer t0k3n")).toBe(true);
    await box.close();
  });

  test("when the task's signal fires during an MCP tool call, the call stops and the task rejects", async () => {
    const box = new McpToolbox([stdio("geo")]);
    cleanups.push(() => box.close());
    await box.acquire();
    const s = StandIn.start("openai", [{ toolCalls: [{ name: "wait", args: { ms: 60_000 } }] }]);
    cleanups.push(() => s.stop());
    const llm = await LlmClient.create({ provider: "openai", model: "m", baseUrl: s.url, apiKey: "k" });
    // Know when the tool call is under way: wrap the MCP tool before the runner builds its tools.
    const entry = box.tools.get("wait")!;
    const started = Promise.withResolvers<void>();
    const execute = entry.tool.execute!;
    entry.tool = { ...entry.tool, execute: (input, options) => (started.resolve(), execute(input, options)) };
    const runner = new ModelRunner({ llm, mcp: box });
    const abort = new AbortController();
    const running = runner.runTask(newTask({ id: "t" }), abort.signal);
    await started.promise;
    abort.abort(new Error("worker shutting down"));
    expect(await running.catch((e) => e.message)).toBe("worker shutting down");
    expect(llm.stats.tools.get("wait")).toEqual({ ok: 0, error: 1 });
  });
});

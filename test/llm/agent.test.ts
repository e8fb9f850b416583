/**
 * LlmAgent and LlmClient in one process, against a provider stand-in: cancellation, tool timeouts,
 * bounded retries, a 429 backing off every client on the store, and the decider (no call when
 * nothing is new; tool calls become decisions; invalid ones are logged and dropped; a decision
 * run through a runtime claims, reports and sends a signed message).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { Agent, type Decisions } from "../../src/core/agent.ts";
import { Message } from "../../src/core/message.ts";
import { newTask } from "../../src/core/task.ts";
import { ToolRegistry } from "../../src/core/tools.ts";
import { TaskManager } from "../../src/coordination/task-manager.ts";
import { LlmAgent } from "../../src/llm/agent.ts";
import { LlmClient } from "../../src/llm/client.ts";
import { LlmError } from "../../src/llm/errors.ts";
import { configureLogging, logLevel } from "../../src/observability/log.ts";
import { Metrics } from "../../src/observability/metrics.ts";
import { AgentRuntime } from "../../src/runtime/runtime.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import { LocalHub, LocalTransport } from "../../src/transport/local.ts";
import { until } from "../support/wait.ts";
import { StandIn, toolResultsOf, userText, type Provider, type Script } from "../fixtures/llm/stand-in.ts";

const standIns: StandIn[] = [];
afterAll(() => Promise.all(standIns.map((s) => s.stop())));

async function setup(script: Script, options: { provider?: Provider; store?: MemoryStore; retries?: number } = {}) {
  const provider = options.provider ?? "openai";
  const s = StandIn.start(provider, script);
  standIns.push(s);
  const llm = await LlmClient.create({
    provider,
    model: "m",
    baseUrl: s.url,
    apiKey: "k",
    store: options.store,
    requestRetries: options.retries ?? 0,
  });
  return { s, llm };
}

/** Log lines written while `fn` runs (at warn and above). */
async function logged(fn: () => Promise<unknown>): Promise<string> {
  let out = "";
  const level = logLevel();
  configureLogging({ level: "warn", sink: { write: (l) => void (out += l) } });
  try {
    await fn();
  } finally {
    configureLogging({ level, sink: { write: (l) => process.stderr.write(l) } });
  }
  return out;
}

describe("an LLM worker", () => {
  test("when its signal aborts during a request, the request is aborted and the task rejects with the reason", async () => {
    const { s, llm } = await setup([{ hang: true }]);
    const agent = new LlmAgent({ llm });
    const abort = new AbortController();
    const running = agent.runTask(newTask({ id: "t" }), { signal: abort.signal });
    await until(() => s.requests.length === 1, "the request");
    abort.abort(new Error("lease lost"));
    expect(await running.catch((e) => e.message)).toBe("lease lost");
    await until(() => s.requests[0]!.aborted, "the stand-in to see the abort");
    const m = llm.stats.addTo(new Metrics());
    expect(m.get("converge_llm_requests_total", { provider: "openai", model: "m", outcome: "aborted" })).toBe(1);
  });

  test("when a tool does not finish within the tool timeout, the model gets that as the tool's error", async () => {
    const { s, llm } = await setup((req) =>
      toolResultsOf(req).length ? { text: "gave up on it" } : { toolCalls: [{ name: "forever", args: {} }] },
    );
    const tools = new ToolRegistry();
    tools.register("forever", () => new Promise(() => {}), "Never returns");
    const agent = new LlmAgent({ llm, tools, toolTimeoutMs: 100 });
    const result = await agent.runTask(newTask({ id: "t" }));
    expect(result.output).toBe("gave up on it");
    expect(toolResultsOf(s.requests[1]!).join()).toContain('tool "forever" did not finish within 0.1 s');
    expect(llm.stats.tools.get("forever")).toEqual({ ok: 0, error: 1 });
  });

  test("when the provider keeps failing, the request is retried a bounded number of times, then fails with the reason", async () => {
    const { s, llm } = await setup(() => ({ status: 500, message: "upstream exploded" }), {
      provider: "anthropic",
      retries: 2,
    });
    const err = await new LlmAgent({ llm }).runTask(newTask({ id: "t" })).catch((e) => e);
    expect(err).toBeInstanceOf(LlmError);
    expect(err.message).toBe("anthropic request failed after 3 tries: HTTP 500: upstream exploded");
    expect(s.requests).toHaveLength(3);
  });

  test("when the provider refuses the key, nothing is retried", async () => {
    const { s, llm } = await setup(() => ({ status: 401, message: "invalid x-api-key" }), { retries: 3 });
    const err = await new LlmAgent({ llm }).runTask(newTask({ id: "t" })).catch((e) => e);
    expect(err.message).toBe("openai request failed: HTTP 401: invalid x-api-key");
    expect(s.requests).toHaveLength(1);
  });

  test("when one client gets a 429, another client on the same store waits out the back-off too", async () => {
    const store = new MemoryStore();
    const a = await setup([{ status: 429, headers: { "retry-after-ms": "400" } }, { text: "a" }], { store });
    // A second client of the same model at the same base URL shares the limit record.
    const shared = await LlmClient.create({
      provider: "openai",
      model: "m",
      baseUrl: a.s.url,
      apiKey: "k",
      store,
    });
    expect(shared.limiter.key).toBe(a.llm.limiter.key);
    const first = a.llm.generate({ prompt: "one" });
    await until(() => a.s.requests.length === 1 && a.s.requests[0]!.status === 429, "the 429");
    await until(
      async () => ((await store.get<{ backoffUntil?: number }>(a.llm.limiter.key))?.backoffUntil ?? 0) > 0,
      "the back-off",
    );
    const limitedAt = a.s.requests[0]!.at;
    const second = shared.generate({ prompt: "two" });
    await Promise.all([first, second]);
    expect(a.s.requests).toHaveLength(3);
    for (const r of a.s.requests.slice(1)) expect(r.at - limitedAt).toBeGreaterThanOrEqual(400);
  });
});

describe("an LLM decider", () => {
  const task = (id: string) => ({ ...newTask({ id, objective: `do ${id}` }), updatedAt: 1 });

  test("when a wake-up brings nothing new, the model is not called", async () => {
    const { s, llm } = await setup(() => ({ text: "nothing to do" }));
    const agent = new LlmAgent({ llm, mode: "decider" });
    expect(await agent.decide([], [])).toEqual([]);
    expect(s.requests).toHaveLength(0);
    expect(await agent.decide([], [task("a")])).toEqual([]);
    expect(s.requests).toHaveLength(1);
    expect(await agent.decide([], [task("a")])).toEqual([]); // the same task again: nothing new
    expect(s.requests).toHaveLength(1);
    const m = new Message({ sender: "x".repeat(64), payload: { hello: 1 } });
    await agent.decide([m], [task("a")]);
    expect(s.requests).toHaveLength(2);
    expect(userText(s.requests[1]!)).toContain('"hello": 1');
  });

  test("when the model calls decision tools, valid calls become decisions and invalid ones are logged and dropped", async () => {
    const { s, llm } = await setup([
      {
        toolCalls: [
          { name: "claim_task", args: { task_id: "a" } },
          { name: "claim_task", args: { task_id: "not-visible" } },
          { name: "send_message", args: { recipient: 42 } },
          { name: "report_task", args: { task_id: "a", result: { ok: true } } },
          { name: "join_pool", args: { pool_id: "p1" } },
          { name: "fly_away", args: {} },
        ],
      },
    ]);
    const agent = new LlmAgent({ llm, mode: "decider" });
    let decisions: Decisions = [];
    const log = await logged(async () => (decisions = await agent.decide([], [task("a")])));
    expect(decisions).toEqual([
      { type: "ClaimTask", taskId: "a" },
      { type: "ReportTask", taskId: "a", result: { ok: true } },
      { type: "JoinPool", poolId: "p1" },
    ]);
    expect(s.requests).toHaveLength(1); // a turn of decisions only is over: no second request
    expect(log).toContain("the model's tool call was refused and dropped");
    expect(log).toContain("no task not-visible among tasks_you_may_claim");
    expect(log).toContain("tool=send_message");
    expect(log).toContain("tool=fly_away");
  });

  test("run by a runtime, its decisions claim and report a task and send a message signed by the agent", async () => {
    const store = new MemoryStore();
    const tm = new TaskManager(store);
    const hub = new LocalHub();
    const inbox: Message[] = [];
    class Listener extends Agent {
      override decide(messages: readonly Message[]): Decisions {
        inbox.push(...messages);
        return [];
      }
    }
    const listener = new Listener();
    const { llm } = await setup((req) => {
      const t = /"id": "(job-\d+)"/.exec(userText(req))?.[1];
      return t
        ? {
            toolCalls: [
              { name: "claim_task", args: { task_id: t } },
              { name: "report_task", args: { task_id: t, result: { summary: "done by the model" } } },
              { name: "send_message", args: { recipient: listener.id, payload: { finished: t } } },
            ],
          }
        : { text: "nothing" };
    });
    const decider = new LlmAgent({ llm, mode: "decider" });
    const runtimes = [decider, listener].map(
      (a) =>
        new AgentRuntime(a, {
          transport: new LocalTransport({ agentId: a.id, hub }),
          taskManager: tm,
          pollIntervalMs: 100,
        }),
    );
    await Promise.all(runtimes.map((r) => r.start()));
    try {
      await tm.submit({ id: "job-1", objective: "summarize" });
      await until(async () => (await tm.get("job-1"))?.state === "completed", "the task to be reported", 10_000);
      expect((await tm.get("job-1"))!.result).toEqual({ summary: "done by the model" });
      expect((await tm.get("job-1"))!.assignedTo).toBe(decider.id);
      await until(() => inbox.length > 0, "the message");
      expect(inbox[0]!.payload).toEqual({ finished: "job-1" });
      expect(inbox[0]!.sender).toBe(decider.id);
      expect(inbox[0]!.verify(decider.identity.publicKey)).toBe(true);
    } finally {
      await Promise.all(runtimes.map((r) => r.stop()));
    }
  });
});

import { describe, expect, test } from "bun:test";
import { Agent, type Decisions } from "../../src/core/agent.ts";
import { claimTask, failTask, invokeTool, reportTask, sendMessage } from "../../src/core/decisions.ts";
import type { Message } from "../../src/core/message.ts";
import type { Task } from "../../src/core/task.ts";
import { ToolRegistry } from "../../src/core/tools.ts";
import { TaskManager } from "../../src/coordination/task-manager.ts";
import { AgentRuntime } from "../../src/runtime/runtime.ts";
import type { DecisionResult } from "../../src/runtime/executor.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import { LocalHub, LocalTransport } from "../../src/transport/local.ts";
import { until } from "../support/wait.ts";

class Echo extends Agent {
  seen: Message[] = [];
  override decide(messages: readonly Message[]): Decisions {
    this.seen.push(...messages);
    return messages
      .filter((m) => m.payload.ping !== undefined)
      .map((m) => sendMessage({ recipient: m.sender, payload: { pong: m.payload.ping } }));
  }
}

const local = (agent: Agent, hub: LocalHub) => new LocalTransport({ agentId: agent.id, hub });

describe("AgentRuntime", () => {
  test("messages wake the decide loop and its decisions are executed", async () => {
    const hub = new LocalHub();
    const a = new Echo();
    const b = new Echo();
    const ra = new AgentRuntime(a, { transport: local(a, hub), pollIntervalMs: 60_000 });
    const rb = new AgentRuntime(b, { transport: local(b, hub), pollIntervalMs: 60_000 });
    await ra.start();
    await rb.start();
    try {
      await ra.send({ recipient: b.id, payload: { ping: 7 } });
      await until(() => a.seen.some((m) => m.payload.pong === 7), "the pong");
      const pong = a.seen.find((m) => m.payload.pong === 7)!;
      expect(pong.sender).toBe(b.id);
      expect(pong.verify(b.identity.publicKey)).toBe(true);
    } finally {
      await ra.stop();
      await rb.stop();
    }
  });

  test("with an identity registry, unverifiable messages never reach the agent", async () => {
    const hub = new LocalHub();
    const a = new Echo();
    const b = new Echo();
    const known = new Map([[a.id, a.identity]]);
    const rb = new AgentRuntime(b, {
      transport: local(b, hub),
      identityRegistry: { get: (id) => known.get(id) },
      pollIntervalMs: 60_000,
    });
    const ta = local(a, hub);
    await ta.start();
    await rb.start();
    try {
      const stranger = new Agent();
      const { Message } = await import("../../src/core/message.ts");
      await ta.send(new Message({ recipient: b.id, payload: { n: 1 } })); // unsigned
      await ta.send(new Message({ recipient: b.id, payload: { n: 2 } }).sign(stranger.identity)); // unknown sender
      await ta.send(new Message({ recipient: b.id, payload: { n: 3 } }).sign(a.identity));
      await until(() => b.seen.length > 0, "the verified message");
      await Bun.sleep(20);
      expect(b.seen.map((m) => m.payload.n)).toEqual([3]);
    } finally {
      await rb.stop();
      await ta.stop();
    }
  });

  test("start and stop call the hooks once; stop is idempotent and stops the transport", async () => {
    const calls: string[] = [];
    class Hooked extends Agent {
      override onStart() {
        calls.push("start");
      }
      override onStop() {
        calls.push("stop");
      }
    }
    const a = new Hooked();
    const t = local(a, new LocalHub());
    const r = new AgentRuntime(a, { transport: t });
    await r.start();
    expect(r.running).toBe(true);
    await Promise.all([r.stop(), r.stop()]);
    await r.stop();
    expect(calls).toEqual(["start", "stop"]);
    expect(t.started).toBe(false);
    await expect(r.start()).rejects.toThrow(/already started/);
  });

  test("a failing decision is reported and the rest of the batch still runs", async () => {
    const tools = new ToolRegistry();
    tools.register("add", (args) => Number(args.a) + Number(args.b));
    tools.register("hang", () => new Promise(() => {}));
    tools.register("secret", () => "no");
    class Batch extends Agent {
      override decide(): Decisions {
        return [
          { type: "Nope" },
          invokeTool("add", { a: 2, b: 3 }),
          invokeTool("hang", {}, 20),
          invokeTool("secret"),
          invokeTool("missing"),
        ];
      }
    }
    const r = new AgentRuntime(new Batch(), { tools, toolAllowlist: ["add", "hang", "missing"] });
    const results = await r.pass();
    expect(results.map((x) => x.ok)).toEqual([false, true, false, false, false]);
    expect(results[0]).toMatchObject({ error: expect.stringContaining('no handler for decision type "Nope"') });
    expect(results[1]).toMatchObject({ value: 5 });
    expect(results[2]).toMatchObject({ error: expect.stringContaining("did not finish within 20 ms") });
    expect(results[3]).toMatchObject({ error: expect.stringContaining("not in this agent's tool allowlist") });
    expect(results[4]).toMatchObject({ error: expect.stringContaining('no tool named "missing"') });
  });

  test("guards refuse decisions before they run", async () => {
    class Sender extends Agent {
      override decide(): Decisions {
        return [sendMessage({ payload: {} })];
      }
    }
    const r = new AgentRuntime(new Sender(), {
      guards: [(d) => (d.type === "SendMessage" ? "SendMessage is not allowed" : undefined)],
    });
    const [res] = await r.pass();
    expect(res).toMatchObject({ ok: false, error: "refused by policy: SendMessage is not allowed" });
  });

  test("a lost claim is visible to the agent and cannot lead to a report", async () => {
    const tm = new TaskManager(new MemoryStore());
    await tm.submit({ id: "t" });
    await tm.claim("t", "someone-else");
    class Greedy extends Agent {
      override decide(): Decisions {
        return [claimTask("t"), reportTask("t", "mine"), failTask("t", "x")];
      }
    }
    const r = new AgentRuntime(new Greedy(), { taskManager: tm });
    const results: DecisionResult[] = await r.pass();
    expect(results.map((x) => x.ok)).toEqual([false, false, false]);
    expect(results[0]).toMatchObject({ error: expect.stringContaining("claim on task t lost") });
    expect(results[1]).toMatchObject({ error: expect.stringContaining("holds no lease on task t") });
    expect((await tm.get("t"))!.assignedTo).toBe("someone-else");
  });

  test("a decide agent claims and reports pending tasks it sees", async () => {
    const tm = new TaskManager(new MemoryStore());
    class Doubler extends Agent {
      override decide(_m: readonly Message[], tasks: readonly Task[]): Decisions {
        return tasks.flatMap((t) => [claimTask(t.id), reportTask(t.id, { y: Number(t.inputs.x) * 2 })]);
      }
    }
    const r = new AgentRuntime(new Doubler(), { taskManager: tm, pollIntervalMs: 60_000 });
    await r.start();
    try {
      const t = await tm.submit({ inputs: { x: 21 } });
      await until(async () => (await tm.get(t.id))!.state === "completed", "the task to complete");
      expect((await tm.get(t.id))!.result).toEqual({ y: 42 });
    } finally {
      await r.stop();
    }
  });

  test("a full inbox drops and counts instead of blocking", async () => {
    const hub = new LocalHub();
    const a = new Agent();
    const b = new Agent();
    const rb = new AgentRuntime(b, { transport: local(b, hub), inboxSize: 3, pollIntervalMs: 60_000 });
    // keep b's decide loop from draining: replace pass with a no-op wait
    const ta = local(a, hub);
    await ta.start();
    await rb.start();
    try {
      const { Message } = await import("../../src/core/message.ts");
      (rb as unknown as { pass: () => Promise<unknown[]> }).pass = async () => [];
      for (let i = 0; i < 10; i++) await ta.send(new Message({ recipient: b.id, payload: { i } }));
      await until(() => rb.inbox.received + rb.inbox.dropped === 10, "all arrivals");
      expect(rb.inbox.size).toBe(3);
      expect(rb.inbox.dropped).toBe(7);
    } finally {
      await rb.stop();
      await ta.stop();
    }
  });
});

describe("protocol decisions", () => {
  test("bids, votes, negotiation and delegation run through their managers as the agent", async () => {
    const { protocolManagers } = await import("../../src/runtime/protocols.ts");
    const store = new MemoryStore();
    const tm = new TaskManager(store);
    const protocols = protocolManagers(store);
    await protocols.auctions.open("a1", "gpu-hour", { type: "second-price" });
    const other = new Agent();
    await protocols.proposals.create({ id: "p1", options: ["yes", "no"], voters: [other.id] });
    await tm.submit({ id: "t" });
    class Busy extends Agent {
      override decide(): Decisions {
        return [
          { type: "SubmitBid", auctionId: "a1", amount: 5 },
          { type: "Vote", proposalId: "p1", choice: "yes" },
          { type: "Propose", sessionId: "s1", terms: { price: 3 }, recipient: other.id },
          { type: "Delegate", taskId: "t", to: other.id },
          claimTask("t"),
          { type: "Delegate", taskId: "t", to: other.id },
        ];
      }
    }
    const agent = new Busy();
    const r = new AgentRuntime(agent, { taskManager: tm, protocols });
    const results = await r.pass();
    expect(results.map((x) => x.ok)).toEqual([true, false, true, false, true, true]);
    expect(results[1]).toMatchObject({ error: expect.stringContaining(agent.id) });
    expect(results[3]).toMatchObject({ error: expect.stringContaining("holds no lease on task t") });
    expect((await protocols.auctions.close("a1")).winner).toBe(agent.id);
    expect((await protocols.negotiations.get("s1"))!.offers[0]!.from).toBe(agent.id);
    expect(await protocols.delegations.holder("t")).toBe(other.id);
  });
});

/**
 * LLM workers against a provider stand-in (OpenAI chat completions, a process of its own on
 * 127.0.0.1; test/fixtures/llm/stand-in.ts):
 *
 * 1. Zero latency: tasks/s through converge's LLM worker (8 LlmAgents × concurrency 4 in this
 *    process, a MemoryStore TaskManager; timed from the runtimes' start until the last task
 *    completes) next to a bare loop of the same provider library (`generateText` with
 *    @ai-sdk/openai, 32 calls in flight) against the same stand-in, and the ratios: once with all N
 *    tasks pending at the start, once fed so that at most 64 are unfinished at a time (the
 *    runtime's cost of finding work grows with the pending set; the model path's does not).
 * 2. 200 ms of simulated model latency: one real `converge run` process (8 agents × concurrency 4,
 *    SQLite store) and N tasks submitted before it starts; tasks/s from the first claim to the last
 *    completion (store clock), the most requests the stand-in (in this process) had in flight at
 *    once, and the converge process's peak RSS (VmRSS, sampled every 100 ms).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createOpenAI } from "@ai-sdk/openai";
import { generateText } from "ai";
import { TaskManager } from "../../src/coordination/task-manager.ts";
import type { Task } from "../../src/core/task.ts";
import { LlmAgent } from "../../src/llm/agent.ts";
import { LlmClient } from "../../src/llm/client.ts";
import { configureLogging } from "../../src/observability/log.ts";
import { AgentRuntime } from "../../src/runtime/runtime.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import { SqliteStore } from "../../src/store/sqlite.ts";
import { StandIn } from "../../test/fixtures/llm/stand-in.ts";
import { startCli, stopAll } from "../../test/support/cli.ts";
import { tempDir } from "../../test/support/tmp.ts";
import { fmt, report, rssMiB } from "./harness.ts";

configureLogging({ level: "error" });
const N_FAST = Number(process.env.LLM_BENCH_TASKS ?? 3000);
const N_SLOW = Number(process.env.LLM_BENCH_SLOW_TASKS ?? 800);
const AGENTS = 8;
const CONCURRENCY = 4;
const IN_FLIGHT = AGENTS * CONCURRENCY;
const STAND_IN = join(import.meta.dir, "..", "..", "test", "fixtures", "llm", "stand-in.ts");

async function standIn(latencyMs: number): Promise<{ url: string; stop: () => Promise<void> }> {
  const p = Bun.spawn([process.execPath, STAND_IN, "openai", String(latencyMs)], { stdout: "pipe", stderr: "inherit" });
  const reader = p.stdout.getReader();
  let out = "";
  while (!out.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("the stand-in exited before printing its URL");
    out += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return {
    url: out.trim(),
    stop: async () => {
      p.kill();
      await p.exited;
    },
  };
}

async function bareLoop(url: string, n: number): Promise<number> {
  const model = createOpenAI({ apiKey: "k", baseURL: url }).chat("bench-model");
  let next = 0;
  const one = async () => {
    for (let i = next++; i < n; i = next++)
      await generateText({ model, prompt: `Task bare-${i}\n\nObjective: echo\n\nInputs:\n{"i": ${i}}`, maxRetries: 0 });
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: IN_FLIGHT }, one));
  return n / ((performance.now() - t0) / 1000);
}

/**
 * Tasks/s through 8 LlmAgents × concurrency 4 in this process; `ahead` tasks are submitted before
 * the runtimes start and the rest as tasks complete, so that at most `ahead` are unfinished.
 */
async function throughConverge(url: string, n: number, prefix: string, ahead = n): Promise<number> {
  const store = new MemoryStore();
  const tm = new TaskManager(store);
  const llm = await LlmClient.create({ provider: "openai", model: "bench-model", baseUrl: url, apiKey: "k", store });
  let submitted = 0;
  const submit = () => tm.submit({ id: `${prefix}-${submitted}`, objective: "echo", inputs: { i: submitted++ } });
  while (submitted < Math.min(n, ahead)) await submit();
  const runtimes = Array.from(
    { length: AGENTS },
    () => new AgentRuntime(new LlmAgent({ llm }), { taskManager: tm, concurrency: CONCURRENCY, pollIntervalMs: 1000 }),
  );
  const done = () => runtimes.reduce((a, r) => a + (r.worker?.stats.completed ?? 0), 0);
  const t0 = performance.now();
  await Promise.all(runtimes.map((r) => r.start()));
  while (done() < n) {
    while (submitted < n && submitted - done() < ahead) await submit();
    await Bun.sleep(1);
  }
  const rate = n / ((performance.now() - t0) / 1000);
  await Promise.all(runtimes.map((r) => r.stop()));
  const failed = runtimes.reduce((a, r) => a + (r.worker?.stats.failed ?? 0) + (r.worker?.stats.retried ?? 0), 0);
  if (failed) throw new Error(`${failed} task attempts failed in the converge run`);
  await store.close();
  return rate;
}

async function slowProcess(url: string, n: number): Promise<{ rate: number; rssMiB: number }> {
  const dir = tempDir("converge-bench-llm-");
  try {
    const db = join(dir.path, "llm.db");
    const config = join(dir.path, "llm.yaml");
    writeFileSync(
      config,
      JSON.stringify({
        store_backend: "sqlite",
        store_path: db,
        agents: AGENTS,
        concurrency: CONCURRENCY,
        llm: { provider: "openai", model: "bench-model", base_url: url },
      }),
    );
    // Every task is submitted before the process starts, so that submitting (64 writers on the same
    // SQLite file) does not compete with the workers; timed from the first claim to the last completion.
    const store = new SqliteStore(db);
    const tm = new TaskManager(store);
    let next = 0;
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        for (let i = next++; i < n; i = next++) await tm.submit({ id: `slow-${i}`, objective: "echo", inputs: { i } });
      }),
    );
    const run = startCli(["run", "-c", config], { env: { OPENAI_API_KEY: "k", CONVERGE_LOG_LEVEL: "warn" } });
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(run.proc.pid))), 100);
    await run.waitFor("running, press Ctrl+C", 60_000);
    while ((await tm.openTasks()).length > 0) await Bun.sleep(50);
    let first = Infinity;
    let last = 0;
    for (let i = 0; i < n; i++) {
      const t = await store.get<Task>(`task:slow-${i}`);
      if (t?.state !== "completed") throw new Error(`task slow-${i} ended ${t?.state}`);
      first = Math.min(first, t.claimedAt!);
      last = Math.max(last, t.updatedAt);
    }
    clearInterval(sampler);
    await store.close();
    await run.stop("SIGTERM");
    return { rate: n / ((last - first) / 1000), rssMiB: peak };
  } finally {
    await stopAll();
    dir.cleanup();
  }
}

const fast = await standIn(0);
try {
  await bareLoop(fast.url, 300); // warm-up
  await throughConverge(fast.url, 300, "warm");
  const bare = await bareLoop(fast.url, N_FAST);
  const ours = await throughConverge(fast.url, N_FAST, "fast");
  const fed = await throughConverge(fast.url, N_FAST, "fed", 2 * IN_FLIGHT);
  const cond = `N=${N_FAST}, ${IN_FLIGHT} in flight, zero-latency OpenAI stand-in in its own process`;
  report("bare generateText loop (@ai-sdk/openai)", bare, "tasks/s", cond);
  report("converge LLM workers, all N pending at start", ours, "tasks/s", `${cond}; 8 agents x conc. 4, memory store`);
  report("converge LLM workers, <= 64 pending at a time", fed, "tasks/s", `${cond}; 8 agents x conc. 4, memory store`);
  console.log(
    `${"ratio converge / bare, all pending".padEnd(48)} ${fmt(ours / bare).padStart(12)}            (aim >= 0.8)`,
  );
  console.log(
    `${"ratio converge / bare, <= 64 pending".padEnd(48)} ${fmt(fed / bare).padStart(12)}            (aim >= 0.8)`,
  );
} finally {
  await fast.stop();
}

// The slow stand-in runs in this process (which only submits and polls), so that it can count the
// requests in flight.
const slow = StandIn.start("openai", () => ({ text: "done" }), { latencyMs: 200 });
slow.onRequest = () => void slow.requests.pop();
try {
  const { rate, rssMiB: peakMiB } = await slowProcess(slow.url, N_SLOW);
  const cond = `N=${N_SLOW}, 1 converge run, ${AGENTS} agents x conc. ${CONCURRENCY}, SQLite, stand-in latency 200 ms`;
  report("converge run LLM workers, 200 ms model latency", rate, "tasks/s", `${cond}; aim >= 120, ceiling 160`);
  report(
    "most requests in flight at once",
    slow.maxInFlight,
    "requests",
    `${cond}; agents x concurrency = ${IN_FLIGHT}`,
  );
  report("its peak RSS while doing so", peakMiB, "MiB", cond);
} finally {
  await slow.stop();
}

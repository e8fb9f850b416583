/**
 * Providers failing, through `converge run`: a 429 with `Retry-After: 2` is waited out (the next
 * request comes no sooner) and the task completes; a provider that is down for a while gets its
 * tasks retried until each completes exactly once; an unreachable base URL fails the task with a
 * clear reason after the retries, and the process stays up.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { TaskManager } from "../../src/coordination/task-manager.ts";
import { freePort, stopAll } from "../support/cli.ts";
import { useE2eEnvironment } from "../support/e2e.ts";
import { until } from "../support/wait.ts";
import { getTask, llmConfig } from "../fixtures/llm/harness.ts";
import { StandIn, taskIdOf } from "../fixtures/llm/stand-in.ts";
import { openStore, startWorker, submitViaCli, waitFinal } from "./fixtures/worker-support/harness.ts";

const standIns: StandIn[] = [];
const { tmp } = useE2eEnvironment({
  prefix: "converge-e2e-llm-failures-",
  cleanup: [stopAll, () => Promise.all(standIns.map((s) => s.stop()))],
});

test("when the provider answers 429 with Retry-After: 2, the next request comes no sooner than 2 s later and the task completes", async () => {
  const s = StandIn.start("mistral", [
    { status: 429, headers: { "retry-after": "2" }, message: "Requests rate limit exceeded" },
    { text: "finally" },
  ]);
  standIns.push(s);
  const spec = { backend: "sqlite" as const, path: join(tmp.path, "429.db") };
  const config = llmConfig(tmp.path, "429", spec, { provider: "mistral", base_url: s.url });
  const worker = await startWorker(config, { env: { MISTRAL_API_KEY: "k" } });
  await submitViaCli(config, [{ id: "limited", inputs: {} }]);
  const store = await openStore(spec);
  try {
    await waitFinal(new TaskManager(store), ["limited"], 20_000);
  } finally {
    await store.close();
  }
  const task = await getTask(config, "limited");
  expect(task.state).toBe("completed");
  expect(task.attempts).toBe(1);
  expect(task.result).toMatchObject({ output: "finally", usage: { requests: 1 } });
  expect(s.requests.map((r) => r.status)).toEqual([429, 200]);
  expect(s.requests[1]!.at - s.requests[0]!.at).toBeGreaterThanOrEqual(2000);
  expect(worker.stderr).toContain("rate limited by the provider; the fleet backs off");
  expect(await worker.stop("SIGTERM")).toBe(0);
}, 40_000);

test("when the provider is down for a while, tasks are retried and every one completes exactly once", async () => {
  const s = StandIn.start("openai", (req) => ({ text: `done ${taskIdOf(req)}` }));
  standIns.push(s);
  const spec = { backend: "sqlite" as const, path: join(tmp.path, "down.db") };
  const config = llmConfig(
    tmp.path,
    "down",
    spec,
    { provider: "openai", base_url: s.url, request_retries: 1 },
    { agents: 2, concurrency: 2 },
  );
  const worker = await startWorker(config, { env: { OPENAI_API_KEY: "k" } });
  await s.stop();
  const ids = Array.from({ length: 6 }, (_, i) => `down-${i}`);
  await submitViaCli(
    config,
    ids.map((id) => ({ id, inputs: {}, constraints: { max_retries: 20, retry_backoff_ms: 100 } })),
  );
  const store = await openStore(spec);
  const tm = new TaskManager(store);
  try {
    // Down until at least two attempts have failed on it.
    await until(
      async () => (await Promise.all(ids.map((id) => tm.get(id)))).filter((t) => t?.error).length >= 2,
      "attempts failing while the provider is down",
      20_000,
      50,
    );
    s.restart();
    await waitFinal(tm, ids, 30_000);
  } finally {
    await store.close();
  }
  for (const id of ids) {
    const t = await getTask(config, id);
    expect(t.state).toBe("completed");
    expect((t.result as { output: string }).output).toBe(`done ${id}`);
  }
  // Each task got exactly one answer: nothing ran twice once the provider was back.
  const answered = s.requests.filter((r) => r.status === 200).map((r) => taskIdOf(r));
  expect(answered.sort()).toEqual([...ids].sort());
  expect(worker.stderr).toContain("model request failed; retrying");
  expect(await worker.stop("SIGTERM")).toBe(0);
}, 60_000);

test("when the base URL is unreachable, the task fails with a clear reason after the retries and the process stays up", async () => {
  const spec = { backend: "sqlite" as const, path: join(tmp.path, "unreachable.db") };
  const dead = `http://127.0.0.1:${freePort()}/v1`;
  const config = llmConfig(tmp.path, "unreachable", spec, {
    provider: "openai-compatible",
    model: "llama3",
    base_url: dead,
    request_retries: 2,
  });
  const worker = await startWorker(config);
  await submitViaCli(config, [{ id: "nowhere", inputs: {} }]);
  const store = await openStore(spec);
  try {
    await waitFinal(new TaskManager(store), ["nowhere"], 20_000);
  } finally {
    await store.close();
  }
  const t = await getTask(config, "nowhere");
  expect(t.state).toBe("failed");
  expect(t.error).toMatch(/^openai-compatible request failed after 3 tries: Cannot connect to API/);
  expect(t.error).toContain(dead);
  expect(worker.proc.exitCode).toBeNull();
  expect(await worker.stop("SIGTERM")).toBe(0);
  expect(worker.stdout).toContain("0 tasks completed, 1 failed");
}, 40_000);

test("when a request waits longer than the lease, the lease is renewed meanwhile and the task runs once", async () => {
  const s = StandIn.start("anthropic", [
    { status: 429, headers: { "retry-after": "3" }, message: "rate limited" },
    { text: "after the wait" },
  ]);
  standIns.push(s);
  const spec = { backend: "sqlite" as const, path: join(tmp.path, "lease.db") };
  const config = llmConfig(tmp.path, "lease", spec, { provider: "anthropic", base_url: s.url }, { agents: 2 });
  const worker = await startWorker(config, { env: { ANTHROPIC_API_KEY: "k" } });
  await submitViaCli(config, [{ id: "patient", inputs: {}, constraints: { claim_ttl_sec: 1 } }]);
  const store = await openStore(spec);
  try {
    await waitFinal(new TaskManager(store), ["patient"], 20_000);
  } finally {
    await store.close();
  }
  const t = await getTask(config, "patient");
  expect(t.state).toBe("completed");
  expect(t.attempts).toBe(1); // never taken over: no second agent started on it
  expect(s.requests.map((r) => r.status)).toEqual([429, 200]);
  expect(await worker.stop("SIGTERM")).toBe(0);
}, 40_000);

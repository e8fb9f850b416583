/**
 * Fleet-wide rate limits: three `converge run` processes sharing one store (SQLite, then Redis),
 * each with two LLM workers, and `requests_per_minute: 4` over a window shortened (through an
 * option not documented for users) to 1.5 s. The stand-in never sees more than 4 requests in any
 * window, and every task completes.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { TaskManager } from "../../src/coordination/task-manager.ts";
import { stopAll, type Running } from "../support/cli.ts";
import { useE2eEnvironment } from "../support/e2e.ts";
import { llmConfig, mostInWindow } from "../fixtures/llm/harness.ts";
import { StandIn, taskIdOf } from "../fixtures/llm/stand-in.ts";
import { openStore, startWorker, submitViaCli, waitFinal, type StoreSpec } from "./fixtures/worker-support/harness.ts";

const standIns: StandIn[] = [];
const { tmp, redis } = useE2eEnvironment({
  prefix: "converge-e2e-llm-limits-",
  redis: true,
  cleanup: [stopAll, () => Promise.all(standIns.map((s) => s.stop()))],
});

const WINDOW_MS = 1500;
const LIMIT = 4;
const TASKS = 10;

for (const backend of ["sqlite", "redis"] as const) {
  test(`when 3 processes share a ${backend} store, the provider never sees more than requests_per_minute in any window`, async () => {
    const s = StandIn.start("openai", (req) => ({ text: `ok ${taskIdOf(req)}` }));
    standIns.push(s);
    const spec: StoreSpec =
      backend === "sqlite" ? { backend, path: join(tmp.path, "limits.db") } : { backend, url: redis.url };
    const config = llmConfig(
      tmp.path,
      `limits-${backend}`,
      spec,
      { provider: "openai", base_url: s.url, requests_per_minute: LIMIT },
      { agents: 2, concurrency: 2 },
    );
    const env = { OPENAI_API_KEY: "k", CONVERGE_LLM_RATE_WINDOW_MS: String(WINDOW_MS) };
    const workers: Running[] = await Promise.all([1, 2, 3].map(() => startWorker(config, { env })));
    const ids = Array.from({ length: TASKS }, (_, i) => `${backend}-limited-${i}`);
    await submitViaCli(
      config,
      ids.map((id) => ({ id, inputs: {} })),
    );
    const store = await openStore(spec);
    try {
      await waitFinal(new TaskManager(store), ids, 40_000);
    } finally {
      await store.close();
    }
    expect(s.requests).toHaveLength(TASKS);
    expect(mostInWindow(s.requests, WINDOW_MS)).toBeLessThanOrEqual(LIMIT);
    // The limit was what paced them: 10 requests at 4 per window span more than 2 windows.
    const span = s.requests[TASKS - 1]!.at - s.requests[0]!.at;
    expect(span).toBeGreaterThanOrEqual(2 * WINDOW_MS);
    expect(await Promise.all(workers.map((w) => w.stop("SIGTERM")))).toEqual([0, 0, 0]);
    // The processes shared the work (and so the limit).
    const completed = workers.map((w) => Number(/(\d+) tasks? completed/.exec(w.stdout)?.[1] ?? 0));
    expect(completed.reduce((a, b) => a + b, 0)).toBe(TASKS);
    expect(completed.filter((n) => n > 0).length).toBeGreaterThan(1);
  }, 90_000);
}

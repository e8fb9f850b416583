/**
 * A busy worker on a synchronous store (SQLite, memory) must not hold the event loop: its lease
 * renewals, heartbeats, signal handlers and HTTP server run on timers and I/O of the same process.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { Agent } from "../../src/core/agent.ts";
import { TaskManager } from "../../src/coordination/task-manager.ts";
import { AgentRuntime } from "../../src/runtime/runtime.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import { SqliteStore } from "../../src/store/sqlite.ts";
import type { Store } from "../../src/store/store.ts";
import { watchLoopGaps } from "../support/loop-gaps.ts";
import { tempDir } from "../support/tmp.ts";

const tmp = tempDir("converge-fairness-");
afterAll(() => tmp.cleanup());

class Noop extends Agent {
  override onTask(): null {
    return null;
  }
}

const backends: [string, number, () => Store][] = [
  ["memory", 40_000, () => new MemoryStore()],
  ["sqlite", 5_000, () => new SqliteStore(join(tmp.path, "fair.db"))],
];

describe("when a worker drains a backlog", () => {
  for (const [name, n, open] of backends) {
    test(`${name}: a 5 ms interval timer keeps ticking; no gap comes near the drain's length`, async () => {
      const store = open();
      const tm = new TaskManager(store);
      for (let i = 0; i < n; i += 1000)
        await tm.submitMany(Array.from({ length: 1000 }, (_, j) => ({ objective: "x", inputs: { i: i + j } })));
      const rt = new AgentRuntime(new Noop({ capabilities: [] }), { taskManager: tm, concurrency: 4 });
      const gaps = watchLoopGaps(5);
      const started = performance.now();
      const drained = Promise.withResolvers<void>();
      let completed = 0;
      const off = tm.on("completed", () => {
        if (++completed === n) drained.resolve();
      });
      try {
        await rt.start();
        await drained.promise;
        const drainMs = performance.now() - started;
        // Held for the whole drain, the one gap would be as long as the drain itself.
        expect(gaps.maxGapMs).toBeLessThan(drainMs / 4);
        expect(rt.worker!.stats.completed).toBe(n);
      } finally {
        gaps.stop();
        off();
        await rt.stop();
        await store.close();
      }
    }, 60_000);
  }
});

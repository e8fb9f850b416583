/**
 * End to end, on SQLite and on Redis: retention. `converge tasks clean` removes exactly the
 * finished tasks it names (state and age, or all but the newest N), in batches, and says how many;
 * the `retention` config cleans inside `converge run`, in one process of two at a time, and the
 * other takes over once the first is killed.
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { TaskManager } from "../../src/coordination/task-manager.ts";
import { type FinalState, newTask } from "../../src/core/task.ts";
import type { Store } from "../../src/store/store.ts";
import { runCli, startCli, stopAll } from "../support/cli.ts";
import { useE2eEnvironment } from "../support/e2e.ts";
import { until } from "../support/wait.ts";
import { MODULES, openStore, writeConfig, type StoreSpec } from "./fixtures/worker-support/harness.ts";

const { tmp, redis } = useE2eEnvironment({ prefix: "converge-e2e-retention-", redis: true, cleanup: [stopAll] });

const backends: [string, (n: number) => StoreSpec][] = [
  ["sqlite", (n) => ({ backend: "sqlite", path: join(tmp.path, `retention-${n}.db`) })],
  ["redis", (n) => ({ backend: "redis", url: redis.url.replace(/\/0$/, `/${5 + n}`) })],
];

/** Stores tasks already finished in `state`, `ageMs` ago by the store's clock (as a report long ago left them). */
async function seed(store: Store, ids: string[], state: FinalState, ageMs: number): Promise<void> {
  const tm = new TaskManager(store);
  const now = await tm.now();
  const at = now - ageMs;
  const records = ids.map((id, i) => ({ ...newTask({ id }, at, at * 1024 + i), state, result: { id }, updatedAt: at }));
  expect(await tm.queue.submit(records, now)).toEqual(ids.map(() => true));
}

const range = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
const HOUR = 3_600_000;

for (const [name, specOf] of backends) {
  describe(`retention (${name})`, () => {
    test("tasks clean removes exactly the finished tasks it names, in batches, and says how many", async () => {
      const spec = specOf(0);
      const config = writeConfig(tmp.path, `clean-${name}`, spec, {});
      const store = await openStore(spec);
      try {
        const tm = new TaskManager(store);
        await seed(store, range("old", 1203), "completed", 2 * HOUR);
        await seed(store, ["recent"], "completed", 60_000);
        await seed(store, ["old-failed-1", "old-failed-2"], "failed", 2 * HOUR);
        await seed(store, ["old-cancelled"], "cancelled", 2 * HOUR);
        await tm.submit({ id: "open" });

        const cleaned = await runCli(["tasks", "clean", "-c", config, "--state", "completed", "--older-than", "1h"]);
        expect({ code: cleaned.code, stdout: cleaned.stdout, stderr: cleaned.stderr }).toEqual({
          code: 0,
          stdout: "removed 1203 completed tasks older than 1h\n",
          stderr: "",
        });
        const left = (await tm.list()).map((t) => t.id).sort();
        expect(left).toEqual(["old-cancelled", "old-failed-1", "old-failed-2", "open", "recent"]);

        const kept = await runCli(["tasks", "clean", "-c", config, "--state", "failed,cancelled", "--keep", "1"]);
        expect(kept.stdout).toBe(
          "removed 1 failed task beyond the newest 1\nremoved 0 cancelled tasks beyond the newest 1\n",
        );
        expect((await tm.list()).map((t) => t.id).sort()).toEqual(["old-cancelled", "old-failed-2", "open", "recent"]);
        expect(await tm.counts()).toEqual({
          pending: 1,
          assigned: 0,
          running: 0,
          completed: 1,
          failed: 1,
          cancelled: 1,
        });

        for (const [args, error] of [
          [["--state", "completed", "--older-than", "7 days"], /--older-than must be a duration such as 30s/],
          [["--state", "pending", "--older-than", "1h"], /--state must be completed, failed or cancelled/],
          [["--older-than", "1h"], /needs --state/],
          [["--state", "failed"], /needs one of --older-than DURATION or --keep N/],
        ] as const) {
          const r = await runCli(["tasks", "clean", "-c", config, ...args]);
          expect(r.code).toBe(2);
          expect(r.stderr).toMatch(error);
        }
        expect((await tm.list()).length).toBe(4);
      } finally {
        await store.close();
      }
    });

    test("the retention config cleans in one process of two at a time; the other takes over when it dies", async () => {
      const spec = specOf(1);
      const config = writeConfig(tmp.path, `retain-${name}`, spec, {
        agent: join(MODULES, "producer-side.js"),
        retention: { completed: "1h", interval: "1s" },
      });
      const store = await openStore(spec);
      try {
        const tm = new TaskManager(store);
        const completed = async () => (await tm.counts()).completed;
        await seed(store, range("first", 50), "completed", 2 * HOUR);
        await seed(store, ["young"], "completed", 60_000);
        const a = startCli(["run", "-c", config]);
        await a.waitFor("removed 50 completed tasks older than 1h", 30_000, "stderr");
        expect(a.stdout).toContain("retention: completed tasks older than 1h, every 1s (one process at a time)");
        const b = startCli(["run", "-c", config]);
        await b.waitFor("running, press Ctrl+C", 30_000);

        await seed(store, range("second", 20), "completed", 2 * HOUR);
        await until(async () => (await completed()) === 1, "the second batch to be removed", 20_000, 50);
        await a.waitFor("removed 20 completed tasks older than 1h", 10_000, "stderr");
        expect(b.stderr).not.toContain("retention: removed");
        expect(b.stderr).not.toContain("now cleans finished tasks");

        a.proc.kill("SIGKILL");
        await a.exited;
        await seed(store, range("third", 30), "completed", 2 * HOUR);
        // The lease (three intervals) runs out, and b takes over.
        await b.waitFor("removed 30 completed tasks older than 1h", 30_000, "stderr");
        expect(b.stderr).toContain("this process now cleans finished tasks");
        expect((await tm.list("completed")).map((t) => t.id)).toEqual(["young"]);
        expect(await b.stop("SIGTERM")).toBe(0);
      } finally {
        await store.close();
      }
    });
  });
}

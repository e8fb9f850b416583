/**
 * End to end, on SQLite and on Redis: priorities, delays and timeouts as one worker process sees
 * them. Tasks are submitted through the CLI before a single-slot `converge run --until-idle`
 * starts: it takes them by priority (ties in submit order), does not claim a delayed task before
 * it is due (however high its priority), aborts a handler at `timeout_sec` through its signal (the
 * attempt fails, and is retried under max_retries), stays up while the delayed task waits, stops
 * once idle, and exits 1 because a task it handled ended failed.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { TaskManager } from "../../src/coordination/task-manager.ts";
import { runCli, startCli, stopAll } from "../support/cli.ts";
import { useE2eEnvironment } from "../support/e2e.ts";
import { MODULES, openStore, writeConfig, type StoreSpec } from "./fixtures/worker-support/harness.ts";

const { tmp, redis } = useE2eEnvironment({ prefix: "converge-e2e-scheduling-", redis: true, cleanup: [stopAll] });

const backends: [string, () => StoreSpec][] = [
  ["sqlite", () => ({ backend: "sqlite", path: join(tmp.path, "scheduling.db") })],
  ["redis", () => ({ backend: "redis", url: redis.url.replace(/\/0$/, "/4") })],
];

/** Submitted in this order; the worker must take them in the order of EXPECTED. */
const BY_PRIORITY: [string, number][] = [
  ["low-1", 0],
  ["high-1", 5],
  ["mid-1", 2],
  ["high-2", 5],
  ["low-2", 0],
  ["mid-2", 2],
  ["neg", -3],
];
const EXPECTED = ["high-1", "high-2", "mid-1", "mid-2", "low-1", "low-2", "neg"];

for (const [name, specOf] of backends) {
  describe(`priorities, delays and timeouts (${name})`, () => {
    test("one worker takes tasks by priority, claims a delayed one only once due, and aborts a handler at its timeout", async () => {
      const spec = specOf();
      const log = join(tmp.path, `handled-${name}.log`);
      writeFileSync(log, "");
      const config = writeConfig(tmp.path, `scheduling-${name}`, spec, { agent: join(MODULES, "producer-side.js") });
      const cli = (...args: string[]) => runCli([...args, "-c", config]);

      const file = join(tmp.path, `prio-${name}.jsonl`);
      writeFileSync(
        file,
        BY_PRIORITY.map(([id, priority]) => JSON.stringify({ id, priority, inputs: { x: 1 } })).join("\n"),
      );
      expect((await cli("tasks", "submit", "--file", file, "--capabilities", "work")).code).toBe(0);
      const delayed = await cli(
        "tasks",
        "submit",
        "--id",
        "delayed",
        "--inputs",
        '{"x": 3}',
        "--capabilities",
        "work",
        "--priority",
        "100",
        "--delay",
        "2",
      );
      const slow = await cli(
        "tasks",
        "submit",
        "--id",
        "slow",
        "--inputs",
        '{"hang": true}',
        "--capabilities",
        "work",
        "--priority=-10",
        "--constraints",
        '{"timeout_sec": 0.5, "max_retries": 1, "retry_backoff_ms": 0}',
      );
      expect([delayed.code, slow.code]).toEqual([0, 0]);

      // tasks list shows each task's priority, and when the delayed one comes due.
      const rows = (await cli("tasks", "list")).stdout.split("\n");
      expect(rows[0]).toMatch(/^ID\s+STATE\s+PRIORITY\s+ATTEMPTS\s+HOLDER\s+LEASE LEFT\s+DUE IN\s+OBJECTIVE/);
      expect(rows).toContainEqual(expect.stringMatching(/^delayed\s+pending\s+100\s+0\s+[12]s$/));
      expect(rows).toContainEqual(expect.stringMatching(/^high-2\s+pending\s+5\s+0$/));
      expect(rows).toContainEqual(expect.stringMatching(/^slow\s+pending\s+-10\s+0$/));

      const run = startCli(["run", "-c", config, "--until-idle", "--idle-sec", "1"], { env: { TASK_LOG: log } });
      expect(await run.waitExit(40_000)).toBe(1);
      expect(run.stdout).toContain("8 tasks completed, 1 failed");
      expect(run.stderr).toContain("idle for 1s: no open task is visible to these agents; stopping");

      const lines = readFileSync(log, "utf8").trimEnd().split("\n");
      const starts = lines.filter((l) => l.startsWith("start ")).map((l) => l.split(" ")[1]!);
      expect(starts.filter((id) => EXPECTED.includes(id))).toEqual(EXPECTED);

      const store = await openStore(spec);
      try {
        const tm = new TaskManager(store);
        const d = (await tm.get("delayed"))!;
        expect(d.state).toBe("completed");
        expect(d.attempts).toBe(1);
        expect(d.claimedAt!).toBeGreaterThanOrEqual(d.createdAt + 2000);
        // The handler ran once it was due, after every task of lower priority that was due at once.
        expect(starts.indexOf("delayed")).toBeGreaterThan(starts.indexOf("neg"));

        const s = (await tm.get("slow"))!;
        expect([s.state, s.attempts, s.error]).toEqual(["failed", 2, "timed out after 0.5 s"]);
        expect(lines.filter((l) => l.startsWith("aborted slow"))).toEqual([
          "aborted slow 1 timed out after 0.5 s",
          "aborted slow 2 timed out after 0.5 s",
        ]);
      } finally {
        await store.close();
      }
    });
  });
}

/**
 * End to end: a command's output arrives whole through a pipe whose reader is slow to start, as in
 * `converge tasks list --json | (sleep 1; cat)`. The kernel's pipe holds 64 KiB; a process that
 * ended before the rest was written would lose it (process.exit() did: 64,820 of 124,692 bytes).
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { TaskManager } from "../../src/coordination/task-manager.ts";
import { openChoice } from "../../src/cli/store-config.ts";
import { converge, stopAll } from "../support/cli.ts";
import { useE2eEnvironment } from "../support/e2e.ts";

const { tmp, redis } = useE2eEnvironment({ prefix: "converge-cli-output-", redis: true, cleanup: [stopAll] });
// bunfig.toml's [test] timeout is not a Bun setting; processes under load need more than the default 5 s.
setDefaultTimeout(30_000);

const TASKS = 400;

/** Runs converge with its stdout into `(sleep 1; cat)`: a reader that reads nothing for a second. */
async function throughSlowPipe(args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  const p = Bun.spawn(["sh", "-c", `"$@" | (sleep 1; cat)`, "sh", ...converge(), ...args], {
    stdout: "pipe",
    stderr: "pipe",
    stdin: "ignore",
    env: { ...process.env, NO_COLOR: "1" },
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(p.stdout).text(),
    new Response(p.stderr).text(),
    p.exited,
  ]);
  return { stdout, stderr, code };
}

describe.concurrent("when stdout is a pipe read late", () => {
  for (const backend of ["sqlite", "redis"] as const) {
    test(`tasks list prints all ${TASKS} tasks, as JSON lines and as a table (${backend})`, async () => {
      const location = backend === "redis" ? redis.url.replace(/\/0$/, "/1") : join(tmp.path, "slow.sqlite3");
      const cfg = join(tmp.path, `slow-${backend}.yaml`);
      writeFileSync(cfg, `store_backend: ${backend}\nstore_path: ${location}\n`);
      const store = await openChoice({ backend, location });
      try {
        const tm = new TaskManager(store);
        // About 300 bytes per task: 400 of them are twice what a pipe holds.
        for (let i = 0; i < TASKS; i++)
          await tm.submit({ id: `t-${String(i).padStart(3, "0")}`, objective: "x".repeat(200), inputs: { i } });
      } finally {
        await store.close();
      }
      const json = await throughSlowPipe(["tasks", "list", "--json", "-c", cfg]);
      expect({ code: json.code, stderr: json.stderr }).toEqual({ code: 0, stderr: "" });
      expect(json.stdout.length).toBeGreaterThan(2 * 65_536);
      const lines = json.stdout.trimEnd().split("\n");
      expect(lines.map((l) => JSON.parse(l).id).sort()).toEqual(
        Array.from({ length: TASKS }, (_, i) => `t-${String(i).padStart(3, "0")}`),
      );
      const table = await throughSlowPipe(["tasks", "list", "-c", cfg]);
      expect({ code: table.code, stderr: table.stderr }).toEqual({ code: 0, stderr: "" });
      expect(table.stdout.endsWith(`\n${TASKS} tasks\n`)).toBe(true);
      expect(table.stdout.split("\n").filter((l) => l.startsWith("t-"))).toHaveLength(TASKS);
    });
  }
});

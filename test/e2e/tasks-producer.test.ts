/**
 * End to end, on SQLite and on Redis: the producer side against a running `converge run` worker.
 * `converge tasks submit --wait` with its three exit codes (0 completed, 1 failed or cancelled,
 * 124 timeout); TaskManager.waitFor and completion events in this process hearing what the worker
 * process finishes; `converge tasks wait`; a 10,000-line JSON Lines submit; a bad line that
 * submits nothing; and the warnings at submit.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { TaskManager } from "../../src/coordination/task-manager.ts";
import type { Task } from "../../src/core/task.ts";
import type { Store } from "../../src/store/store.ts";
import { runCli, startCli, stopAll, type Running } from "../support/cli.ts";
import { useE2eEnvironment } from "../support/e2e.ts";
import { MODULES, openStore, startWorker, writeConfig, type StoreSpec } from "./fixtures/worker-support/harness.ts";

const { tmp, redis } = useE2eEnvironment({ prefix: "converge-e2e-producer-", redis: true, cleanup: [stopAll] });

const backends: [string, () => StoreSpec][] = [
  ["sqlite", () => ({ backend: "sqlite", path: join(tmp.path, "producer.db") })],
  ["redis", () => ({ backend: "redis", url: redis.url.replace(/\/0$/, "/3") })],
];

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

for (const [name, specOf] of backends) {
  describe(`the producer side (${name})`, () => {
    let config: string;
    let worker: Running;
    let store: Store;
    let tm: TaskManager;
    const cli = (...args: string[]) => runCli([...args, "-c", config]);

    beforeAll(async () => {
      const spec = specOf();
      config = writeConfig(tmp.path, `producer-${name}`, spec, {
        agents: 2,
        concurrency: 2,
        agent: join(MODULES, "producer-side.js"),
      });
      worker = await startWorker(config);
      store = await openStore(spec);
      tm = new TaskManager(store);
    });

    afterAll(async () => {
      await store?.close();
      if (worker) expect(await worker.stop("SIGTERM")).toBe(0);
    });

    test("when the task completes, submit --wait prints its id, then its result, and exits 0", async () => {
      const r = await cli("tasks", "submit", "--inputs", '{"x": 21}', "--capabilities", "work", "--wait");
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
      const [id, result, ...rest] = r.stdout.trimEnd().split("\n");
      expect(id).toMatch(UUID);
      expect(JSON.parse(result!)).toEqual({ doubled: 42 });
      expect(rest).toEqual([]);
      expect((await tm.get(id!))!.state).toBe("completed");
    });

    test("when the task fails, submit --wait says why on stderr and exits 1", async () => {
      const r = await cli(
        "tasks",
        "submit",
        "--id",
        `fails-${name}`,
        "--inputs",
        '{"fail": "no"}',
        "--capabilities",
        "work",
        "--wait",
      );
      expect(r.code).toBe(1);
      expect(r.stdout).toBe(`fails-${name}\n`);
      expect(r.stderr).toBe(`converge: task "fails-${name}" failed after 1 attempt: failed on purpose: no\n`);
    });

    test("when the task is cancelled while awaited, submit --wait exits 1", async () => {
      const id = `cancel-${name}`;
      const waiting = startCli(["tasks", "submit", "-c", config, "--id", id, "--capabilities", "nobody", "--wait"]);
      await waiting.waitFor(`${id}\n`);
      const cancelled = await cli("tasks", "cancel", id);
      expect(cancelled.stdout).toBe(`${id} cancelled\n`);
      expect(await waiting.waitExit()).toBe(1);
      expect(waiting.stderr).toContain(`converge: task "${id}" was cancelled\n`);
    });

    test("when the task does not finish in time, submit --wait --timeout exits 124 and says its state", async () => {
      const r = await cli(
        "tasks",
        "submit",
        "--id",
        `late-${name}`,
        "--capabilities",
        "nobody",
        "--wait",
        "--timeout",
        "1",
      );
      expect(r.code).toBe(124);
      expect(r.stdout).toBe(`late-${name}\n`);
      expect(r.stderr).toEndWith(`converge: task "late-${name}" did not finish within 1 s (it is pending)\n`);
      await tm.cancel(`late-${name}`);
    });

    test("waitFor and completion events in this process hear what the worker process finishes", async () => {
      const ids = ["ev-1", "ev-2", "ev-3"].map((id) => `${id}-${name}`) as [string, string, string];
      const heard: Task[] = [];
      const completed = new Promise<void>((resolve) => {
        const off = tm.on("completed", (t) => {
          if (!ids.includes(t.id)) return;
          heard.push(t);
          if (heard.length === 2) {
            off();
            resolve();
          }
        });
      });
      const failedEvent = new Promise<Task>((resolve) => {
        const off = tm.on("failed", (t) => {
          if (t.id !== ids[2]) return;
          off();
          resolve(t);
        });
      });
      await tm.submitMany([
        { id: ids[0], inputs: { x: 1 }, requiredCapabilities: ["work"] },
        { id: ids[1], inputs: { x: 2 }, requiredCapabilities: ["work"] },
        { id: ids[2], inputs: { fail: "event" }, requiredCapabilities: ["work"] },
      ]);
      const done = await Promise.all(ids.map((id) => tm.waitFor(id, { timeoutMs: 30_000 })));
      expect(done.map((t) => [t.id, t.state, t.result])).toEqual([
        [ids[0], "completed", { doubled: 2 }],
        [ids[1], "completed", { doubled: 4 }],
        [ids[2], "failed", null],
      ]);
      await completed;
      expect(heard.map((t) => t.id).sort()).toEqual([ids[0], ids[1]]);
      expect((await failedEvent).error).toBe("failed on purpose: event");
    });

    test("tasks wait --id: a summary and exit 0 when all completed, 1 when one failed", async () => {
      const good = [`w1-${name}`, `w2-${name}`];
      const lines = good.map((id, i) => JSON.stringify({ id, inputs: { x: i }, capabilities: ["work"] }));
      writeFileSync(join(tmp.path, `good-${name}.jsonl`), `${lines.join("\n")}\n`);
      expect((await cli("tasks", "submit", "--file", join(tmp.path, `good-${name}.jsonl`))).stdout).toBe(
        `${good.join("\n")}\n`,
      );
      const ok = await cli("tasks", "wait", "--id", good[0]!, "--id", good[1]!, "--timeout", "30");
      expect({ code: ok.code, stdout: ok.stdout, stderr: ok.stderr }).toEqual({
        code: 0,
        stdout: "2 tasks: 2 completed, 0 failed, 0 cancelled\n",
        stderr: "",
      });
      const bad = await cli("tasks", "wait", "--id", good[0]!, "--id", `fails-${name}`, "--timeout", "30");
      expect(bad.code).toBe(1);
      expect(bad.stdout).toBe(
        `failed  fails-${name}  failed on purpose: no\n2 tasks: 1 completed, 1 failed, 0 cancelled\n`,
      );
      expect((await cli("tasks", "wait", "--id", "no-such-task")).code).toBe(3);
    });

    test("submit --file --wait prints the ids, then the summary of them all, and exits as tasks wait does", async () => {
      const file = join(tmp.path, `wait-file-${name}.jsonl`);
      const ids = [`fw1-${name}`, `fw2-${name}`, `fw3-${name}`];
      writeFileSync(
        file,
        [
          JSON.stringify({ id: ids[0], inputs: { x: 1 } }),
          JSON.stringify({ id: ids[1], inputs: { fail: "file" } }),
          JSON.stringify({ id: ids[2], inputs: { x: 3 }, priority: 9 }),
        ].join("\n"),
      );
      const r = await cli("tasks", "submit", "--file", file, "--capabilities", "work", "--wait", "--timeout", "30");
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 1, stderr: "" });
      expect(r.stdout).toBe(
        `${ids.join("\n")}\nfailed  ${ids[1]}  failed on purpose: file\n3 tasks: 2 completed, 1 failed, 0 cancelled\n`,
      );
      // Submitting the same file again leaves every task as it is, and says so (exit 1).
      const again = await cli("tasks", "submit", "--file", file, "--capabilities", "work");
      expect(again.code).toBe(1);
      expect(again.stdout).toBe(`${ids.join("\n")}\n`);
      expect(again.stderr).toContain(`converge: warning: line 2: task "${ids[1]}" already exists; left as it is\n`);
      expect(again.stderr).toEndWith(
        "converge: 3 lines named a task that already existed; left as it was (see above)\n",
      );
    });

    test("a 10,000-line JSON Lines file is submitted in batches: every id once, in line order, as the lines say", async () => {
      const N = 10_000;
      const lines = Array.from({ length: N }, (_, i) =>
        JSON.stringify({ id: `bulk-${name}-${i}`, inputs: { i }, priority: i % 7, capabilities: ["bulk-later"] }),
      );
      const file = join(tmp.path, `bulk-${name}.jsonl`);
      writeFileSync(file, `${lines.join("\n")}\n`);
      const r = await cli("tasks", "submit", "--file", file, "--delay", "1h");
      expect(r.code).toBe(0);
      const ids = r.stdout.trimEnd().split("\n");
      expect(ids).toEqual(Array.from({ length: N }, (_, i) => `bulk-${name}-${i}`));
      // One warning for the whole file: no agent has the capability.
      expect(r.stderr).toBe(
        `converge: warning: no registered agent has the capability "bulk-later" that task "bulk-${name}-0" and ` +
          `${N - 1} more need; accepted, they wait until such an agent registers\n`,
      );
      const stored = await tm.queue.getMany(ids);
      expect(stored.every((t) => t?.state === "pending")).toBe(true);
      expect(stored.map((t) => t!.priority)).toEqual(ids.map((_, i) => i % 7));
      expect(stored.map((t) => t!.inputs.i)).toEqual(ids.map((_, i) => i));
      const now = await tm.now();
      expect(stored.every((t) => t!.notBefore! > now + 3_500_000)).toBe(true);
    }, 120_000);

    test("when one line of a file is bad, it is named with its line number and nothing is submitted", async () => {
      const file = join(tmp.path, `bad-${name}.jsonl`);
      writeFileSync(
        file,
        [
          JSON.stringify({ id: `bad-ok-${name}`, inputs: { x: 1 } }),
          "",
          JSON.stringify({ id: `bad-two-${name}`, priority: "high" }),
          "{not json",
          JSON.stringify({ id: `bad-ok-${name}` }),
          JSON.stringify({ objectiv: "typo" }),
        ].join("\n"),
      );
      const r = await cli("tasks", "submit", "--file", file);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe("");
      const errors = r.stderr.trimEnd().split("\n");
      expect(errors).toEqual([
        `converge: ${file} line 3: priority must be an integer (higher runs first), got "high"`,
        expect.stringMatching(new RegExp(`^converge: ${file} line 4 is not JSON: `)),
        `converge: ${file} line 5: id "bad-ok-${name}" is already the id of line 1`,
        `converge: ${file} line 6: unknown field "objectiv"; a line may hold objective, inputs, id, pool, ` +
          "capabilities, constraints, priority, delay, not_before, claim_ttl_sec, max_retries",
        `converge: ${file}: 4 of 6 lines are bad; nothing was submitted`,
      ]);
      expect(await tm.get(`bad-ok-${name}`)).toBeUndefined();
    });

    test("an unknown constraint key draws a warning naming the known ones, and the task is still accepted", async () => {
      const r = await cli(
        "tasks",
        "submit",
        "--id",
        `warned-${name}`,
        "--capabilities",
        "work",
        "--inputs",
        '{"x": 5}',
        "--constraints",
        '{"colour": "red", "max_retries": 1}',
        "--wait",
      );
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(`warned-${name}\n{"doubled":10}\n`);
      expect(r.stderr).toBe(
        `converge: warning: unknown constraint key "colour" in task "warned-${name}" (kept for agents that read it); ` +
          "converge knows claim_ttl_sec, max_retries, retry_backoff_ms, timeout_sec, output_schema, cpu, memory_mb\n",
      );
      expect((await tm.get(`warned-${name}`))!.constraints).toEqual({ colour: "red", max_retries: 1 });
    });
  });
}

describe("argument checks", () => {
  test("options that need another are refused before any store is opened", async () => {
    for (const [args, error] of [
      [["tasks", "submit", "--timeout", "5"], "converge: --timeout needs --wait (how long to wait)\n"],
      [
        ["tasks", "submit", "--delay", "5", "--not-before", "2030-01-01"],
        "converge: give --delay or --not-before, not both\n",
      ],
      [
        ["tasks", "submit", "--file", "x.jsonl", "--id", "a"],
        "converge: --file takes each task's id from its line; --id cannot be combined with it\n",
      ],
      [
        ["tasks", "submit", "--priority", "high"],
        'converge: --priority must be an integer (higher runs first), got "high"\n',
      ],
      [
        ["run", "--idle-sec", "3"],
        "converge: --idle-sec needs --until-idle (it is how long the agents must be idle)\n",
      ],
      [
        ["tasks", "wait", "--timeout", "soon"],
        'converge: --timeout must be a duration such as 30s, 15m, 2h or 7d (or a number of seconds), got "soon"\n',
      ],
    ] as const) {
      const r = await runCli([...args]);
      expect({ args, code: r.code, stderr: r.stderr }).toEqual({ args, code: 2, stderr: error });
    }
  });
});

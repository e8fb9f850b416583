/**
 * End to end: the operator commands (`tasks`, `pools`, `agents`, `send`) as separate processes
 * against the SQLite store of a running `converge run` whose agents host a worker module.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { TaskManager } from "../../src/coordination/task-manager.ts";
import type { Task } from "../../src/core/task.ts";
import { SqliteStore } from "../../src/store/sqlite.ts";
import { runCli, startCli, stopAll, type RunResult, type Running } from "../support/cli.ts";
import { tempDir } from "../support/tmp.ts";
import { until } from "../support/wait.ts";

const tmp = tempDir("converge-cli-operator-");
const db = join(tmp.path, "shared.sqlite3");
const cfg = join(tmp.path, "converge.yaml");
/** Where the first agent listens (its port is the kernel's choice: port 0). */
let address: string;
let run: Running;
let ids: string[];
let store: SqliteStore;
let tasks: TaskManager;

// Like examples/double.js, plus a task that fails on its first attempt only (to retry it).
const MODULE = `const failedOnce = new Set();
export default {
  capabilities: ["double"],
  onTask(task) {
    if (task.inputs.flaky && !failedOnce.has(task.id)) {
      failedOnce.add(task.id);
      throw new Error("flaky: the first attempt fails");
    }
    return { doubled: task.inputs.x * 2 };
  },
};
`;

beforeAll(async () => {
  writeFileSync(join(tmp.path, "double.js"), MODULE);
  writeFileSync(
    cfg,
    `transport: tcp\nport: 0\nagents: 2\npool_id: ops\nagent: double.js\nstore_backend: sqlite\nstore_path: ${db}\n`,
  );
  run = startCli(["run", "-v", "-c", cfg]);
  await run.waitFor("running, press Ctrl+C to stop");
  ids = [...run.stdout.matchAll(/^agent \d+\/2 ([0-9a-f]{64}) /gm)].map((m) => m[1]!).sort();
  address = /^agent 1\/2 [0-9a-f]{64} (tcp:\/\/\S+)$/m.exec(run.stdout)![1]!;
  store = new SqliteStore(db);
  tasks = new TaskManager(store);
});

afterAll(async () => {
  try {
    if (run) expect(await run.stop("SIGINT")).toBe(0);
  } finally {
    await store?.close();
    await stopAll();
    tmp.cleanup();
  }
});

const cli = (...args: string[]) => runCli([...args, "-c", cfg]);

function ok(r: RunResult): string {
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
  return r.stdout;
}

async function waitState(id: string, state: Task["state"], timeoutMs = 10_000): Promise<Task> {
  let task: Task | undefined;
  await until(
    async () => (task = await tasks.get(id))?.state === state,
    `task ${id} to be ${state} (now ${task?.state})`,
    timeoutMs,
    20,
  );
  return task!;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe("operator commands against a running converge run (SQLite)", () => {
  let doubled: string;
  let flaky: string;
  let unclaimable: string;

  test("tasks submit prints the new task's id, and the running agents complete it", async () => {
    doubled = ok(
      await cli(
        "tasks",
        "submit",
        "--objective",
        "double 21",
        "--inputs",
        '{"x": 21}',
        "--capabilities",
        "double",
        "--pool",
        "ops",
      ),
    ).trim();
    expect(doubled).toMatch(UUID);
    const done = await waitState(doubled, "completed");
    expect(done.result).toEqual({ doubled: 42 });
    expect(ids).toContain(done.assignedTo!);
  });

  test("tasks submit takes an id and constraints; a taken id is refused", async () => {
    flaky = ok(
      await cli(
        "tasks",
        "submit",
        "--id",
        "flaky-1",
        "--inputs",
        '{"x": 5, "flaky": true}',
        "--capabilities",
        "double",
        "--claim-ttl-sec",
        "20",
      ),
    ).trim();
    expect(flaky).toBe("flaky-1");
    // No agent has the capability: accepted, with a warning saying so.
    const juggling = await cli(
      "tasks",
      "submit",
      "--id",
      "nobody-1",
      "--objective",
      "nobody can do this",
      "--capabilities",
      "juggling",
      "--constraints",
      '{"claim_ttl_sec": 5}',
    );
    expect({ code: juggling.code, stderr: juggling.stderr }).toEqual({
      code: 0,
      stderr:
        'converge: warning: no registered agent has the capability "juggling" that task "nobody-1" needs; ' +
        "accepted, it waits until such an agent registers\n",
    });
    unclaimable = juggling.stdout.trim();
    expect(unclaimable).toBe("nobody-1");
    const again = await cli("tasks", "submit", "--id", "nobody-1");
    expect(again.code).not.toBe(0);
    expect(again.stderr.trim().split("\n")).toEqual([expect.stringMatching(/^converge: .*nobody-1/)]);
    const failed = await waitState(flaky, "failed");
    expect(failed.error).toContain("flaky: the first attempt fails");
    expect((await tasks.get(unclaimable))!.constraints).toMatchObject({ claim_ttl_sec: 5 });
  });

  test("tasks get prints one task record as JSON", async () => {
    const record = JSON.parse(ok(await cli("tasks", "get", doubled)));
    expect(record).toMatchObject({
      id: doubled,
      objective: "double 21",
      inputs: { x: 21 },
      state: "completed",
      result: { doubled: 42 },
      poolId: "ops",
      requiredCapabilities: ["double"],
    });
    const missing = await cli("tasks", "get", "no-such-task");
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/^converge: task no-such-task does not exist\n$/);
  });

  test("when a task does not exist, get, cancel and retry all say so and exit 3", async () => {
    const results = await Promise.all(["get", "cancel", "retry"].map((c) => cli("tasks", c, "no-such-task")));
    for (const r of results)
      expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({
        code: 3,
        stdout: "",
        stderr: "converge: task no-such-task does not exist\n",
      });
  });

  test("when a task id is empty or holds a line break, submit refuses it with exit 2", async () => {
    for (const id of ["", "two\nlines", "esc\u001b[2J"]) {
      const r = await cli("tasks", "submit", "--id", id);
      expect(r.code).toBe(2);
      expect(r.stderr.trimEnd().split("\n")).toEqual([expect.stringMatching(/^converge: a task id must/)]);
      expect(r.stderr).not.toContain("\u001b");
    }
    expect(await tasks.get("")).toBeUndefined();
  });

  test("tasks list: a table of every task, --state filters, --json gives one record per line", async () => {
    const table = ok(await cli("tasks", "list"))
      .trimEnd()
      .split("\n");
    expect(table[0]).toMatch(/^ID\s+STATE\s+PRIORITY\s+ATTEMPTS\s+HOLDER\s+LEASE LEFT\s+DUE IN\s+OBJECTIVE/);
    expect(table.at(-1)).toBe("3 tasks");
    expect(table).toContainEqual(expect.stringMatching(new RegExp(`^${doubled}\\s+completed\\s+0\\s+1\\s+double 21$`)));
    expect(table).toContainEqual(expect.stringMatching(/^flaky-1\s+failed\s+0\s+1\s+.*flaky: the first attempt fails/));
    expect(table).toContainEqual(expect.stringMatching(/^nobody-1\s+pending\s+0\s+0\s+nobody can do this$/));

    const failedOnly = ok(await cli("tasks", "list", "--state", "failed"))
      .trimEnd()
      .split("\n");
    expect(failedOnly.slice(1, -1).map((l) => l.split(/\s+/)[0])).toEqual(["flaky-1"]);

    const json = ok(await cli("tasks", "list", "--json"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Task);
    expect(json.map((t) => t.id).sort()).toEqual([doubled, "flaky-1", "nobody-1"].sort());
    const pendingJson = ok(await cli("tasks", "list", "--json", "--state", "pending"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Task);
    expect(pendingJson.map((t) => [t.id, t.state])).toEqual([["nobody-1", "pending"]]);

    const bad = await cli("tasks", "list", "--state", "sleeping");
    expect({ code: bad.code, stderr: bad.stderr }).toEqual({
      code: 2,
      stderr: expect.stringMatching(/^converge: --state must be one of .*; got "sleeping"\n$/),
    });
  });

  test("tasks retry puts a failed task back to pending, and it is done again", async () => {
    expect(ok(await cli("tasks", "retry", flaky))).toBe(`${flaky} pending\n`);
    const done = await waitState(flaky, "completed");
    expect(done.result).toEqual({ doubled: 10 });
    const notFailed = await cli("tasks", "retry", doubled);
    expect(notFailed.code).toBe(1);
    expect(notFailed.stderr).toMatch(/only failed or cancelled tasks can be retried\n$/);
  });

  test("tasks cancel cancels an unfinished task, and refuses a finished one", async () => {
    expect(ok(await cli("tasks", "cancel", unclaimable))).toBe(`${unclaimable} cancelled\n`);
    expect((await tasks.get(unclaimable))!.state).toBe("cancelled");
    const cancelled = ok(await cli("tasks", "list", "--state", "cancelled"))
      .trimEnd()
      .split("\n");
    expect(cancelled.slice(1, -1).map((l) => l.split(/\s+/)[0])).toEqual([unclaimable]);
    const finished = await cli("tasks", "cancel", doubled);
    expect(finished.code).toBe(1);
    expect(finished.stderr).toBe(`converge: task ${doubled} is already completed\n`);
  });

  test("pools list shows the pool with both agents as members", async () => {
    expect(ok(await cli("pools", "list"))).toMatch(/^ops\s+open\s+2\s+[0-9a-f]{12},[0-9a-f]{12}$/m);
    const pool = JSON.parse(ok(await cli("pools", "list", "--json")).trim());
    expect([...pool.agents].sort()).toEqual(ids);
  });

  test("operator commands take --set too: the store named on the command line alone", async () => {
    const r = await runCli(["pools", "list", "--json", "--set", "store_backend=sqlite", "--set", `store_path=${db}`]);
    expect(JSON.parse(ok(r).trim())).toMatchObject({ id: "ops" });
  });

  test("agents list filters by capability and topic", async () => {
    const all = ok(await cli("agents", "list", "--capability", "double"));
    for (const id of ids) expect(all).toMatch(new RegExp(`^${id}\\s+tcp://127\\.0\\.0\\.1:\\d+\\s+double\\s`, "m"));
    expect(all.trimEnd().split("\n")).toHaveLength(3);
    const none = ok(await cli("agents", "list", "--capability", "double,juggling", "--json"));
    expect(none).toBe("");
    const byTopic = ok(await cli("agents", "list", "--topic", "no.such.topic", "--json"));
    expect(byTopic).toBe("");
  });

  test("send delivers one signed message to a running TCP agent; -v logs it on the running side", async () => {
    const r = await runCli(["send", "--to", address, "--payload", '{"a":1}']);
    expect(r.code).toBe(0);
    const [messageId, publicKey, ...rest] = r.stdout.split("\n");
    expect(messageId).toMatch(UUID);
    expect(publicKey).toMatch(/^[0-9a-f]{64}$/);
    expect(rest).toEqual([""]);
    await run.waitFor(`received message`, 5000, "stderr");
    await run.waitFor(`id=${messageId}`, 5000, "stderr");
    expect(run.stderr).toMatch(new RegExp(`DEBUG\\s+runtime: received message .*id=${messageId}`));

    const bad = await runCli(["send", "--to", "udp://somewhere", "--payload", "{}"]);
    expect({ code: bad.code, stderr: bad.stderr }).toEqual({
      code: 2,
      stderr: expect.stringMatching(/^converge: --to must be tcp:\/\/HOST:PORT/),
    });
    const badPayload = await runCli(["send", "--to", address, "--payload", "[1]"]);
    expect({ code: badPayload.code, stderr: badPayload.stderr }).toEqual({
      code: 2,
      stderr: "converge: --payload must be a JSON object\n",
    });
  });

  test("send takes its payload from a file or standard input too", async () => {
    const file = join(tmp.path, "payload.json");
    writeFileSync(file, '{"from": "file"}');
    const fromFile = await runCli(["send", "--to", address, "--payload", `@${file}`]);
    const fromStdin = await runCli(["send", "--to", address, "--payload", "-"], { stdin: '{"from": "stdin"}' });
    for (const r of [fromFile, fromStdin]) {
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
      await run.waitFor(`id=${r.stdout.split("\n")[0]}`, 5000, "stderr");
    }
  });

  test("send --identity with a directory says it is a directory, not to chmod it", async () => {
    const dir = join(tmp.path, "ids");
    mkdirSync(dir, { recursive: true });
    const r = await runCli(["send", "--to", address, "--identity", dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^converge: identity file ${dir} is a directory; give the key file itself`));
    expect(r.stderr).not.toContain("chmod");
  });

  test("when inputs are larger than the argument limit, --inputs @FILE and --inputs - take them", async () => {
    const pad = "y".repeat(300_000); // beyond the kernel's ~128 KiB limit for one argument
    const inputsFile = join(tmp.path, "big-inputs.json");
    writeFileSync(inputsFile, JSON.stringify({ x: 4, pad }));
    writeFileSync(join(tmp.path, "constraints.json"), '{"max_retries": 1}');
    const fromFile = ok(
      await cli(
        "tasks",
        "submit",
        "--inputs",
        `@${inputsFile}`,
        "--constraints",
        `@${join(tmp.path, "constraints.json")}`,
        "--capabilities",
        "double",
      ),
    ).trim();
    const fromStdin = ok(
      await runCli(["tasks", "submit", "-c", cfg, "--inputs", "-", "--capabilities", "double"], {
        stdin: JSON.stringify({ x: 6, pad }),
      }),
    ).trim();
    const [a, b] = await Promise.all([waitState(fromFile, "completed"), waitState(fromStdin, "completed")]);
    expect([a.result, b.result]).toEqual([{ doubled: 8 }, { doubled: 12 }]);
    expect([(a.inputs.pad as string).length, (b.inputs.pad as string).length]).toEqual([300_000, 300_000]);
    expect(a.constraints).toEqual({ max_retries: 1 });

    const missing = await cli("tasks", "submit", "--inputs", "@/no/such/file.json");
    expect({ code: missing.code, stderr: missing.stderr }).toEqual({
      code: 2,
      stderr: "converge: --inputs @/no/such/file.json: no such file\n",
    });
    const twice = await runCli(["tasks", "submit", "-c", cfg, "--inputs", "-", "--constraints", "-"], { stdin: "{}" });
    expect(twice.code).toBe(2);
    expect(twice.stderr).toMatch(/cannot both read standard input/);
  });
});

/**
 * Schedules in real processes: `converge schedules add|list|remove` and 3 `converge run`
 * processes that all run the schedules and a worker (double.js), on SQLite and on Redis. A 1 s
 * interval schedule fires over several periods: every due time from the first to the last has
 * exactly one task, each handled once, and none is missing.
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { scheduledTaskId } from "../../src/coordination/schedules.ts";
import { TaskManager } from "../../src/coordination/task-manager.ts";
import { runCli, stopAll } from "../support/cli.ts";
import { useE2eEnvironment } from "../support/e2e.ts";
import { until } from "../support/wait.ts";
import {
  duplicates,
  MODULES,
  openStore,
  readLines,
  startWorker,
  type StoreSpec,
  writeConfig,
} from "./fixtures/worker-support/harness.ts";

const PROCESSES = 3;
/** Periods of the 1 s schedule to watch. */
const PERIODS = 6;

const { tmp, redis } = useE2eEnvironment({ prefix: "converge-e2e-schedules-", redis: true, cleanup: [stopAll] });

async function firesOncePerDueTime(name: string, spec: StoreSpec): Promise<void> {
  const config = writeConfig(tmp.path, name, spec, { agent: join(MODULES, "double.js"), claim_ttl_sec: 30 });
  const logs = Array.from({ length: PROCESSES }, (_, i) => join(tmp.path, `${name}-handled-${i}.log`));
  const workers = await Promise.all(logs.map((log) => startWorker(config, { env: { HANDLED_LOG: log } })));
  const store = await openStore(spec);
  try {
    for (const w of workers) expect(w.stdout).toContain("schedules: this process submits the tasks of due schedules");
    // Added after the runners started: each is sleeping and must be woken by the store's channel.
    // catch-up 2: a loaded machine that stalls all three processes past a due time still shows every
    // due time (the no-backlog default is unit-tested with a fake clock).
    const added = await runCli([
      "schedules",
      "add",
      "-c",
      config,
      "--id",
      "tick",
      "--every",
      "1s",
      "--catch-up",
      "2",
      "--capabilities",
      "double",
      "--inputs",
      '{"x": 21}',
    ]);
    expect(added.stderr).toBe("");
    expect(added.code).toBe(0);
    expect(added.stdout).toMatch(/^tick next run \d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d\d:\d\d \(.*Z\)\n$/);
    const tm = new TaskManager(store);
    const scheduled = async () => (await tm.list()).filter((t) => t.id.startsWith("tick@"));
    await until(
      async () => (await scheduled()).filter((t) => t.state === "completed").length >= PERIODS,
      `${PERIODS} scheduled tasks completed`,
      30_000,
      100,
    );
    const listed = await runCli(["schedules", "list", "-c", config]);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/^tick +every 1s, catch-up 2 +\d{4}-.* tick@\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$/m);
    const removed = await runCli(["schedules", "remove", "-c", config, "tick"]);
    expect([removed.code, removed.stdout]).toEqual([0, "tick removed\n"]);
    // A pass that read the schedule just before the removal may still submit its due time: let
    // every task there is finish before counting.
    await until(
      async () => (await scheduled()).every((t) => t.state === "completed"),
      "every scheduled task completed",
      30_000,
      100,
    );
    const codes = await Promise.all(workers.map((w) => w.stop("SIGTERM")));
    expect(codes).toEqual([0, 0, 0]);

    const tasks = await scheduled();
    const due = tasks.map((t) => Date.parse(t.id.slice("tick@".length))).sort((a, b) => a - b);
    expect(due.length).toBeGreaterThanOrEqual(PERIODS);
    // Every due time from the first to the last, one second apart: none twice, none missing.
    const first = due[0]!;
    expect(due).toEqual(due.map((_, i) => first + i * 1000));
    for (const t of tasks) {
      expect(t.id).toBe(scheduledTaskId("tick", Date.parse(t.id.slice(5))));
      expect(t.result).toEqual({ doubled: 42 });
      expect(t.attempts).toBe(1);
    }
    // Each task was created by one process's pass (the others found it there), which logged it.
    const created = workers.flatMap((w) =>
      [...w.stderr.matchAll(/scheduled task submitted task=(\S+)/g)].map((m) => m[1]!),
    );
    expect(duplicates(created)).toEqual([]);
    expect(new Set(created)).toEqual(new Set(tasks.map((t) => t.id)));
    const handled = readLines(logs);
    expect(duplicates(handled)).toEqual([]);
    expect(new Set(handled)).toEqual(new Set(tasks.map((t) => t.id)));
  } finally {
    await Promise.all(workers.map((w) => w.stop("SIGKILL")));
    await store.close();
  }
}

describe("a 1 s schedule across 3 converge run processes", () => {
  test("on SQLite each due time is submitted and handled exactly once", () =>
    firesOncePerDueTime("sqlite", { backend: "sqlite", path: join(tmp.path, "schedules.db") }));
  test("on Redis each due time is submitted and handled exactly once", () =>
    firesOncePerDueTime("redis", { backend: "redis", url: redis.url }));
});

describe("converge schedules on the command line", () => {
  const cli = (config: string, ...args: string[]) => runCli(["schedules", ...args, "-c", config]);

  test("bad arguments are one line and exit 2, a missing schedule exit 3, a taken id exit 1", async () => {
    const config = writeConfig(tmp.path, "cli", { backend: "sqlite", path: join(tmp.path, "cli.db") }, {});
    const cases: [string[], number, RegExp][] = [
      [["add", "--id", "s"], 2, /needs --cron EXPR or --every DURATION/],
      [["add", "--id", "s", "--cron", "* * * * *", "--every", "1m"], 2, /cannot both be given/],
      [["add", "--id", "s", "--cron", "0 25 * * *"], 2, /bad cron expression "0 25 \* \* \*"/],
      [["add", "--id", "s", "--cron", "0 9 * * *", "--timezone", "Moon/Base"], 2, /unknown time zone "Moon\/Base"/],
      [["add", "--id", "s", "--every", "60"], 2, /--every must be a duration such as 30s/],
      [["add", "--id", "s", "--every", "500ms"], 2, /at least 1000/],
      [["add", "--id", "s", "--every", "1m", "--catch-up", "many"], 2, /--catch-up must be a whole number/],
      [["add", "--id", "s", "--every", "1m", "--priority", "high"], 2, /--priority must be a whole number/],
      [["add", "--id", "s", "--every", "1m", "--inputs", "[1]"], 2, /--inputs must be a JSON object/],
      [["add", "--id", "bad id", "--every", "1m"], 2, /schedule id .*"bad id"/],
      [["add", "--id", "s", "--every", "1m", "--bogus"], 2, /unknown option --bogus/],
      [["remove", "nope"], 3, /^converge: schedule nope does not exist\n$/],
    ];
    for (const [args, code, message] of cases) {
      const r = await cli(config, ...args);
      expect([args.join(" "), r.code]).toEqual([args.join(" "), code]);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trimEnd().split("\n").length).toBe(1);
      expect(r.stdout).toBe("");
    }
    expect((await cli(config, "add", "--id", "s", "--every", "1m")).code).toBe(0);
    const taken = await cli(config, "add", "--id", "s", "--every", "1m");
    expect([taken.code, taken.stderr]).toEqual([
      1,
      "converge: schedule s already exists; remove it first (converge schedules remove s)\n",
    ]);
  });

  test("a cron schedule in a zone is listed with its next run in local time and UTC, and as JSON", async () => {
    const config = writeConfig(tmp.path, "list", { backend: "sqlite", path: join(tmp.path, "list.db") }, {});
    const add = await cli(config, "add", "--id", "report", "--cron", "0 9 * * *", "--timezone", "Asia/Tokyo");
    expect(add.code).toBe(0);
    // 09:00 in Tokyo is 00:00 UTC; this machine's local time here is UTC+05:30 (TZ below).
    const listed = await runCli(["schedules", "list", "-c", config], { env: { TZ: "Asia/Kolkata" } });
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(
      /^report +cron 0 9 \* \* \* Asia\/Tokyo +\d{4}-\d\d-\d\d 05:30:00 \+05:30 +\d{4}-\d\d-\d\dT00:00:00Z$/m,
    );
    expect(listed.stdout).toContain("1 schedule\n");
    const json = await cli(config, "list", "--json");
    const [record] = json.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(record).toMatchObject({ id: "report", cron: "0 9 * * *", timezone: "Asia/Tokyo", everyMs: null });
    expect(new Date(record.nextRunAt).getUTCHours()).toBe(0);
  });

  test("without a shared store the command says so and exits 2", async () => {
    const r = await runCli(["schedules", "list"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/this command needs a shared store/);
  });
});

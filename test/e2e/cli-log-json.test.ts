/**
 * End to end: with --log-format json, every line `converge run` prints is one JSON object, stdout
 * included: its status lines have a fixed `msg` per kind and their data in fields, so a machine
 * can read them without parsing sentences; errors are JSON lines too. (Text mode is unchanged:
 * the other e2e files read it.)
 */
import { expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCli, startCli, stopAll } from "../support/cli.ts";
import { useE2eEnvironment } from "../support/e2e.ts";

const { tmp } = useE2eEnvironment({ prefix: "converge-e2e-json-", cleanup: [stopAll] });

const DOUBLE = join(import.meta.dir, "fixtures", "worker-modules", "double.js");

type Record_ = Record<string, unknown>;
const records = (text: string): Record_[] =>
  text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as Record_);

test("with --log-format json, a worker's every stdout and stderr line is a JSON object of a stable shape", async () => {
  const db = join(tmp.path, "json.db");
  const cfg = join(tmp.path, "json.yaml");
  writeFileSync(cfg, `agent: ${DOUBLE}\npool_id: jp\nstore_backend: sqlite\nstore_path: ${db}\nhttp_port: 0\n`);
  const run = startCli(["run", "--log-format", "json", "-c", cfg]);
  await run.waitFor('"msg":"running, press Ctrl+C to stop"');
  for (const id of ["j1", "j2"]) {
    const r = await runCli(["tasks", "submit", "-c", cfg, "--id", id, "--pool", "jp", "--inputs", '{"x": 4}']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${id}\n`); // an operator command's output is data, not a log line
  }
  await run.waitFor('"task":"j2"', 15_000, "stderr");
  expect(await run.stop()).toBe(0);

  const out = records(run.stdout);
  for (const r of out) expect([typeof r.ts, r.level, r.logger]).toEqual(["string", "info", "run"]);
  expect(out.map((r) => r.msg)).toEqual([
    "agent started",
    "store",
    "schedules",
    "pool joined",
    "agent module",
    "health and metrics",
    "running, press Ctrl+C to stop",
    "stopped",
  ]);
  const [agent, store, , pool, module, http, running, stopped] = out;
  expect(agent).toEqual(
    expect.objectContaining({
      agent: 1,
      agents: 1,
      id: expect.stringMatching(/^[0-9a-f]{64}$/),
      address: expect.any(String),
    }),
  );
  expect(store).toEqual(expect.objectContaining({ store: `sqlite ${db}`, discovery: true }));
  expect(pool).toEqual(expect.objectContaining({ pool: "jp", agents: 1 }));
  expect(module).toEqual(expect.objectContaining({ module: DOUBLE }));
  expect(http).toEqual(expect.objectContaining({ url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:[1-9]\d*$/) }));
  expect(running).toEqual(expect.objectContaining({ startup_ms: expect.any(Number) }));
  expect(stopped).toEqual(
    expect.objectContaining({ agents: 1, seconds: expect.any(Number), received: 0, sent: 0, completed: 2, failed: 0 }),
  );

  const err = records(run.stderr);
  for (const r of err)
    expect([typeof r.ts, typeof r.level, typeof r.logger, typeof r.msg]).toEqual(Array(4).fill("string"));
  const completed = err.filter((r) => r.msg === "task completed");
  expect(completed.map((r) => r.task).sort()).toEqual(["j1", "j2"]);
  for (const r of completed)
    expect(r).toEqual(
      expect.objectContaining({ level: "info", logger: "worker", attempt: 1, duration_ms: expect.any(Number) }),
    );
  expect(err).toContainEqual(expect.objectContaining({ level: "info", msg: "SIGINT received, stopping" }));
});

test("with --log-format json, the idle hint is a JSON line too", async () => {
  const run = startCli(["run", "--log-format", "json"]);
  await run.waitFor('"msg":"running, press Ctrl+C to stop"');
  expect(await run.stop()).toBe(0);
  const out = records(run.stdout);
  expect(out.map((r) => r.msg)).toEqual(["agent started", "store", "hint", "running, press Ctrl+C to stop", "stopped"]);
  expect(out[1]).toEqual(expect.objectContaining({ store: null, discovery: false }));
  expect(out[2]!.hint).toContain("converge run -c examples/worker.yaml");
});

test("with --log-format json, a bad value is one JSON error line on stderr, and the exit code is still 2", async () => {
  const r = await runCli(["run", "--log-format", "json", "--set", "concurrency=lots"]);
  expect(r.code).toBe(2);
  expect(r.stdout).toBe("");
  const [line, ...rest] = records(r.stderr);
  expect(rest).toEqual([]);
  expect(line).toEqual(
    expect.objectContaining({
      level: "error",
      logger: "converge",
      msg: expect.stringContaining("concurrency"),
      exit_code: 2,
    }),
  );
});

test("with --log-format json, even an unknown option is one JSON error line", async () => {
  const r = await runCli(["run", "--log-format=json", "--bogus"]);
  expect(r.code).toBe(2);
  expect(records(r.stderr)).toEqual([
    expect.objectContaining({ level: "error", msg: expect.stringContaining("unknown option --bogus"), exit_code: 2 }),
  ]);
});

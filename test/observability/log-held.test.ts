/** Log lines on stderr are held for the rest of the turn and written together (log.ts, HeldLines). */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { outputOf } from "../support/cli.ts";

const LOG = join(import.meta.dir, "..", "..", "src", "observability", "log.ts");

/** Runs a script that imports the logger as `log` (and counts the writes to stderr in `writes`). */
function script(body: string) {
  const source = `
    import * as log from ${JSON.stringify(LOG)};
    let writes = 0;
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = (chunk, ...rest) => { writes++; return write(chunk, ...rest); };
    ${body}`;
  return outputOf(Bun.spawn([process.execPath, "-e", source], { stdout: "pipe", stderr: "pipe" }), 20_000);
}

const lines = (stderr: string) => stderr.split("\n").filter(Boolean);

test("when a busy worker logs many lines in one turn, every line reaches stderr, in order, in one write soon after", async () => {
  const r = await script(`
    for (let i = 0; i < 500; i++) log.logger("worker").info("task completed", { task: "t" + i });
    await new Promise((resolve) => setTimeout(resolve, 50));
    console.log(writes);`);
  expect(r.code).toBe(0);
  const got = lines(r.stderr);
  expect(got).toHaveLength(500);
  got.forEach((line, i) => expect(line).toEndWith(`INFO  worker: task completed task=t${i}`));
  expect(Number(r.stdout.trim())).toBe(1);
});

test("when a warning, a status line or a command's error follows held lines, the held lines come first", async () => {
  const r = await script(`
    log.logger("worker").info("first");
    log.logger("worker").warn("second");
    log.logger("worker").info("third");
    log.statusLine("run", "fourth", "status");
    log.logger("worker").info("fifth");
    log.stderrLine("error", "run", "sixth");`);
  expect(r.code).toBe(0);
  expect(lines(r.stderr).map((l) => l.replace(/^.*(first|second|third|fifth|sixth)$/, "$1"))).toEqual([
    "first",
    "second",
    "third",
    "fifth",
    "sixth",
  ]);
  expect(r.stdout).toBe("fourth\n");
});

test("when the process exits in the same turn as it logged, the held lines are still written", async () => {
  const r = await script(`
    for (let i = 0; i < 100; i++) log.logger("worker").info("line " + i);
    process.exit(3);`);
  expect(r.code).toBe(3);
  expect(lines(r.stderr)).toHaveLength(100);
  expect(lines(r.stderr).at(-1)).toEndWith("line 99");
});

test("when the process crashes on an uncaught exception, the lines logged before it come before the trace", async () => {
  const r = await script(`
    log.logger("worker").info(["the line", "before"].join(" "));
    setTimeout(() => { throw new Error(["bo", "om"].join("")); }, 0);`);
  expect(r.code).not.toBe(0);
  // Joined at run time: the trace quotes the script's source, which must not match.
  const before = r.stderr.indexOf("INFO  worker: the line before");
  expect(before).toBeGreaterThanOrEqual(0);
  expect(before).toBeLessThan(r.stderr.indexOf("error: boom"));
});

test("when a command prints its output after logging, the held log lines are written before the output", async () => {
  const r = await script(`
    const order = [];
    const out = process.stdout.write.bind(process.stdout);
    const err = process.stderr.write;
    process.stdout.write = (chunk) => (order.push("out " + String(chunk).trim()), true);
    process.stderr.write = (chunk) => (order.push(...String(chunk).trim().split("\\n").map((l) => "err " + l.slice(-1))), true);
    log.logger("worker").info("a");
    log.outputLine("b");
    log.logger("worker").info("c");
    await new Promise((resolve) => setTimeout(resolve, 50));
    out(JSON.stringify(order) + "\\n");`);
  expect(r.code).toBe(0);
  expect(JSON.parse(r.stdout)).toEqual(["err a", "out b", "err c"]);
});

test("when the log level is error, a command's warning still reaches stderr, in text and in JSON", async () => {
  for (const format of ["text", "json"]) {
    const r = await script(`
      log.configureLogging({ level: "error", format: ${JSON.stringify(format)} });
      log.logger("worker").warn("a log warning, below the level");
      log.stderrLine("warn", "run", "second signal, exiting now");`);
    expect(r.code).toBe(0);
    const got = lines(r.stderr);
    expect(got).toHaveLength(1);
    if (format === "text") expect(got[0]).toBe("converge: warning: second signal, exiting now");
    else expect(JSON.parse(got[0]!)).toMatchObject({ level: "warn", logger: "run", msg: "second signal, exiting now" });
  }
});

/**
 * Agent modules in `converge run`, from source and from the compiled binary: a TypeScript module
 * whose default export is a function of the converge API works in both; a missing module, one
 * that throws on load, one without a default export, and default exports of the wrong shape are
 * each one clear line on stderr and exit 2. A module that leaves a promise to fail unawaited ends
 * the process with exit 1 after a clean stop, its trace after the lines logged before it.
 */
import { describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { TaskManager } from "../../src/coordination/task-manager.ts";
import { runCli, stopAll } from "../support/cli.ts";
import { useE2eEnvironment } from "../support/e2e.ts";
import {
  MODULES,
  ensureBinary,
  openStore,
  startWorker,
  waitFinal,
  writeConfig,
  type StoreSpec,
} from "./fixtures/worker-support/harness.ts";

const { tmp } = useE2eEnvironment({
  prefix: "converge-e2e-worker-modules-",
  before: ensureBinary,
  cleanup: [stopAll],
  timeoutMs: 120_000,
});

const BAD: [string, string, RegExp][] = [
  ["a missing module", "missing.js", /agent module \S+missing\.js does not exist/],
  [
    "a module that throws on load",
    "throws-on-load.js",
    /agent module \S+throws-on-load\.js failed to load: boom while loading the module/,
  ],
  ["a module without a default export", "no-default.js", /agent module \S+no-default\.js has no default export/],
  ["a default export that is a number", "exports-number.js", /must export an object .* got a number/],
  ["an object with none of decide, onTask, onMessage", "no-hooks.js", /defines none of decide, onTask or onMessage/],
  ["onTask that is not a function", "ontask-not-function.js", /onTask must be a function, got string/],
  ["a .txt module", "notes.txt", /agent module \S+notes\.txt must be a \.ts, \.js or \.mjs file/],
];

for (const binary of [false, true]) {
  describe(binary ? "compiled binary" : "from source", () => {
    test.concurrent.each(BAD)("%s: its message and exit 2", async (_what, file, message) => {
      const config = writeConfig(
        tmp.path,
        `bad-${binary}-${file}`,
        { backend: "sqlite", path: join(tmp.path, "bad.db") },
        { agent: join(MODULES, file) },
      );
      const r = await runCli(["run", "-c", config], { binary });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(message);
      const lines = r.stderr.trim().split("\n");
      expect(lines.length).toBe(1); // one line, no stack trace
      expect(lines[0]).toStartWith("converge: ");
      expect(r.stdout).not.toContain("running");
    });

    test.concurrent("when the module leaves a promise to fail unawaited, the run stops cleanly and ends 1 after the lines logged before", async () => {
      const spec: StoreSpec = { backend: "sqlite", path: join(tmp.path, `stray-${binary}.db`) };
      const config = writeConfig(tmp.path, `stray-${binary}`, spec, { agent: join(MODULES, "stray-rejection.ts") });
      const text = await runCli(["run", "-c", config], { binary, timeoutMs: 20_000 });
      expect(text.code).toBe(1);
      // The log line, and the trace's own line (its code frame quotes the module's source too).
      const before = text.stderr.indexOf("INFO  stray: the line logged just before");
      expect(before).toBeGreaterThanOrEqual(0);
      expect(text.stderr.indexOf("error: a promise nobody awaited")).toBeGreaterThan(before);

      const json = await runCli(["run", "-c", config, "--log-format", "json"], { binary, timeoutMs: 20_000 });
      expect(json.code).toBe(1);
      const lines = json.stderr
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l));
      const msgs = lines.map((l) => l.msg);
      const report = msgs.indexOf("unhandled rejection: a promise nobody awaited");
      expect(report).toBeGreaterThan(msgs.indexOf("the line logged just before"));
      expect(lines[report]).toMatchObject({ level: "error" });
      expect(lines[report].stack).toContain("stray-rejection.ts");
      expect(json.stdout).toContain('"msg":"stopped"'); // a clean stop, not a cut-off process
    });

    test.concurrent("a relative module path resolves from the config file's directory; a .ts factory module gets the API", async () => {
      const spec: StoreSpec = { backend: "sqlite", path: join(tmp.path, `factory-${binary}.db`) };
      // The config sits in a directory of its own with the module in a subdirectory; converge runs from the repo root.
      const dir = join(tmp.path, `factory-${binary}`);
      mkdirSync(join(dir, "modules"), { recursive: true });
      copyFileSync(join(MODULES, "factory.ts"), join(dir, "modules", "factory.ts"));
      const rel = writeConfig(dir, "worker", spec, { agents: 2, agent: "modules/factory.ts" });
      const worker = await startWorker(rel, { binary });
      const store = await openStore(spec);
      try {
        const tm = new TaskManager(store);
        await tm.submit({ id: "t", inputs: { x: 7 }, requiredCapabilities: ["triple"] });
        const [t] = await waitFinal(tm, ["t"], 10_000);
        expect(t!.state).toBe("completed");
        expect(t!.result).toEqual({ tripled: 21, api: true, drivers: true });
        expect(await worker.stop("SIGTERM")).toBe(0);
      } finally {
        await worker.stop("SIGKILL");
        await store.close();
      }
    });
  });
}

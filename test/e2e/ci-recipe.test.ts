/**
 * End to end: the README's "converge in CI" recipe, run as written by `sh` in a directory holding
 * its files (ci.yaml, ci-agent.js, jobs.jsonl, ci.sh) with `converge` on the PATH: once with the
 * README's jobs (exit 0), once with a job the module refuses (exit 1, and the summary names it);
 * on SQLite as written, and on Redis with the two store lines the README says to change.
 */
import { describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { MAIN, outputOf, stopAll } from "../support/cli.ts";
import { useE2eEnvironment } from "../support/e2e.ts";
import { readmeFences } from "../support/readme.ts";

const { tmp, redis } = useE2eEnvironment({ prefix: "converge-e2e-ci-", redis: true, cleanup: [stopAll] });

/** The recipe's files by name; jobs.jsonl is the one jsonl block. */
function recipe(): Map<string, string> {
  const files = new Map<string, string>();
  for (const { lang, body } of readmeFences("converge in CI")) {
    if (lang === "jsonl") files.set("jobs.jsonl", body);
    const named = /^(?:#|\/\/) (\S+\.\w+)\n/.exec(body);
    if (named) files.set(named[1]!, body);
  }
  return files;
}

/** Runs ci.sh in `dir` as a CI job would: `sh ci.sh`, with converge on the PATH. */
async function runRecipe(dir: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const bin = join(dir, "bin");
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, "converge"), `#!/bin/sh\nexec "${process.execPath}" "${MAIN}" "$@"\n`);
  chmodSync(join(bin, "converge"), 0o755);
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("CONVERGE_")) env[k] = v;
  const p = Bun.spawn(["sh", "ci.sh"], {
    cwd: dir,
    env: { ...env, NO_COLOR: "1", PATH: `${bin}:${process.env.PATH}` },
    stdout: "pipe",
    stderr: "pipe",
  });
  return outputOf(p, 50_000);
}

function writeRecipe(dir: string, change: (name: string, text: string) => string): void {
  mkdirSync(dir, { recursive: true });
  const files = recipe();
  expect([...files.keys()].sort()).toEqual(["ci-agent.js", "ci.sh", "ci.yaml", "jobs.jsonl"]);
  for (const [name, text] of files) writeFileSync(join(dir, name), change(name, text));
}

const backends: [string, (run: string) => (name: string, text: string) => string][] = [
  ["sqlite", () => (_, text) => text],
  [
    "redis",
    (run) => (name, text) =>
      name === "ci.yaml"
        ? text
            .replace("store_backend: sqlite", "store_backend: redis")
            .replace(
              "store_path: ci-tasks.db",
              `store_path: ${redis.url.replace(/\/0$/, run === "ok" ? "/10" : "/11")}`,
            )
        : text,
  ],
];

for (const [name, storeOf] of backends) {
  describe(`the README's CI recipe (${name})`, () => {
    test("when every job completes, the script exits 0 and the summary counts them", async () => {
      const dir = join(tmp.path, `${name}-ok`);
      writeRecipe(dir, storeOf("ok"));
      const r = await runRecipe(dir);
      expect(r.code).toBe(0);
      // The workers' lines and the wait's summary share the job's output, in whichever order they come.
      expect(r.stdout).toMatch(/^2 tasks: 2 completed, 0 failed, 0 cancelled$/m);
      expect(r.stdout).toMatch(/\nstopped 2 agents after [\d.]+ s: .*, 2 tasks completed, 0 failed\n/);
    }, 60_000);

    test("when a job fails, the script exits 1 and the summary names the failed task and why", async () => {
      const dir = join(tmp.path, `${name}-failing`);
      writeRecipe(dir, (file, text) => {
        const changed = storeOf("failing")(file, text);
        return file === "jobs.jsonl"
          ? `${changed}{"id": "job-bad", "inputs": {"x": -1}, "capabilities": ["double"]}\n`
          : changed;
      });
      const r = await runRecipe(dir);
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/^failed {2}job-bad {2}cannot double -1\n3 tasks: 2 completed, 1 failed, 0 cancelled$/m);
      expect(r.stdout).toMatch(/\nstopped 2 agents after [\d.]+ s: .*, 2 tasks completed, 1 failed\n/);
      expect(r.stderr).toContain("task failed");
    }, 60_000);
  });
}

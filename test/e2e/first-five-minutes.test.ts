/**
 * End to end: the README's Quick start as a newcomer follows it in a fresh clone: its commands,
 * exactly as the README writes them, run by `sh` in a copy of this checkout holding what `git clone`
 * would (tracked files, and new ones not ignored). `npm install` is the one command not run (tests
 * download nothing): the copy links this checkout's node_modules instead. A worker starts, a task is
 * submitted and read back completed with its result; `converge run` alone says how to give it work.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, realpathSync, statSync, symlinkSync } from "node:fs";
import { dirname, join } from "node:path";
import { IDLE_HINT } from "../../src/cli/run.ts";
import { readmeCommandBlocks } from "../support/readme.ts";
import { tempDir } from "../support/tmp.ts";

const ROOT = join(import.meta.dir, "..", "..");
const tmp = tempDir("converge-first-minutes-");
const clone = join(tmp.path, "converge");
const blocks = readmeCommandBlocks("Quick start");
const live = new Set<Bun.Subprocess>();

function env(): Record<string, string> {
  const e: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("CONVERGE_")) e[k] = v;
  return { ...e, NO_COLOR: "1" };
}

/** Runs README lines in one `sh`, to completion. */
async function sh(lines: string[], extra: Record<string, string> = {}) {
  const p = Bun.spawn(["sh", "-c", lines.join("\n")], {
    cwd: clone,
    env: { ...env(), ...extra },
    stdout: "pipe",
    stderr: "pipe",
  });
  live.add(p);
  const [stdout, stderr, code] = await Promise.all([
    new Response(p.stdout).text(),
    new Response(p.stderr).text(),
    p.exited,
  ]);
  live.delete(p);
  return { stdout, stderr, code };
}

/** A long-running README line, in its own process group so that it can be stopped as Ctrl+C stops it. */
function start(line: string) {
  const p = Bun.spawn(["sh", "-c", line], { cwd: clone, env: env(), stdout: "pipe", stderr: "pipe", detached: true });
  live.add(p);
  const out = { stdout: "" };
  let changed = () => {};
  const decoder = new TextDecoder();
  const read = (async () => {
    for await (const chunk of p.stdout) {
      out.stdout += decoder.decode(chunk, { stream: true });
      changed();
    }
  })();
  const stderr = new Response(p.stderr).text();
  return {
    out,
    /** Resolves once stdout holds `text`; rejects when the output ends without it. */
    async waitFor(text: string) {
      let ended = false;
      void read.then(() => ((ended = true), changed()));
      while (!out.stdout.includes(text)) {
        if (ended) throw new Error(`"${line}" ended before printing "${text}":\n${out.stdout}${await stderr}`);
        await new Promise<void>((resolve) => (changed = resolve));
      }
    },
    /**
     * Ctrl+C: SIGINT to the whole process group; resolves to converge's stderr once all have exited.
     * (npx itself then exits 130, as npm does after any interrupt, whatever its child did.)
     */
    async interrupt() {
      process.kill(-p.pid, "SIGINT");
      await Promise.all([p.exited, read]);
      live.delete(p);
      return await stderr;
    },
  };
}

beforeAll(() => {
  const listed = Bun.spawnSync(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], { cwd: ROOT });
  for (const file of listed.stdout.toString().split("\0")) {
    if (!file || file === "node_modules") continue;
    const from = join(ROOT, file);
    try {
      if (!statSync(from).isFile()) continue;
    } catch {
      continue; // deleted in the working tree
    }
    mkdirSync(dirname(join(clone, file)), { recursive: true });
    copyFileSync(from, join(clone, file));
  }
  symlinkSync(realpathSync(join(ROOT, "node_modules")), join(clone, "node_modules"));
});

afterAll(async () => {
  for (const p of live) {
    try {
      process.kill(-p.pid, "SIGKILL");
    } catch {
      p.kill("SIGKILL");
    }
  }
  await Promise.all([...live].map((p) => p.exited));
  tmp.cleanup();
});

describe("the README's first five minutes", () => {
  test("the Quick start's commands are the ones this test runs", () => {
    expect(blocks[0]).toEqual(["npm install"]);
    expect(blocks[1]).toEqual(["npx bun run converge run -c examples/worker.yaml"]);
    expect(blocks[2]).toHaveLength(2);
    expect(blocks[3]).toEqual(["npx bun run converge run"]);
    expect(blocks[4]).toEqual(["npx bun test"]);
  });

  test("from a fresh clone: a worker starts, a submitted task is done and its result shown", async () => {
    const worker = start(blocks[1]![0]!);
    await worker.waitFor("running, press Ctrl+C to stop");
    let r = await sh(blocks[2]!);
    expect(r.code).toBe(0);
    let record = JSON.parse(r.stdout);
    // Read it again while the worker is still on it (the README's second line, with the same id).
    while (record.state !== "completed" && !["failed", "cancelled"].includes(record.state)) {
      r = await sh([blocks[2]![1]!], { id: record.id });
      record = JSON.parse(r.stdout);
    }
    expect(record).toMatchObject({ state: "completed", result: { doubled: 42 }, inputs: { x: 21 } });
    expect(await worker.interrupt()).not.toContain("second signal");
    expect(worker.out.stdout).not.toContain(IDLE_HINT); // it has work: a shared store and a worker module
    expect(worker.out.stdout).toMatch(/^stopped 4 agents after \d+\.\d s: .*1 task completed, 0 failed$/m);
  }, 60_000);

  test("converge run on the embedded default says how to give it work", async () => {
    const idle = start(blocks[3]![0]!);
    await idle.waitFor(IDLE_HINT);
    expect(await idle.interrupt()).not.toContain("second signal");
    expect(idle.out.stdout).toContain("store: none");
    expect(idle.out.stdout).toMatch(/^stopped 1 agent after /m);
  }, 30_000);
});

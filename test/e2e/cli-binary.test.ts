/**
 * End to end: the compiled `dist/converge` (built once here with `bun scripts/build.ts`) behaves
 * exactly like `bun src/cli/main.ts`, with no Bun or Node on its PATH.
 */
import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BINARY, runCli, startCli, stopAll, type RunResult } from "../support/cli.ts";
import { tempDir } from "../support/tmp.ts";

const ROOT = join(import.meta.dir, "..", "..");
const tmp = tempDir("converge-cli-binary-");
/** A PATH with nothing on it: the binary must not need bun or node. */
const emptyPath = join(tmp.path, "empty-bin");
/** A working directory with a stray .env and bunfig.toml, which the binary must not read. */
const strayCwd = join(tmp.path, "stray");
const bin = { binary: true, cwd: strayCwd, env: { PATH: emptyPath } };

beforeAll(async () => {
  mkdirSync(emptyPath);
  mkdirSync(strayCwd);
  writeFileSync(join(strayCwd, ".env"), "CONVERGE_AGENTS=7\nCONVERGE_TRANSPORT=websocket\n");
  writeFileSync(join(strayCwd, "bunfig.toml"), 'preload = ["./nope.ts"]\n');
  const p = Bun.spawn([process.execPath, join(ROOT, "scripts", "build.ts")], {
    cwd: ROOT,
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new Error(`bun scripts/build.ts failed (${code}): ${out}${err}`);
}, 120_000);

afterAll(async () => {
  await stopAll();
  tmp.cleanup();
});

const same = (a: RunResult, b: RunResult) =>
  expect({ code: b.code, stdout: b.stdout, stderr: b.stderr }).toEqual({
    code: a.code,
    stdout: a.stdout,
    stderr: a.stderr,
  });

describe.concurrent("the compiled binary", () => {
  test("is a standalone executable", () => {
    const st = statSync(BINARY);
    expect(st.mode & 0o111).not.toBe(0);
    expect(st.size).toBeGreaterThan(1_000_000);
  });

  for (const args of [
    ["--help"],
    ["--version"],
    ["run", "--help"],
    ["tasks", "list", "--help"],
    ["run", "--bogus"],
    ["nope"],
  ]) {
    test(`converge ${args.join(" ")} prints exactly what the source prints`, async () => {
      const [source, binary] = await Promise.all([runCli(args), runCli(args, bin)]);
      same(source, binary);
      expect(binary.stdout + binary.stderr).not.toBe("");
    });
  }

  test("a bad config is refused the same way", async () => {
    const cfg = join(tmp.path, "bad.toml");
    writeFileSync(cfg, 'transport = "tcp"\nport = = 3\n');
    const [source, binary] = await Promise.all([runCli(["run", "-c", cfg]), runCli(["run", "-c", cfg], bin)]);
    same(source, binary);
    expect(binary.code).toBe(2);
  });

  test("a SQLite run starts, registers, lists and stops exactly like the source", async () => {
    const outputs: Record<string, { stdout: string; stderr: string; code: number }> = {};
    await Promise.all(
      (["source", "binary"] as const).map(async (which) => {
        const dir = join(tmp.path, which);
        mkdirSync(dir);
        const db = join(dir, "run.sqlite3");
        const cfg = join(dir, "run.toml");
        writeFileSync(
          cfg,
          `transport = "tcp"\nport = 0\nagents = 2\npool_id = "workers"\nstore_backend = "sqlite"\nstore_path = "${db}"\n`,
        );
        const opts = which === "binary" ? bin : {};
        const r = startCli(["run", "-c", cfg], opts);
        await r.waitFor("running, press Ctrl+C to stop");
        const listed = await runCli(["agents", "list", "-c", cfg, "--json"], opts);
        expect(listed.code).toBe(0);
        expect(listed.stdout.trim().split("\n")).toHaveLength(2);
        const code = await r.stop("SIGINT");
        const sqlite = new Database(db, { readonly: true });
        expect(sqlite.query("SELECT key FROM store WHERE key LIKE 'discovery:agent:%'").all()).toEqual([]);
        sqlite.close();
        const normal = (s: string) =>
          s
            .replaceAll(dir, "<DIR>")
            .replace(/127\.0\.0\.1:\d+/g, "127.0.0.1:<PORT>")
            .replace(/[0-9a-f]{64}/g, "<ID>")
            .replace(/\d{4}-\d\d-\d\dT[\d:.]+Z/g, "<TS>")
            .replace(/\d+ ms\)/g, "<N> ms)")
            .replace(/after \d+\.\d s/g, "after <T> s");
        outputs[which] = { code, stdout: normal(r.stdout), stderr: normal(r.stderr) };
      }),
    );
    expect(outputs.binary).toEqual(outputs.source!);
    expect(outputs.binary!.code).toBe(0);
    expect(outputs.binary!.stdout).toContain("agent 2/2 <ID> tcp://127.0.0.1:<PORT>");
    expect(outputs.binary!.stdout).toMatch(/^stopped 2 agents after <T> s: /m);
  });
});

/**
 * End to end: the compiled `dist/converge` (built once here with `bun scripts/build.ts`) behaves
 * exactly like `bun src/cli/main.ts`, with no Bun or Node on its PATH, and runs the seed manual's
 * example configs. With CONVERGE_TEST_BINARY set (scripts/release.ts sets it), that binary is tested
 * instead and nothing is built.
 */
import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import pkg from "../../package.json" with { type: "json" };
import { BINARY, runCli, startCli, stopAll, type RunResult } from "../support/cli.ts";
import { startRedis, type RedisServer } from "../support/redis.ts";
import { tempDir } from "../support/tmp.ts";
import { buildBinary } from "./fixtures/worker-support/harness.ts";

const tmp = tempDir("converge-cli-binary-");
/** A PATH with nothing on it: the binary must not need bun or node. */
const emptyPath = join(tmp.path, "empty-bin");
/** A working directory with a stray .env and bunfig.toml, which the binary must not read. */
const strayCwd = join(tmp.path, "stray");
const bin = { binary: true, cwd: strayCwd, env: { PATH: emptyPath } };
let redis: RedisServer;

beforeAll(async () => {
  mkdirSync(emptyPath);
  mkdirSync(strayCwd);
  writeFileSync(join(strayCwd, ".env"), "CONVERGE_AGENTS=7\nCONVERGE_TRANSPORT=websocket\n");
  writeFileSync(join(strayCwd, "bunfig.toml"), 'preload = ["./nope.ts"]\n');
  redis = await startRedis();
  if (process.env.CONVERGE_TEST_BINARY) return;
  await buildBinary();
}, 120_000);

afterAll(async () => {
  await stopAll();
  await redis?.stop();
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

  test("--version names the version and commit the source has, and the binary's target", async () => {
    const [source, binary] = await Promise.all([runCli(["--version"]), runCli(["--version"], bin)]);
    const parse = (s: string) => /^converge (\S+) \(commit (\S+), ([^,]+), bun \S+( on \S+)?\)\n$/.exec(s);
    const [s, b] = [parse(source.stdout), parse(binary.stdout)];
    expect(b?.slice(1, 3)).toEqual(s!.slice(1, 3));
    expect(b![1]).toBe(pkg.version);
    expect(s![3]).toBe("source");
    expect(b![3]).toMatch(/^(linux|darwin|windows)-(x64|arm64)/);
    expect(b![4]).toBeUndefined(); // a binary names its target, not where it happens to run
  });

  for (const args of [["--help"], ["run", "--help"], ["tasks", "list", "--help"], ["run", "--bogus"], ["nope"]]) {
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
  // The four example configs of the seed manual (shared/seed/cli_and_config.txt), as written except
  // for ports (free ones), the SQLite file (in a temporary directory) and the Redis URL (our server).
  const seedExamples: [string, string, (port: number, dir: string) => string, RegExp[]][] = [
    [
      "multi-agent with pool and discovery",
      "yaml",
      () => "transport: local\nagents: 3\npool_id: my-pool\ndiscovery_store: memory\nstore_backend: memory\n",
      [/^agent 3\/3 [0-9a-f]{64} local:\/\//m, /^pool: my-pool \(3 agents joined\)$/m],
    ],
    [
      "TCP, single agent",
      "yaml",
      (port) => `transport: tcp\nhost: 0.0.0.0\nport: ${port}\n`,
      [/^agent 1\/1 [0-9a-f]{64} tcp:\/\/0\.0\.0\.0:\d+$/m, /^store: none$/m],
    ],
    [
      "TOML",
      "toml",
      (port, dir) =>
        `transport = "tcp"\nhost = "127.0.0.1"\nport = ${port}\nagents = 2\npool_id = "workers"\n` +
        `discovery_store = "memory"\nstore_backend = "sqlite"\nstore_path = "${join(dir, "converge.sqlite3")}"\n`,
      [/^agent 2\/2 [0-9a-f]{64} tcp:\/\/127\.0\.0\.1:\d+$/m, /^store: sqlite .*converge\.sqlite3 \(discovery on\)$/m],
    ],
    [
      "TOML (Redis backend)",
      "toml",
      (port) =>
        `transport = "tcp"\nhost = "0.0.0.0"\nport = ${port}\nagents = 1\nstore_backend = "redis"\nstore_path = "${redis.url}"\n`,
      [/^store: redis .* \(discovery on\)$/m],
    ],
  ];
  for (const [name, ext, config, expected] of seedExamples) {
    test(`the seed's example config "${name}" runs and stops cleanly`, async () => {
      const dir = join(tmp.path, `seed-${name.replace(/\W+/g, "-")}`);
      mkdirSync(dir);
      const cfg = join(dir, `config.${ext}`);
      writeFileSync(cfg, config(0, dir)); // port 0: the kernel picks
      const r = startCli(["run", "-c", cfg], bin);
      await r.waitFor("running, press Ctrl+C to stop");
      expect(await r.stop("SIGINT")).toBe(0);
      for (const line of expected) expect(r.stdout).toMatch(line);
      expect(r.stdout).toMatch(/^stopped \d agents? after /m);
    });
  }
});

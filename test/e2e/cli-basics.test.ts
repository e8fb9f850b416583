/**
 * End to end: `converge --help`, `--version`, unknown options and commands, and every refusal of a
 * bad configuration — each one clear line on stderr with its exit code and never a stack trace.
 * Every case is its own short-lived process; they run concurrently.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import pkg from "../../package.json" with { type: "json" };
import { CONFIG_KEYS } from "../../src/cli/config.ts";
import { freePort, runCli, startCli, stopAll, type RunResult } from "../support/cli.ts";
import { tempDir } from "../support/tmp.ts";

const tmp = tempDir("converge-cli-basics-");
const file = (name: string, text: string) => {
  const path = join(tmp.path, name);
  writeFileSync(path, text);
  return path;
};

beforeAll(() => {
  mkdirSync(join(tmp.path, "a-directory.yaml"));
});

afterAll(async () => {
  await stopAll();
  tmp.cleanup();
});

/** The failure is exactly one line on stderr, names the problem, and carries no stack trace. */
function expectOneLineError(r: RunResult, code: number, message: RegExp): void {
  const lines = r.stderr.split("\n").filter((l) => l !== "");
  expect({ code: r.code, lines: lines.length }).toEqual({ code, lines: 1 });
  expect(lines[0]).toMatch(/^converge: /);
  expect(lines[0]).toMatch(message);
  expect(r.stderr).not.toMatch(/^\s{4}at /m);
  expect(r.stdout).toBe("");
}

describe.concurrent("help, version and unknown input", () => {
  test("converge --help lists every command and exits 0", async () => {
    for (const args of [["--help"], ["-h"], []]) {
      const r = await runCli(args);
      expect(r.code).toBe(0);
      expect(r.stderr).toBe("");
      for (const cmd of ["run", "tasks", "schedules", "pools", "agents", "send"])
        expect(r.stdout).toMatch(new RegExp(`^  ${cmd}\\s+\\S`, "m"));
      expect(r.stdout).toContain("--version");
    }
  });

  test("converge run --help documents every config key and the run options", async () => {
    const r = await runCli(["run", "--help"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    for (const key of CONFIG_KEYS) expect(r.stdout).toMatch(new RegExp(`^  ${key}\\s+\\S`, "m"));
    for (const opt of ["-c, --config", "-v, --verbose", "--log-format"]) expect(r.stdout).toContain(opt);
    expect(r.stdout).toContain("CONVERGE_");
    expect(r.stdout).toContain("SIGTERM");
  });

  test("the operator commands have help too", async () => {
    const results = await Promise.all(
      [
        ["tasks", "--help"],
        ["tasks", "submit", "--help"],
        ["pools", "list", "--help"],
        ["agents", "list", "--help"],
        ["send", "--help"],
        ["schedules", "add", "--help"],
      ].map((a) => runCli(a)),
    );
    for (const r of results) {
      expect(r.code).toBe(0);
      expect(r.stdout).toContain("USAGE");
    }
    expect(results[1]!.stdout).toContain("--inputs");
    expect(results[4]!.stdout).toContain("--payload");
    for (const opt of ["--cron=<EXPR>", "--timezone=<TZ>", "--every=<DURATION>", "--catch-up=<N>", "--inputs"])
      expect(results[5]!.stdout).toContain(opt);
  });

  test("when any --help is asked for, it lists every exit code", async () => {
    const results = await Promise.all(
      [["--help"], ["run", "--help"], ["tasks", "get", "--help"]].map((a) => runCli(a)),
    );
    for (const r of results) {
      expect(r.code).toBe(0);
      for (const code of ["0", "1", "2", "3", "130, 143"])
        expect(r.stdout).toMatch(new RegExp(`^  ${code}\\s{2,}\\S`, "m"));
    }
    expect(results[1]!.stdout).toContain("--set=<KEY=VALUE>");
  });

  test("--version and -V print the package version, the commit and, from source, the Bun it runs on", async () => {
    const head = Bun.spawnSync(["git", "rev-parse", "--short=12", "HEAD"]).stdout.toString().trim();
    for (const flag of ["--version", "-V"]) {
      const r = await runCli([flag]);
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
      expect(r.stdout).toStartWith(`converge ${pkg.version} (commit ${head}`);
      expect(r.stdout).toEndWith(`, source, bun ${Bun.version} on ${process.platform}-${process.arch})\n`);
    }
  });

  test("an unknown option is refused with exit 2 and one line", async () => {
    expectOneLineError(await runCli(["run", "--bogus"]), 2, /unknown option --bogus.*converge run --help/);
    expectOneLineError(await runCli(["--bogus"]), 2, /unknown option --bogus/);
    expectOneLineError(await runCli(["tasks", "list", "-x"]), 2, /unknown option -x/);
  });

  test("an argument the command does not take is refused, not ignored (a config file without -c)", async () => {
    expectOneLineError(
      await runCli(["run", "converge.yaml"]),
      2,
      /unexpected argument "converge\.yaml" for converge run; for a config file use converge run -c converge\.yaml/,
    );
    expectOneLineError(
      await runCli(["tasks", "get", "id-1", "id-2"]),
      2,
      /unexpected argument "id-2" for converge tasks get/,
    );
    // -vc FILE: the last flag of a cluster takes the next argument, as citty reads it.
    expectOneLineError(
      await runCli(["run", "-vc", join(tmp.path, "absent.yaml")]),
      2,
      /config file .*absent\.yaml does not exist/,
    );
  });

  test("an option without its value is refused", async () => {
    expectOneLineError(await runCli(["run", "-c"]), 2, /option -c .*needs a value/);
  });

  test("an unknown command is refused with exit 2 and one line", async () => {
    expectOneLineError(await runCli(["frobnicate"]), 2, /unknown command "converge frobnicate"/);
    expectOneLineError(await runCli(["tasks", "frobnicate"]), 2, /unknown command "converge tasks frobnicate"/);
  });
});

describe.concurrent("configuration errors: one line, exit 2, no stack trace", () => {
  const cases: [string, () => { args: string[]; env?: Record<string, string> }, RegExp][] = [
    [
      "a missing config file",
      () => ({ args: ["-c", join(tmp.path, "nope.yaml")] }),
      /config file .*nope\.yaml does not exist/,
    ],
    [
      "a missing file named by CONVERGE_CONFIG",
      () => ({ args: [], env: { CONVERGE_CONFIG: join(tmp.path, "gone.toml") } }),
      /config file .*gone\.toml does not exist/,
    ],
    [
      "a config path that is a directory (unreadable as a file)",
      () => ({ args: ["-c", join(tmp.path, "a-directory.yaml")] }),
      /config file .*a-directory\.yaml is a directory/,
    ],
    [
      "a file holding a list",
      () => ({ args: ["-c", file("list.yaml", "- transport\n- tcp\n")] }),
      /must contain a mapping of keys to values, found a list/,
    ],
    [
      "a file holding a scalar",
      () => ({ args: ["-c", file("scalar.yaml", "just words\n")] }),
      /must contain a mapping of keys to values, found a string/,
    ],
    [
      "an empty file",
      () => ({ args: ["-c", file("empty.yml", "")] }),
      /must contain a mapping of keys to values, found nothing/,
    ],
    [
      "an unsupported extension",
      () => ({ args: ["-c", file("conf.json", "{}")] }),
      /unsupported extension "\.json"; use \.yaml, \.yml or \.toml/,
    ],
    [
      "malformed YAML, with its line",
      () => ({ args: ["-c", file("bad.yaml", "transport: tcp\nport: 9000\nagents: [1,\n  bad: : :\n")] }),
      /not valid YAML at line 4/,
    ],
    [
      "malformed TOML, with its line",
      () => ({ args: ["-c", file("bad.toml", 'transport = "tcp"\nport = = 3\n')] }),
      /not valid TOML at line 2/,
    ],
    [
      "a port above 65535",
      () => ({ args: ["-c", file("port-high.yaml", "port: 70000\n")] }),
      /port must be an integer from 0 to 65535 \(0: a free port\), got 70000/,
    ],
    [
      "a negative port",
      () => ({ args: ["-c", file("port-negative.toml", "port = -1\n")] }),
      /port must be an integer from 0 to 65535 \(0: a free port\), got -1/,
    ],
    [
      "a port that is not a number",
      () => ({ args: ["-c", file("port-word.yaml", "port: abc\n")] }),
      /port must be an integer from 0 to 65535 \(0: a free port\), got "abc"/,
    ],
    [
      "a bad port in the environment",
      () => ({ args: [], env: { CONVERGE_PORT: "12x" } }),
      /port must be an integer from 0 to 65535 \(0: a free port\), got "12x"/,
    ],
    [
      "agents: 0",
      () => ({ args: ["-c", file("agents-zero.yaml", "agents: 0\n")] }),
      /agents must be an integer of at least 1, got 0/,
    ],
    [
      "agents below 1 in the environment",
      () => ({ args: [], env: { CONVERGE_AGENTS: "-1" } }),
      /agents must be an integer of at least 1, got "-1"/,
    ],
    [
      "transport websocket, with a pointer to the library API",
      () => ({ args: ["-c", file("ws.yaml", "transport: websocket\n")] }),
      /transport "websocket" is not available in converge run; use the library API \(WebSocketTransport\)/,
    ],
    [
      "an unknown transport",
      () => ({ args: [], env: { CONVERGE_TRANSPORT: "carrier-pigeon" } }),
      /transport must be local or tcp, got "carrier-pigeon"/,
    ],
    [
      "an unknown store backend",
      () => ({ args: ["-c", file("mongo.toml", 'store_backend = "mongo"\n')] }),
      /store_backend must be memory, file, sqlite or redis, got "mongo"/,
    ],
    [
      "sqlite without store_path",
      () => ({ args: ["-c", file("nopath.yaml", "store_backend: sqlite\n")] }),
      /store_backend sqlite needs store_path/,
    ],
    [
      "file without store_path",
      () => ({ args: [], env: { CONVERGE_STORE_BACKEND: "file" } }),
      /store_backend file needs store_path/,
    ],
    ["a bad --log-format", () => ({ args: ["--log-format", "xml"] }), /--log-format must be text or json/],
  ];
  for (const [name, make, message] of cases) {
    test(`converge run refuses ${name}`, async () => {
      const { args, env } = make();
      expectOneLineError(await runCli(["run", ...args], { env }), 2, message);
    });
  }

  test("operator commands refuse the memory store, which lives only inside one run", async () => {
    expectOneLineError(await runCli(["tasks", "list"]), 2, /needs a shared store/);
  });

  test("an unknown key warns with the nearest known key, and the run still starts", async () => {
    const port = freePort();
    const cfg = file("typo.yaml", `transport: tcp\nprot: 9\nport: ${port}\nagnets: 2\n`);
    const r = startCli(["run", "-c", cfg]);
    await r.waitFor("running, press Ctrl+C");
    expect(r.stderr).toContain(`unknown config key "prot" in ${cfg}; did you mean "port"?`);
    expect(r.stderr).toContain(`unknown config key "agnets" in ${cfg}; did you mean "agents"?`);
    expect(r.stdout).toContain(`tcp://127.0.0.1:${port}`);
    expect(await r.stop("SIGINT")).toBe(0);
  });
});

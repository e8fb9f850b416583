import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { ConfigError } from "../../src/core/errors.ts";
import { expandPath, loadConfig, nearest } from "../../src/cli/config.ts";
import { tempDir } from "../support/tmp.ts";

const dir = tempDir();
afterAll(dir.cleanup);
let n = 0;
const file = (ext: string, body: string) => {
  const p = join(dir.path, `c${n++}${ext}`);
  writeFileSync(p, body);
  return p;
};

describe("configuration", () => {
  test("defaults: local transport, 127.0.0.1, port 8888, one agent", () => {
    const { config } = loadConfig(undefined, {});
    expect(config).toMatchObject({
      transport: "local",
      host: "127.0.0.1",
      port: 8888,
      agents: 1,
      concurrency: 1,
      shutdown_grace_sec: 10,
      claim_ttl_sec: 30,
    });
    expect(config.store_backend).toBeUndefined();
  });

  test("CONVERGE_<KEY> variables are read and numbers parsed", () => {
    const { config } = loadConfig(undefined, {
      CONVERGE_TRANSPORT: "tcp",
      CONVERGE_PORT: "9100",
      CONVERGE_AGENTS: "3",
      CONVERGE_POOL_ID: "w",
      CONVERGE_CAPABILITIES: "a, b",
    });
    expect(config).toMatchObject({ transport: "tcp", port: 9100, agents: 3, pool_id: "w", capabilities: ["a", "b"] });
  });

  test("the file overrides the environment; CONVERGE_CONFIG names the file", () => {
    const p = file(".yaml", "transport: tcp\nport: 9000\n");
    const env = { CONVERGE_PORT: "1234", CONVERGE_AGENTS: "2", CONVERGE_CONFIG: p };
    const { config } = loadConfig(undefined, env);
    expect(config).toMatchObject({ transport: "tcp", port: 9000, agents: 2 });
    expect(loadConfig(p, { CONVERGE_PORT: "1234" }).config.port).toBe(9000);
  });

  test("the manual's four examples load", () => {
    const examples = [
      file(".yaml", "transport: local\nagents: 3\npool_id: my-pool\ndiscovery_store: memory\nstore_backend: memory\n"),
      file(".yaml", "transport: tcp\nhost: 0.0.0.0\nport: 9000\n"),
      file(
        ".toml",
        'transport = "tcp"\nhost = "127.0.0.1"\nport = 8888\nagents = 2\npool_id = "workers"\ndiscovery_store = "memory"\nstore_backend = "sqlite"\nstore_path = "/tmp/converge.sqlite3"\n',
      ),
      file(
        ".toml",
        'transport = "tcp"\nhost = "0.0.0.0"\nport = 9000\nagents = 1\nstore_backend = "redis"\nstore_path = "redis://localhost:6379/0"\n',
      ),
    ];
    expect(examples.map((p) => loadConfig(p, {}).config.store_backend)).toEqual([
      "memory",
      undefined,
      "sqlite",
      "redis",
    ]);
  });

  test("an unknown key is a warning naming the nearest known key", () => {
    const { warnings } = loadConfig(file(".yaml", "agnets: 2\nzzzzzzzz: 1\n"), {});
    expect(warnings[0]).toMatch(/unknown config key "agnets".*did you mean "agents"/);
    expect(warnings[1]).toMatch(/unknown config key "zzzzzzzz"/);
    expect(warnings[1]).not.toMatch(/did you mean/);
    expect(nearest("store_pth", ["store_path", "port"])).toBe("store_path");
  });

  const refused: [string, Record<string, string>, RegExp][] = [
    ["a port that is not an integer", { CONVERGE_PORT: "80.5" }, /port must be an integer from 0 to 65535/],
    ["a port out of range", { CONVERGE_PORT: "70000" }, /port must be an integer from 0 to 65535/],
    ["a port that is text", { CONVERGE_PORT: "http" }, /port must be an integer/],
    ["zero agents", { CONVERGE_AGENTS: "0" }, /agents must be an integer of at least 1/],
    ["an unknown transport", { CONVERGE_TRANSPORT: "carrier-pigeon" }, /transport must be local or tcp/],
    [
      "websocket, with a pointer to the library",
      { CONVERGE_TRANSPORT: "websocket" },
      /library API \(WebSocketTransport\)/,
    ],
    [
      "an unknown store backend",
      { CONVERGE_STORE_BACKEND: "mongo" },
      /store_backend must be memory, file, sqlite or redis/,
    ],
    ["sqlite without store_path", { CONVERGE_STORE_BACKEND: "sqlite" }, /store_backend sqlite needs store_path/],
    ["file without store_path", { CONVERGE_STORE_BACKEND: "file" }, /store_backend file needs store_path/],
    [
      "TCP ports beyond 65535",
      { CONVERGE_TRANSPORT: "tcp", CONVERGE_PORT: "65535", CONVERGE_AGENTS: "2" },
      /beyond 65535/,
    ],
  ];
  for (const [what, env, re] of refused) {
    test(`refuses ${what}`, () => {
      expect(() => loadConfig(undefined, env)).toThrow(re);
      expect(() => loadConfig(undefined, env)).toThrow(ConfigError);
    });
  }

  test("file problems are one clear error each", () => {
    expect(() => loadConfig(join(dir.path, "missing.yaml"), {})).toThrow(/does not exist/);
    expect(() => loadConfig(file(".json", "{}"), {})).toThrow(/unsupported extension ".json"/);
    expect(() => loadConfig(file(".yaml", "- 1\n- 2\n"), {})).toThrow(/must contain a mapping.*found a list/);
    expect(() => loadConfig(file(".yaml", ""), {})).toThrow(/must contain a mapping.*found nothing/);
    expect(() => loadConfig(file(".yaml", "a: 1\n  b: 2\n"), {})).toThrow(/not valid YAML.*line 2/);
    expect(() => loadConfig(file(".toml", "port = \n"), {})).toThrow(/not valid TOML at line 1/);
    const sub = join(dir.path, "sub.yaml");
    mkdirSync(sub);
    expect(() => loadConfig(sub, {})).toThrow(/is a directory/);
  });
});

describe("when --set overrides the configuration", () => {
  test("it wins over the file and the environment, validated like them", () => {
    const p = file(".yaml", "transport: tcp\nport: 9000\nagents: 2\n");
    const { config } = loadConfig(p, { CONVERGE_AGENTS: "5", CONVERGE_POOL_ID: "env" }, [
      "port=0",
      "agents=3",
      "capabilities=a, b",
      "topics=[x, y]",
    ]);
    expect(config).toMatchObject({ transport: "tcp", port: 0, agents: 3, pool_id: "env", capabilities: ["a", "b"] });
    expect(config.topics).toEqual(["x", "y"]);
    expect(() => loadConfig(p, {}, ["port=http"])).toThrow(/^port must be an integer from 0 to 65535.*got "http"$/);
  });

  test("the last --set of a key wins, and an empty value unsets it", () => {
    const p = file(".yaml", "http_port: 9100\npool_id: filepool\n");
    const { config } = loadConfig(p, {}, ["pool_id=a", "pool_id=b", "http_port="]);
    expect(config.pool_id).toBe("b");
    expect(config.http_port).toBeUndefined();
  });

  test("an unknown key, a missing = or bad YAML is refused, naming what was given", () => {
    expect(() => loadConfig(undefined, {}, ["prot=1"])).toThrow(
      /^--set "prot": no such config key; did you mean "port"\?/,
    );
    expect(() => loadConfig(undefined, {}, ["port"])).toThrow(/^--set takes KEY=VALUE, got "port"$/);
    expect(() => loadConfig(undefined, {}, ["=1"])).toThrow(ConfigError);
    expect(() => loadConfig(undefined, {}, ["topics=[a, "])).toThrow(/^--set topics: the value is not valid YAML/);
  });
});

describe("when paths and values come from the configuration", () => {
  test("~ is expanded in every path key, whether from the file, the environment or --set", () => {
    const p = file(".yaml", "identity_dir: ~/ids\nagent: ~/w.js\nstore_backend: sqlite\nstore_path: ~/x.db\n");
    const { config } = loadConfig(p, {});
    expect([config.identity_dir, config.agent, config.store_path]).toEqual([
      join(homedir(), "ids"),
      join(homedir(), "w.js"),
      join(homedir(), "x.db"),
    ]);
    expect(loadConfig(undefined, { CONVERGE_DISCOVERY_STORE: "~/d" }).config.discovery_store).toBe(
      join(homedir(), "d"),
    );
    expect(loadConfig(undefined, {}, ["identity_dir=~"]).config.identity_dir).toBe(homedir());
    expect(expandPath("a/~/b")).toBe("a/~/b");
    expect(expandPath("~user/x")).toBe("~user/x");
  });

  test("port 0 and http_port 0 are accepted (free ports), also with many TCP agents", () => {
    const { config } = loadConfig(undefined, { CONVERGE_TRANSPORT: "tcp", CONVERGE_AGENTS: "100" }, [
      "port=0",
      "http_port=0",
    ]);
    expect([config.port, config.http_port, config.agents]).toEqual([0, 0, 100]);
  });

  test("control characters in a value are refused and shown escaped, never raw", () => {
    const p = file(".yaml", 'store_backend: sqlite\nstore_path: "a\\0b\\e[2J"\n');
    expect(() => loadConfig(p, {})).toThrow(
      /^store_path must be text without control characters, got "a\\u0000b\\u001b\[2J"$/,
    );
    expect(() => loadConfig(undefined, {}, ["capabilities=a\nb"])).toThrow(/control characters/);
  });

  test("an error message shows only the start of a long value", () => {
    const p = file(".yaml", `capabilities:\n${Array.from({ length: 5000 }, (_, i) => `  - [${i}]`).join("\n")}\n`);
    let message = "";
    try {
      loadConfig(p, {});
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/^capabilities must be a list of strings, got \[\[0\],\[1\],/);
    expect(message.length).toBeLessThan(400);
  });

  test("a YAML billion laughs (nested aliases) is refused at once, in bounded memory", () => {
    const levels = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"];
    for (let i = 1; i < 9; i++) {
      const [prev, cur] = ["abcdefghi"[i - 1], "abcdefghi"[i]];
      levels.push(`${cur}: &${cur} [${Array(9).fill(`*${prev}`).join(",")}]`);
    }
    levels.push(`capabilities: [${Array(9).fill("*i").join(",")}]`);
    const p = file(".yaml", `${levels.join("\n")}\n`);
    expect(levels.join("\n").length).toBeLessThan(600);
    expect(() => loadConfig(p, {})).toThrow(
      /expands to more than 100000 values \(nested YAML aliases\?\); refusing it$/,
    );
  });

  test("a config file larger than 1 MiB is refused without being read", () => {
    const p = file(".yaml", `pool_id: p\n# ${"x".repeat(1024 * 1024)}\n`);
    expect(() => loadConfig(p, {})).toThrow(/is \d+ bytes; a config file may be at most 1 MiB$/);
  });
});

describe("the retention key", () => {
  test("per final state, a duration removes older tasks and a whole number keeps the newest; interval defaults to 1m", () => {
    const p = file(".yaml", "retention:\n  completed: 7d\n  failed: 100\n  cancelled: 1h30m\n");
    expect(loadConfig(p, {}).config.retention).toEqual({
      rules: [
        { state: "completed", olderThanMs: 7 * 86_400_000 },
        { state: "failed", keep: 100 },
        { state: "cancelled", olderThanMs: 5_400_000 },
      ],
      intervalMs: 60_000,
    });
    expect(loadConfig(undefined, {}).config.retention).toBeUndefined();
  });

  test("--set sets one key of it, the environment all of it as a YAML mapping, and the file wins over the environment", () => {
    const sets = ["retention.completed=2d", "retention.interval=30"];
    expect(loadConfig(undefined, {}, sets).config.retention).toEqual({
      rules: [{ state: "completed", olderThanMs: 2 * 86_400_000 }],
      intervalMs: 30_000,
    });
    const env = { CONVERGE_RETENTION: "{failed: 10}" };
    expect(loadConfig(undefined, env).config.retention!.rules).toEqual([{ state: "failed", keep: 10 }]);
    const p = file(".yaml", "retention:\n  completed: 1d\n");
    expect(loadConfig(p, env).config.retention!.rules).toEqual([{ state: "completed", olderThanMs: 86_400_000 }]);
    expect(loadConfig(undefined, {}, ["retention.completed="]).config.retention).toBeUndefined();
  });

  test("an unknown key inside it is a warning with the nearest one; a bad value is one clear error", () => {
    const p = file(".yaml", "retention:\n  complted: 7d\n  failed: 3d\n");
    const { config, warnings } = loadConfig(p, {});
    expect(warnings).toEqual([
      `unknown config key "retention.complted" in ${p}; did you mean "retention.completed"? (ignored)`,
    ]);
    expect(config.retention!.rules).toEqual([{ state: "failed", olderThanMs: 3 * 86_400_000 }]);
    expect(() => loadConfig(file(".yaml", "retention: 7d\n"), {})).toThrow(
      "retention must be a mapping of final states to a duration or a count, e.g. {completed: 7d, failed: 1000}",
    );
    expect(() => loadConfig(undefined, {}, ["retention.completed=7 days"])).toThrow(
      'retention.completed must be a duration such as 30s, 15m, 2h or 7d, got "7 days"',
    );
    expect(() => loadConfig(undefined, {}, ["retention.interval=500ms"])).toThrow(
      "retention.interval must be at least 1s",
    );
    expect(() => loadConfig(undefined, {}, ["retention.pending=1d"])).toThrow(
      '--set "retention.pending": no such config key',
    );
  });
});

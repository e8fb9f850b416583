import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "../../src/core/errors.ts";
import { loadConfig, nearest } from "../../src/cli/config.ts";
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
    ["a port that is not an integer", { CONVERGE_PORT: "80.5" }, /port must be an integer from 1 to 65535/],
    ["a port out of range", { CONVERGE_PORT: "70000" }, /port must be an integer from 1 to 65535/],
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

import { describe, expect, test } from "bun:test";
import { ConfigError } from "../../src/core/errors.ts";
import { parseLlmConfig } from "../../src/llm/config.ts";

const parse = (file: unknown, env: Record<string, string> = {}, warn: (k: string) => void = () => {}) =>
  parseLlmConfig(file, env, { configDir: "/etc/converge", warn });

describe("the llm mapping", () => {
  test("when nothing sets it, there is none; defaults fill what is not set", () => {
    expect(parse(undefined)).toBeUndefined();
    expect(parse({ provider: "openai" })).toEqual({
      provider: "openai",
      timeout_sec: 120,
      max_steps: 8,
      request_retries: 3,
      tool_timeout_sec: 30,
      mode: "worker",
      mcp_servers: [],
    });
  });

  test("CONVERGE_LLM_<KEY> variables set scalar keys, and the file wins key by key", () => {
    const c = parse(
      { model: "from-file" },
      { CONVERGE_LLM_PROVIDER: "mistral", CONVERGE_LLM_MODEL: "from-env", CONVERGE_LLM_TOOLS: "a, b" },
    );
    expect(c).toMatchObject({ provider: "mistral", model: "from-file", tools: ["a", "b"] });
  });

  test("a relative system_prompt_file or MCP cwd is relative to the config file", () => {
    const c = parse({
      provider: "openai",
      system_prompt_file: "prompts/worker.txt",
      mcp_servers: [{ name: "fs", command: "mcp-fs", cwd: "data" }],
    })!;
    expect(c.system_prompt_file).toBe("/etc/converge/prompts/worker.txt");
    expect(c.mcp_servers).toEqual([
      { name: "fs", command: "mcp-fs", args: [], env: {}, pass_env: [], cwd: "/etc/converge/data" },
    ]);
  });

  test("an unknown key is passed to warn; the rest still loads", () => {
    const unknown: string[] = [];
    expect(parse({ provider: "openai", temprature: 1 }, {}, (k) => unknown.push(k))?.provider).toBe("openai");
    expect(unknown).toEqual(["temprature"]);
  });

  test("a bad mcp server is refused naming it and what is wrong", () => {
    const bad = (servers: unknown) => () => parse({ provider: "openai", mcp_servers: servers });
    expect(bad({ name: "x" })).toThrow("llm.mcp_servers must be a list of servers");
    expect(bad([{ name: "x" }])).toThrow('llm.mcp_servers[0] ("x") needs exactly one of command');
    expect(bad([{ name: "x", url: "ftp://h" }])).toThrow("llm.mcp_servers[0].url must be an http:// or https:// URL");
    expect(bad([{ name: "x", command: "c", headers: {} }])).toThrow("headers is for url servers");
    expect(bad([{ name: "x", command: "c", nope: 1 }])).toThrow('llm.mcp_servers[0] has an unknown key "nope"');
    expect(
      bad([
        { name: "a", command: "c" },
        { name: "a", url: "http://h/mcp" },
      ]),
    ).toThrow('two servers are named "a"');
  });

  test("the undocumented window option must be at least 100 ms", () => {
    expect(parse({ provider: "openai" }, { CONVERGE_LLM_RATE_WINDOW_MS: "1500" })?.rate_window_ms).toBe(1500);
    expect(() => parse({ provider: "openai" }, { CONVERGE_LLM_RATE_WINDOW_MS: "5" })).toThrow(ConfigError);
  });

  test("base_url must be http(s); api_key_env must be a variable name, not a key", () => {
    expect(() => parse({ provider: "openai", base_url: "file:///etc/passwd" })).toThrow("llm.base_url must be an http");
    expect(() => parse({ provider: "openai", api_key_env: "sk-abc123" })).toThrow("not the key itself");
    expect(parse({ provider: "openai", base_url: "http://127.0.0.1:11434/v1/" })?.base_url).toBe(
      "http://127.0.0.1:11434/v1",
    );
  });
});

/**
 * `converge run` refuses a bad `llm` mapping with one line and exit 2 before any agent runs: a
 * missing key variable (named), an unknown provider, a bad value, a key in the file, a missing MCP
 * command. CONVERGE_LLM_<KEY> variables set scalar keys; an unknown llm key is a warning naming the
 * nearest; `converge run --help` lists the llm keys.
 */
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCli, stopAll } from "../support/cli.ts";
import { useE2eEnvironment } from "../support/e2e.ts";
import { LLM_KEYS } from "../../src/llm/config.ts";

const { tmp } = useE2eEnvironment({ prefix: "converge-e2e-llm-config-", cleanup: [stopAll] });
let n = 0;
const config = (llm: unknown, keys: Record<string, unknown> = {}) => {
  const file = join(tmp.path, `c${n++}.yaml`);
  writeFileSync(file, JSON.stringify({ ...keys, llm }));
  return file;
};

async function refused(args: string[], env: Record<string, string> = {}) {
  const r = await runCli(args, { env });
  expect(r.code).toBe(2);
  expect(r.stdout).not.toContain("running");
  const lines = r.stderr.trim().split("\n");
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

describe.concurrent("an llm config", () => {
  test("when the key variable is not set, run exits 2 naming it", async () => {
    const line = await refused(["run", "-c", config({ provider: "openai", api_key_env: "TEAM_OPENAI_KEY" })]);
    expect(line).toBe(
      "converge: environment variable TEAM_OPENAI_KEY is not set: llm.provider openai reads its API key from it (llm.api_key_env names the variable)",
    );
  });

  test("when only CONVERGE_LLM_PROVIDER is set, the provider's default key variable is named", async () => {
    const line = await refused(["run"], { CONVERGE_LLM_PROVIDER: "anthropic" });
    expect(line).toContain("environment variable ANTHROPIC_API_KEY is not set");
  });

  test("when the provider is unknown, run exits 2 listing the known ones", async () => {
    const line = await refused(["run", "-c", config({ provider: "gemini" })]);
    expect(line).toBe(
      'converge: llm.provider must be one of openai, anthropic, mistral, openai-compatible, got "gemini"',
    );
  });

  test("when a value is bad, run exits 2 naming the key", async () => {
    expect(await refused(["run", "-c", config({ provider: "mistral", temperature: 7 })])).toBe(
      "converge: llm.temperature must be a number from 0 to 2, got 7",
    );
    expect(await refused(["run"], { CONVERGE_LLM_PROVIDER: "openai", CONVERGE_LLM_MAX_STEPS: "0" })).toBe(
      'converge: llm.max_steps must be a whole number of at least 1, got "0"',
    );
    expect(await refused(["run", "-c", config({ provider: "openai-compatible", model: "m" })])).toContain(
      "needs llm.base_url",
    );
  });

  test("when the file holds an API key, run exits 2 and says where keys go", async () => {
    const line = await refused(["run", "-c", config({ provider: "openai", api_key: "sk-123" })]);
    expect(line).toContain("llm.api_key is not accepted");
    expect(line).not.toContain("sk-123");
  });

  test("when an MCP server's command does not exist, run exits 2 naming the server", async () => {
    const line = await refused(
      ["run", "-c", config({ provider: "openai", mcp_servers: [{ name: "fs", command: "no-such-mcp-server" }] })],
      {
        OPENAI_API_KEY: "k",
      },
    );
    expect(line).toBe('converge: llm.mcp_servers "fs": command no-such-mcp-server not found');
  });

  test("when an llm key is misspelt, a warning names the nearest key", async () => {
    const r = await runCli([
      "tasks",
      "list",
      "-c",
      config({ provider: "openai", max_step: 3 }, { store_backend: "sqlite", store_path: join(tmp.path, "w.db") }),
    ]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('unknown config key "llm.max_step"');
    expect(r.stderr).toContain('did you mean "llm.max_steps"?');
  });

  test("converge run --help lists every llm key", async () => {
    const r = await runCli(["run", "--help"]);
    expect(r.code).toBe(0);
    for (const key of LLM_KEYS) expect(r.stdout).toMatch(new RegExp(`^  llm\\.${key}\\s+\\S`, "m"));
  });
});

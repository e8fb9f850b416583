/**
 * The `llm` mapping of a `converge run` config: which provider and model, the fleet's limits, the
 * budgets per task, tools and MCP servers. Scalar keys can also come from `CONVERGE_LLM_<KEY>`;
 * the file wins key by key. Only shapes and values are checked here (every command loads the
 * config); the API key variable and the system prompt file are read when `run` starts the agents.
 * No provider library is imported here, so loading a config stays fast.
 */
import { isAbsolute, resolve } from "node:path";
import { ConfigError } from "../core/errors.ts";
import { printable } from "../core/text.ts";

export const PROVIDER_NAMES = ["openai", "anthropic", "mistral", "openai-compatible"] as const;
export type ProviderName = (typeof PROVIDER_NAMES)[number];

/** An MCP server the agents may use the tools of: a stdio command, or a streamable HTTP URL. */
export type McpServerConfig =
  | {
      name: string;
      command: string;
      args: string[];
      /** Variables set for the server, besides HOME, PATH and a few others it inherits. */
      env: Record<string, string>;
      /** Variables copied from converge's own environment (for tokens the server needs). */
      pass_env: string[];
      cwd?: string;
    }
  | {
      name: string;
      url: string;
      headers: Record<string, string>;
      /** The variable holding a bearer token for the server. */
      bearer_token_env?: string;
    };

export interface LlmConfig {
  provider: ProviderName;
  model?: string;
  base_url?: string;
  api_key_env?: string;
  system_prompt?: string;
  /** Absolute (resolved against the config file). */
  system_prompt_file?: string;
  temperature?: number;
  max_output_tokens?: number;
  timeout_sec: number;
  max_steps: number;
  requests_per_minute?: number;
  tokens_per_minute?: number;
  max_requests_per_task?: number;
  max_tokens_per_task?: number;
  request_retries: number;
  tool_timeout_sec: number;
  tools?: string[];
  mcp_servers: McpServerConfig[];
  mode: "worker" | "decider";
  /** Not for users: the rate-limit window (tests shorten it), from CONVERGE_LLM_RATE_WINDOW_MS. */
  rate_window_ms?: number;
}

type Kind = "string" | "provider" | "mode" | "url" | "env-name" | "int" | "count" | "number" | "temperature" | "list";
const KEYS: Record<string, { kind: Kind; doc: string }> = {
  provider: {
    kind: "provider",
    doc: "openai, anthropic, mistral or openai-compatible (Ollama, vLLM, llama.cpp, LM Studio)",
  },
  model: {
    kind: "string",
    doc:
      "model id (default gpt-4o-mini, claude-sonnet-4-20250514, mistral-small-latest; " +
      "required for openai-compatible)",
  },
  base_url: { kind: "url", doc: "API base URL, e.g. http://127.0.0.1:11434/v1 (required for openai-compatible)" },
  api_key_env: {
    kind: "env-name",
    doc: "variable holding the API key (default OPENAI_API_KEY, ANTHROPIC_API_KEY, MISTRAL_API_KEY); never the key",
  },
  system_prompt: { kind: "string", doc: "system prompt (replaces the default one)" },
  system_prompt_file: { kind: "string", doc: "file holding the system prompt; relative to the config file" },
  temperature: { kind: "temperature", doc: "sampling temperature, 0 to 2 (default: the provider's)" },
  max_output_tokens: { kind: "int", doc: "most tokens one answer may have (default: the provider's)" },
  timeout_sec: { kind: "number", doc: "timeout of one request (default 120)" },
  max_steps: { kind: "int", doc: "most model requests (tool rounds) per task or decide pass (default 8)" },
  requests_per_minute: { kind: "int", doc: "requests per minute for the whole fleet sharing the store" },
  tokens_per_minute: { kind: "int", doc: "tokens (in + out) per minute for the whole fleet sharing the store" },
  max_requests_per_task: { kind: "int", doc: "model answers one task attempt may use; more fails it" },
  max_tokens_per_task: { kind: "int", doc: "tokens (in + out) one task attempt may use; more fails it" },
  request_retries: { kind: "count", doc: "retries of a request after a transient error (default 3)" },
  tool_timeout_sec: { kind: "number", doc: "timeout of one tool call (default 30)" },
  tools: { kind: "list", doc: "tools the model may call (registry and MCP tool names; default all)" },
  mode: { kind: "mode", doc: "worker (default: onTask through the model) or decider (decide() through tool calls)" },
  mcp_servers: {
    kind: "list",
    doc: "MCP servers: [{ name, command, args?, env?, pass_env?, cwd? } or { name, url, headers?, bearer_token_env? }]",
  },
};

/** Documentation of the `llm.*` keys, for `converge run --help`. */
export const LLM_DOCS: Record<string, { doc: string }> = Object.fromEntries(
  Object.entries(KEYS).map(([k, v]) => [`llm.${k}`, { doc: v.doc }]),
);
export const LLM_KEYS = Object.keys(KEYS);

const DEFAULTS = { timeout_sec: 120, max_steps: 8, request_retries: 3, tool_timeout_sec: 30, mode: "worker" };

/**
 * The validated `llm` settings from the file's mapping and `CONVERGE_LLM_<KEY>` variables (the
 * file wins), or undefined when neither sets anything. Unknown keys become warnings.
 */
export function parseLlmConfig(
  fromFile: unknown,
  env: Record<string, string | undefined>,
  options: { configDir?: string; warn: (key: string) => void },
): LlmConfig | undefined {
  const raw: Record<string, unknown> = {};
  for (const key of LLM_KEYS) {
    if (key === "mcp_servers") continue;
    const v = env[`CONVERGE_LLM_${key.toUpperCase()}`];
    if (v !== undefined && v !== "") raw[key] = v;
  }
  if (fromFile !== undefined && fromFile !== null) {
    if (typeof fromFile !== "object" || Array.isArray(fromFile))
      throw new ConfigError(
        `llm must be a mapping of settings (llm.provider, llm.model, ...), got ${describe(fromFile)}`,
      );
    for (const [k, v] of Object.entries(fromFile)) {
      if (k === "api_key")
        throw new ConfigError(
          "llm.api_key is not accepted: keep the key out of config files; " +
            "put it in an environment variable and name that variable in llm.api_key_env",
        );
      if (!(k in KEYS)) {
        options.warn(k);
        continue;
      }
      raw[k] = v;
    }
  }
  if (Object.keys(raw).length === 0) return undefined;
  const c: Record<string, unknown> = { ...DEFAULTS, mcp_servers: [] };
  for (const [k, v] of Object.entries(raw)) c[k] = k === "mcp_servers" ? mcpServers(v) : coerce(k, v);
  if (c.provider === undefined)
    throw new ConfigError("llm needs a provider: openai, anthropic, mistral or openai-compatible");
  if (c.provider === "openai-compatible") {
    if (!c.base_url)
      throw new ConfigError("llm.provider openai-compatible needs llm.base_url, e.g. http://127.0.0.1:11434/v1");
    if (!c.model) throw new ConfigError("llm.provider openai-compatible needs llm.model (the server's model id)");
  }
  if (c.system_prompt !== undefined && c.system_prompt_file !== undefined)
    throw new ConfigError("llm: set system_prompt or system_prompt_file, not both");
  if (typeof c.system_prompt_file === "string" && !isAbsolute(c.system_prompt_file))
    c.system_prompt_file = resolve(options.configDir ?? process.cwd(), c.system_prompt_file);
  const names = new Set<string>();
  for (const s of c.mcp_servers as McpServerConfig[]) {
    if (names.has(s.name)) throw new ConfigError(`llm.mcp_servers: two servers are named "${printable(s.name)}"`);
    names.add(s.name);
    if ("cwd" in s && s.cwd !== undefined && !isAbsolute(s.cwd))
      s.cwd = resolve(options.configDir ?? process.cwd(), s.cwd);
  }
  const window = env.CONVERGE_LLM_RATE_WINDOW_MS;
  if (window !== undefined && window !== "") {
    const n = Number(window);
    if (!Number.isFinite(n) || n < 100)
      throw new ConfigError(`CONVERGE_LLM_RATE_WINDOW_MS must be at least 100, got "${printable(window)}"`);
    c.rate_window_ms = n;
  }
  return c as unknown as LlmConfig;
}

function coerce(key: string, value: unknown): unknown {
  const kind = KEYS[key]!.kind;
  const bad = (what: string) => new ConfigError(`llm.${key} must be ${what}, got ${describe(value)}`);
  const number = () =>
    typeof value === "number"
      ? value
      : typeof value === "string" && /^\s*-?\d+(\.\d+)?\s*$/.test(value)
        ? Number(value)
        : NaN;
  switch (kind) {
    case "string":
      if (typeof value === "string" && value.trim() !== "") return value.trim();
      throw bad("a non-empty string");
    case "provider":
      if (typeof value === "string" && (PROVIDER_NAMES as readonly string[]).includes(value.trim()))
        return value.trim();
      throw new ConfigError(`llm.provider must be one of ${PROVIDER_NAMES.join(", ")}, got ${describe(value)}`);
    case "mode":
      if (value === "worker" || value === "decider") return value;
      throw bad("worker or decider");
    case "url": {
      if (typeof value !== "string") throw bad("an http:// or https:// URL");
      let u: URL;
      try {
        u = new URL(value.trim());
      } catch {
        throw bad("an http:// or https:// URL");
      }
      if (u.protocol !== "http:" && u.protocol !== "https:") throw bad("an http:// or https:// URL");
      return value.trim().replace(/\/+$/, "");
    }
    case "env-name":
      if (typeof value === "string" && /^[A-Za-z_][A-Za-z0-9_]*$/.test(value.trim())) return value.trim();
      throw bad("the name of an environment variable (letters, digits and _), not the key itself");
    case "int": {
      const n = number();
      if (!Number.isInteger(n) || n < 1) throw bad("a whole number of at least 1");
      return n;
    }
    case "count": {
      const n = number();
      if (!Number.isInteger(n) || n < 0 || n > 100) throw bad("a whole number from 0 to 100");
      return n;
    }
    case "number": {
      const n = number();
      if (!Number.isFinite(n) || n <= 0) throw bad("a number greater than 0");
      return n;
    }
    case "temperature": {
      const n = number();
      if (!Number.isFinite(n) || n < 0 || n > 2) throw bad("a number from 0 to 2");
      return n;
    }
    case "list": {
      const items = typeof value === "string" ? value.split(",") : Array.isArray(value) ? value : undefined;
      if (!items?.every((x) => typeof x === "string")) throw bad("a list of strings");
      return (items as string[]).map((x) => x.trim()).filter(Boolean);
    }
  }
}

function mcpServers(value: unknown): McpServerConfig[] {
  if (!Array.isArray(value))
    throw new ConfigError(
      `llm.mcp_servers must be a list of servers ({ name, command } or { name, url }), got ${describe(value)}`,
    );
  return value.map((s, i) => {
    const where = `llm.mcp_servers[${i}]`;
    if (typeof s !== "object" || s === null || Array.isArray(s))
      throw new ConfigError(
        `${where} must be a mapping { name, command, ... } or { name, url, ... }, got ${describe(s)}`,
      );
    const o = s as Record<string, unknown>;
    const allowed = new Set([
      "name",
      "command",
      "args",
      "env",
      "pass_env",
      "cwd",
      "url",
      "headers",
      "bearer_token_env",
    ]);
    for (const k of Object.keys(o))
      if (!allowed.has(k))
        throw new ConfigError(`${where} has an unknown key "${printable(k)}"; allowed: ${[...allowed].join(", ")}`);
    const str = (k: string, required = false): string | undefined => {
      const v = o[k];
      if (v === undefined && !required) return undefined;
      if (typeof v !== "string" || v.trim() === "")
        throw new ConfigError(`${where}.${k} must be a non-empty string, got ${describe(v)}`);
      return v.trim();
    };
    const strings = (k: string): string[] => {
      const v = o[k] ?? [];
      if (!Array.isArray(v) || !v.every((x) => typeof x === "string"))
        throw new ConfigError(`${where}.${k} must be a list of strings, got ${describe(v)}`);
      return v as string[];
    };
    const map = (k: string): Record<string, string> => {
      const v = o[k] ?? {};
      if (
        typeof v !== "object" ||
        v === null ||
        Array.isArray(v) ||
        !Object.values(v).every((x) => typeof x === "string")
      )
        throw new ConfigError(`${where}.${k} must be a mapping of names to strings, got ${describe(v)}`);
      return v as Record<string, string>;
    };
    const name = str("name", true)!;
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name))
      throw new ConfigError(`${where}.name must be 1 to 64 letters, digits, _, . or -, got ${describe(o.name)}`);
    if ((o.command === undefined) === (o.url === undefined))
      throw new ConfigError(
        `${where} ("${name}") needs exactly one of command (a stdio server) or url (streamable HTTP)`,
      );
    if (o.command !== undefined) {
      for (const k of ["url", "headers", "bearer_token_env"])
        if (o[k] !== undefined)
          throw new ConfigError(`${where} ("${name}"): ${k} is for url servers, not command ones`);
      const names = strings("pass_env");
      const badName = names.find((n) => !/^[A-Za-z_][A-Za-z0-9_]*$/.test(n));
      if (badName !== undefined)
        throw new ConfigError(`${where}.pass_env: "${printable(badName)}" is not a variable name`);
      return {
        name,
        command: str("command", true)!,
        args: strings("args"),
        env: map("env"),
        pass_env: names,
        cwd: str("cwd"),
      };
    }
    for (const k of ["args", "env", "pass_env", "cwd"])
      if (o[k] !== undefined) throw new ConfigError(`${where} ("${name}"): ${k} is for command servers, not url ones`);
    const url = str("url", true)!;
    let u: URL | undefined;
    try {
      u = new URL(url);
    } catch {}
    if (!u || (u.protocol !== "http:" && u.protocol !== "https:"))
      throw new ConfigError(`${where}.url must be an http:// or https:// URL, got ${describe(url)}`);
    const token = str("bearer_token_env");
    if (token !== undefined && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(token))
      throw new ConfigError(`${where}.bearer_token_env must name an environment variable, got ${describe(token)}`);
    return { name, url, headers: map("headers"), ...(token ? { bearer_token_env: token } : {}) };
  });
}

function describe(v: unknown): string {
  if (v === undefined) return "nothing";
  if (Array.isArray(v)) return "a list";
  if (v === null) return "null";
  if (typeof v === "object") return "a mapping";
  return printable(JSON.stringify(v) ?? String(v), 80);
}

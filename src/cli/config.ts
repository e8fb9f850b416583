/**
 * Configuration for `converge run` and the operator commands, as the manual says: CONVERGE_<KEY>
 * environment variables, then an optional YAML (.yaml, .yml) or TOML (.toml) file whose values win.
 * Every value is validated here, so a bad one is one clear line (ConfigError, exit 2) before
 * anything starts.
 */
import { readFileSync } from "node:fs";
import { dirname, extname, resolve } from "node:path";
import { parseTOML, parseYAML } from "confbox";
import { ConfigError } from "../core/errors.ts";
import { LLM_DOCS, LLM_KEYS, parseLlmConfig, type LlmConfig } from "../llm/config.ts";

export interface Config {
  transport: "local" | "tcp";
  host: string;
  port: number;
  agents: number;
  pool_id?: string;
  discovery_store?: string;
  store_backend?: "memory" | "file" | "sqlite" | "redis";
  store_path?: string;
  /** Worker hosting (agent modules). */
  agent?: string;
  concurrency: number;
  capabilities: string[];
  topics: string[];
  identity_dir?: string;
  http_port?: number;
  shutdown_grace_sec: number;
  claim_ttl_sec: number;
  /** Model-driven agents (the `llm` mapping, see src/llm/config.ts). */
  llm?: LlmConfig;
  /** Where the file was, for resolving relative paths in it; undefined without a file. */
  configDir?: string;
}

type Kind = "string" | "port" | "positive-int" | "non-negative-number" | "positive-number" | "list" | "mapping";
const KEYS: Record<string, { kind: Kind; doc: string }> = {
  transport: { kind: "string", doc: "local (default) or tcp" },
  host: { kind: "string", doc: "host for network transports (default 127.0.0.1)" },
  port: { kind: "port", doc: "TCP port of the first agent; agent i listens on port + i (default 8888)" },
  agents: { kind: "positive-int", doc: "number of agents in this process (default 1)" },
  pool_id: { kind: "string", doc: "create this pool if absent and have every agent join it" },
  discovery_store: { kind: "string", doc: "legacy: memory, or a directory for a file store" },
  store_backend: { kind: "string", doc: "memory, file, sqlite or redis" },
  store_path: { kind: "string", doc: "directory (file), database file (sqlite) or redis:// URL" },
  agent: { kind: "string", doc: "agent module (.ts, .js, .mjs); relative to the config file" },
  concurrency: { kind: "positive-int", doc: "tasks one agent runs at once (default 1)" },
  capabilities: { kind: "list", doc: "capabilities given to every agent (comma-separated in the environment)" },
  topics: { kind: "list", doc: "topic namespaces given to every agent" },
  identity_dir: {
    kind: "string",
    doc: "keep agent i's identity in <dir>/agent-<i>.key across restarts; relative to the config file",
  },
  http_port: { kind: "port", doc: "serve /healthz, /readyz and /metrics on host:http_port" },
  shutdown_grace_sec: {
    kind: "non-negative-number",
    doc: "how long running tasks may finish on shutdown (default 10)",
  },
  claim_ttl_sec: { kind: "positive-number", doc: "lease length for tasks that set none (default 30)" },
  llm: { kind: "mapping", doc: "model-driven agents: the llm.* keys below (scalars also as CONVERGE_LLM_<KEY>)" },
};
/** Top-level keys (each also CONVERGE_<KEY>; `llm` is a mapping read by parseLlmConfig). */
export const CONFIG_KEYS = Object.keys(KEYS);
export const CONFIG_DOCS: Record<string, { doc: string }> = { ...KEYS, ...LLM_DOCS };

const DEFAULTS = {
  transport: "local",
  host: "127.0.0.1",
  port: 8888,
  agents: 1,
  concurrency: 1,
  capabilities: [],
  topics: [],
  shutdown_grace_sec: 10,
  claim_ttl_sec: 30,
} as const;

export interface LoadResult {
  config: Config;
  warnings: string[];
  /** The file that was read, if any. */
  file?: string;
}

/** Loads env + optional file (file wins), validates, and returns the config with any warnings. */
export function loadConfig(
  path: string | undefined,
  env: Record<string, string | undefined> = process.env,
): LoadResult {
  const warnings: string[] = [];
  const raw: Record<string, unknown> = {};
  let llmFromFile: unknown;
  for (const key of CONFIG_KEYS) {
    if (key === "llm") continue;
    const v = env[`CONVERGE_${key.toUpperCase()}`];
    if (v !== undefined && v !== "") raw[key] = v;
  }
  const file = path ?? (env.CONVERGE_CONFIG || undefined);
  let configDir: string | undefined;
  if (file) {
    const data = readConfigFile(file);
    configDir = dirname(resolve(file));
    for (const [k, v] of Object.entries(data)) {
      if (!(k in KEYS)) {
        const near = nearest(k, CONFIG_KEYS);
        warnings.push(`unknown config key "${k}" in ${file}${near ? `; did you mean "${near}"?` : ""} (ignored)`);
        continue;
      }
      if (k === "llm") llmFromFile = v;
      else raw[k] = v;
    }
  }
  const config = validate(raw, configDir);
  const llm = parseLlmConfig(llmFromFile, env, {
    configDir,
    warn: (k) => {
      const near = nearest(k, LLM_KEYS);
      warnings.push(`unknown config key "llm.${k}" in ${file}${near ? `; did you mean "llm.${near}"?` : ""} (ignored)`);
    },
  });
  if (llm) config.llm = llm;
  return { config, warnings, file };
}

function readConfigFile(file: string): Record<string, unknown> {
  const ext = extname(file).toLowerCase();
  if (![".yaml", ".yml", ".toml"].includes(ext)) {
    throw new ConfigError(
      `config file ${file} has an unsupported extension "${ext || "(none)"}"; use .yaml, .yml or .toml`,
    );
  }
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(
      code === "ENOENT"
        ? `config file ${file} does not exist`
        : code === "EISDIR"
          ? `config file ${file} is a directory`
          : `cannot read config file ${file}: ${(err as Error).message}`,
    );
  }
  let data: unknown;
  try {
    data = ext === ".toml" ? parseTOML(text) : text.trim() === "" ? null : parseYAML(text);
  } catch (err) {
    // YAML errors carry a 0-based `mark` and end in "(line:column)"; TOML errors a 1-based line and column.
    const e = err as Error & { line?: number; column?: number; mark?: { line: number; column: number } };
    const line = e.mark ? e.mark.line + 1 : e.line;
    const column = e.mark ? e.mark.column + 1 : e.column;
    const where = line !== undefined ? ` at line ${line}${column !== undefined ? `, column ${column}` : ""}` : "";
    const first = e.message
      .split("\n")[0]!
      .replace(/^Invalid TOML document: /, "")
      .replace(/\s*\(\d+:\d+\)$/, "");
    throw new ConfigError(`config file ${file} is not valid ${ext === ".toml" ? "TOML" : "YAML"}${where}: ${first}`);
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    throw new ConfigError(
      `config file ${file} must contain a mapping of keys to values, found ${data === null ? "nothing" : Array.isArray(data) ? "a list" : `a ${typeof data}`}`,
    );
  }
  return data as Record<string, unknown>;
}

function validate(raw: Record<string, unknown>, configDir: string | undefined): Config {
  const v: Record<string, unknown> = { ...DEFAULTS };
  for (const [k, value] of Object.entries(raw)) v[k] = coerce(k, value);
  const transport = v.transport;
  if (transport === "websocket" || transport === "ws") {
    throw new ConfigError(
      `transport "${transport}" is not available in converge run; use the library API (WebSocketTransport) to run agents over WebSocket`,
    );
  }
  if (transport !== "local" && transport !== "tcp")
    throw new ConfigError(`transport must be local or tcp, got "${transport}"`);
  const backend = v.store_backend;
  if (backend !== undefined && !["memory", "file", "sqlite", "redis"].includes(backend as string)) {
    throw new ConfigError(`store_backend must be memory, file, sqlite or redis, got "${backend}"`);
  }
  if ((backend === "file" || backend === "sqlite") && !v.store_path) {
    throw new ConfigError(
      `store_backend ${backend} needs store_path (a ${backend === "file" ? "directory" : "database file"}); set it in the config file or CONVERGE_STORE_PATH`,
    );
  }
  if (v.transport === "tcp" && (v.port as number) + (v.agents as number) - 1 > 65535) {
    throw new ConfigError(
      `${v.agents} TCP agents from port ${v.port} need ports up to ${(v.port as number) + (v.agents as number) - 1}, beyond 65535`,
    );
  }
  return { ...(v as unknown as Config), configDir };
}

function coerce(key: string, value: unknown): unknown {
  const { kind } = KEYS[key]!;
  const bad = (what: string) => new ConfigError(`${key} must be ${what}, got ${JSON.stringify(value)}`);
  switch (kind) {
    case "string":
      if (typeof value === "string" && value.trim() !== "") return value.trim();
      if (typeof value === "number") return String(value);
      throw bad("a non-empty string");
    case "port": {
      const n = toNumber(value);
      if (!Number.isInteger(n) || n < 1 || n > 65535) throw bad("an integer from 1 to 65535");
      return n;
    }
    case "positive-int": {
      const n = toNumber(value);
      if (!Number.isInteger(n) || n < 1) throw bad("an integer of at least 1");
      return n;
    }
    case "non-negative-number": {
      const n = toNumber(value);
      if (!Number.isFinite(n) || n < 0) throw bad("a number of at least 0");
      return n;
    }
    case "positive-number": {
      const n = toNumber(value);
      if (!Number.isFinite(n) || n <= 0) throw bad("a number greater than 0");
      return n;
    }
    case "list": {
      const items = typeof value === "string" ? value.split(",") : Array.isArray(value) ? value : undefined;
      if (!items?.every((x) => typeof x === "string")) throw bad("a list of strings");
      return (items as string[]).map((x) => x.trim()).filter(Boolean);
    }
    case "mapping":
      return value;
  }
}

function toNumber(value: unknown): number {
  if (typeof value === "number") return value;
  if (typeof value === "string" && /^\s*-?\d+(\.\d+)?\s*$/.test(value)) return Number(value);
  return NaN;
}

/** The known key closest to `word` by edit distance, when close enough to be a likely typo. */
export function nearest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c);
    if (d < bestD) [best, bestD] = [c, d];
  }
  return bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++)
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

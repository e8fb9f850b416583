/**
 * Configuration for `converge run` and the operator commands, as the manual says: CONVERGE_<KEY>
 * environment variables, then an optional YAML (.yaml, .yml) or TOML (.toml) file whose values win,
 * then `--set KEY=VALUE` options, which win over both (so that one file can serve several processes).
 * Every value is validated here, so a bad one is one clear line (ConfigError, exit 2) before
 * anything starts. The file is untrusted input: its size and its YAML alias expansion are bounded,
 * and no error message ever shows more than the start of a value.
 */
import { readFileSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, extname, resolve } from "node:path";
import { parseTOML, parseYAML } from "confbox";
import { ConfigError } from "../core/errors.ts";
import { PRINTABLE_MAX, printable, quoted } from "../core/text.ts";
import { LLM_DOCS, LLM_KEYS, type LlmConfig, parseLlmConfig } from "../llm/config.ts";
import { parseRetention, RETENTION_DOCS, RETENTION_KEYS, type RetentionConfig } from "../coordination/retention.ts";

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
  /** Message checks (runtime/message-gate.ts) and listener limits and TLS (transport/inbound.ts, tls.ts). */
  verify_messages: "known" | "strict" | "off";
  replay_window_sec: number;
  max_clock_skew_sec: number;
  max_connections: number;
  max_buffered_mib: number;
  frame_deadline_sec: number;
  idle_timeout_sec: number;
  max_message_elements: number;
  tls_cert?: string;
  tls_key?: string;
  tls_ca?: string;
  tls_require_client_cert: boolean;
  /** Run due schedules (coordination/schedules.ts) when a shared store is configured. */
  schedules: boolean;
  /** Removing finished tasks inside `converge run` (coordination/retention.ts). */
  retention?: RetentionConfig;
  /** Where the file was, for resolving relative paths in it; undefined without a file. */
  configDir?: string;
}

/**
 * "path": a file or directory; `~` is expanded (expandPath). "port": 0 asks the kernel for a free one.
 * "mapping": a nested table (`llm`), parsed by its own module. "boolean": true/false (also 1/0, yes/no).
 */
type Kind =
  | "string"
  | "path"
  | "port"
  | "positive-int"
  | "non-negative-number"
  | "positive-number"
  | "list"
  | "mapping"
  | "boolean";
const KEYS: Record<string, { kind: Kind; doc: string }> = {
  transport: { kind: "string", doc: "local (default) or tcp" },
  host: { kind: "string", doc: "host for network transports (default 127.0.0.1)" },
  port: {
    kind: "port",
    doc: "TCP port of the first agent; agent i listens on port + i (default 8888); 0: each agent gets a free port",
  },
  agents: { kind: "positive-int", doc: "number of agents in this process (default 1)" },
  pool_id: { kind: "string", doc: "create this pool if absent and have every agent join it" },
  discovery_store: { kind: "path", doc: "legacy: memory, or a directory for a file store" },
  store_backend: { kind: "string", doc: "memory, file, sqlite or redis" },
  store_path: { kind: "path", doc: "directory (file), database file (sqlite) or redis:// URL" },
  agent: { kind: "path", doc: "agent module (.ts, .js, .mjs); relative to the config file" },
  concurrency: { kind: "positive-int", doc: "tasks one agent runs at once (default 1)" },
  capabilities: { kind: "list", doc: "capabilities given to every agent (comma-separated in the environment)" },
  topics: { kind: "list", doc: "topic namespaces given to every agent" },
  identity_dir: {
    kind: "path",
    doc: "keep agent i's identity in <dir>/agent-<i>.key across restarts; relative to the config file",
  },
  http_port: { kind: "port", doc: "serve /healthz, /readyz and /metrics on host:http_port; 0: a free port" },
  shutdown_grace_sec: {
    kind: "non-negative-number",
    doc: "how long running tasks may finish on shutdown (default 10)",
  },
  claim_ttl_sec: { kind: "positive-number", doc: "lease length for tasks that set none (default 30)" },
  llm: { kind: "mapping", doc: "model-driven agents: the llm.* keys below (scalars also as CONVERGE_LLM_<KEY>)" },
  verify_messages: {
    kind: "string",
    doc: "known (default: messages naming a registered sender must be signed by it), strict (verified only), off",
  },
  replay_window_sec: {
    kind: "non-negative-number",
    doc: "refuse a message id delivered again within this window (default 600; 0 turns it off)",
  },
  max_clock_skew_sec: {
    kind: "positive-number",
    doc: "timestamps further from now are refused under strict, flagged otherwise (default 300)",
  },
  max_connections: { kind: "positive-int", doc: "inbound connections one agent's listener accepts (default 1024)" },
  max_buffered_mib: {
    kind: "positive-number",
    doc: "MiB that unfinished frames may hold across a listener's connections (default 64)",
  },
  frame_deadline_sec: {
    kind: "positive-number",
    doc: "a frame must complete this long after its first byte, or its connection closes (default 10)",
  },
  idle_timeout_sec: { kind: "positive-number", doc: "close inbound connections silent this long (default 300)" },
  max_message_elements: {
    kind: "positive-int",
    doc: "array elements and map entries one message may hold (default 100000)",
  },
  tls_cert: { kind: "path", doc: "PEM certificate: agents listen with TLS (tls://); relative to the config file" },
  tls_key: { kind: "path", doc: "PEM private key of tls_cert; relative to the config file" },
  tls_ca: { kind: "path", doc: "PEM CA bundle that peers' certificates must chain to (default: the system's)" },
  tls_require_client_cert: {
    kind: "boolean",
    doc: "mutual TLS: refuse peers without a client certificate signed by tls_ca (default false)",
  },
  schedules: {
    kind: "boolean",
    doc: "submit the tasks of due schedules from a shared store (default true; each due run is submitted once)",
  },
  retention: {
    kind: "mapping",
    doc: "remove finished tasks while running: the retention.* keys below (default: keep them all)",
  },
};
/** Top-level keys (each also CONVERGE_<KEY>; `llm` is a mapping read by parseLlmConfig). */
export const CONFIG_KEYS = Object.keys(KEYS);
export const CONFIG_DOCS: Record<string, { doc: string }> = { ...KEYS, ...LLM_DOCS, ...RETENTION_DOCS };
/** Mappings whose keys --set may name one by one (`--set retention.completed=7d`, `--set llm.model=x`). */
const NESTED: Record<string, readonly string[]> = { retention: RETENTION_KEYS, llm: LLM_KEYS };

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
  verify_messages: "known",
  replay_window_sec: 600,
  max_clock_skew_sec: 300,
  max_connections: 1024,
  max_buffered_mib: 64,
  frame_deadline_sec: 10,
  idle_timeout_sec: 300,
  max_message_elements: 100_000,
  tls_require_client_cert: false,
  schedules: true,
} as const;

export interface LoadResult {
  config: Config;
  warnings: string[];
}

/** Loads env, then the optional file, then `sets` ("KEY=VALUE", from --set): later wins. Validates all. */
export function loadConfig(
  path: string | undefined,
  env: Record<string, string | undefined> = process.env,
  sets: readonly string[] = [],
): LoadResult {
  const warnings: string[] = [];
  const raw: Record<string, unknown> = {};
  for (const key of CONFIG_KEYS) {
    if (key === "llm") continue; // parseLlmConfig reads CONVERGE_LLM_<KEY> itself
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
        warnings.push(
          `unknown config key ${quoted(k)} in ${printable(file)}${near ? `; did you mean "${near}"?` : ""} (ignored)`,
        );
        continue;
      }
      raw[k] = v;
    }
  }
  for (const item of sets) {
    const [key, value] = parseSet(item);
    const dot = key.indexOf(".");
    if (dot > 0 && key.slice(0, dot) in NESTED) {
      const top = key.slice(0, dot);
      const current = raw[top];
      const mapping = typeof current === "object" && current !== null ? { ...current } : {};
      if (value === undefined) delete (mapping as Record<string, unknown>)[key.slice(dot + 1)];
      else (mapping as Record<string, unknown>)[key.slice(dot + 1)] = value;
      raw[top] = mapping;
      continue;
    }
    if (value === undefined) delete raw[key];
    else raw[key] = value;
  }
  const config = validate(raw, configDir);
  const llm = parseLlmConfig(raw.llm, env, {
    configDir,
    warn: (k) => {
      const near = nearest(k, LLM_KEYS);
      warnings.push(
        `unknown config key ${quoted(`llm.${k}`)} in ${printable(file ?? "--set")}` +
          `${near ? `; did you mean "llm.${near}"?` : ""} (ignored)`,
      );
    },
  });
  // validate() copied the raw mappings; the parsed settings replace them (none: no llm, no retention).
  if (llm) config.llm = llm;
  else delete config.llm;
  const retention = parseRetention(mappingValue("retention", raw.retention), (k) => {
    const near = nearest(k, RETENTION_KEYS);
    const where = printable(file ?? "CONVERGE_RETENTION or --set");
    const hint = near ? `; did you mean "retention.${near}"?` : "";
    warnings.push(`unknown config key ${quoted(`retention.${k}`)} in ${where}${hint} (ignored)`);
  });
  if (retention) config.retention = retention;
  else delete config.retention;
  return { config, warnings };
}

/**
 * One `--set KEY=VALUE`: the key must be known; the value is text, read as the environment
 * variable CONVERGE_<KEY> would be (lists comma-separated), or YAML when it starts with `[` or `{`
 * (for keys that take a list or a mapping). An empty value unsets the key (its default applies).
 */
function parseSet(item: string): [string, unknown] {
  const eq = item.indexOf("=");
  if (eq <= 0) throw new ConfigError(`--set takes KEY=VALUE, got ${quoted(item)}`);
  const key = item.slice(0, eq).trim();
  const text = item.slice(eq + 1);
  const dot = key.indexOf(".");
  const nestedKey = dot > 0 && NESTED[key.slice(0, dot)]?.includes(key.slice(dot + 1));
  if (!(key in KEYS) && !nestedKey) {
    const near = nearest(key, CONFIG_KEYS);
    throw new ConfigError(
      `--set ${quoted(key)}: no such config key${near ? `; did you mean "${near}"?` : ""} (see converge run --help)`,
    );
  }
  if (text.trim() === "") return [key, undefined];
  if (!/^\s*[[{]/.test(text)) return [key, text];
  let value: unknown;
  try {
    value = parseYAML(text);
  } catch (err) {
    throw new ConfigError(
      `--set ${key}: the value is not valid YAML: ${printable((err as Error).message.split("\n")[0]!)}`,
    );
  }
  checkExpansion(value, `--set ${key}`);
  return [key, value];
}

/** A config file is a few hundred bytes; this is far beyond any real one. */
const MAX_FILE_BYTES = 1024 * 1024;
/**
 * The most values (scalars, lists, mappings) a document may hold once its YAML aliases are
 * expanded. confbox's YAML parser (js-yaml) resolves an alias to the very object its anchor made,
 * so parsing a "billion laughs" document is quick and small; the expansion happens in whatever
 * walks the result afterwards (serialising it for an error message ran for 28 s into 2 GB).
 */
const MAX_EXPANDED_VALUES = 100_000;

/** Throws when `value`, walked as a tree (every alias expanded), has more than MAX_EXPANDED_VALUES nodes. */
function checkExpansion(value: unknown, where: string): void {
  let budget = MAX_EXPANDED_VALUES;
  const walk = (v: unknown): void => {
    if (--budget < 0)
      throw new ConfigError(
        `${where} expands to more than ${MAX_EXPANDED_VALUES} values (nested YAML aliases?); refusing it`,
      );
    if (Array.isArray(v)) for (const x of v) walk(x);
    else if (typeof v === "object" && v !== null) for (const x of Object.values(v)) walk(x);
  };
  walk(value);
}

function readConfigFile(file: string): Record<string, unknown> {
  const ext = extname(file).toLowerCase();
  const name = printable(file);
  if (![".yaml", ".yml", ".toml"].includes(ext)) {
    throw new ConfigError(
      `config file ${name} has an unsupported extension "${ext || "(none)"}"; use .yaml, .yml or .toml`,
    );
  }
  let text: string;
  try {
    const st = statSync(file);
    const size = st.isFile() ? st.size : 0;
    if (size > MAX_FILE_BYTES)
      throw new ConfigError(`config file ${name} is ${size} bytes; a config file may be at most 1 MiB`);
    text = readFileSync(file, "utf8");
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(
      code === "ENOENT"
        ? `config file ${name} does not exist`
        : code === "EISDIR"
          ? `config file ${name} is a directory`
          : `cannot read config file ${name}: ${printable((err as Error).message)}`,
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
    throw new ConfigError(
      `config file ${name} is not valid ${ext === ".toml" ? "TOML" : "YAML"}${where}: ${printable(first)}`,
    );
  }
  checkExpansion(data, `config file ${name}`);
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    throw new ConfigError(
      `config file ${name} must contain a mapping of keys to values, found ` +
        (data === null ? "nothing" : Array.isArray(data) ? "a list" : `a ${typeof data}`),
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
      `transport "${transport}" is not available in converge run; ` +
        "use the library API (WebSocketTransport) to run agents over WebSocket",
    );
  }
  if (transport !== "local" && transport !== "tcp")
    throw new ConfigError(`transport must be local or tcp, got ${shown(transport)}`);
  const backend = v.store_backend;
  if (backend !== undefined && !["memory", "file", "sqlite", "redis"].includes(backend as string)) {
    throw new ConfigError(`store_backend must be memory, file, sqlite or redis, got ${shown(backend)}`);
  }
  checkStorePath(backend, v.store_path);
  if (!["known", "strict", "off"].includes(v.verify_messages as string))
    throw new ConfigError(`verify_messages must be known, strict or off, got "${v.verify_messages}"`);
  if (v.tls_cert !== undefined || v.tls_key !== undefined || v.tls_require_client_cert) {
    if (v.transport !== "tcp")
      throw new ConfigError(
        "tls_cert, tls_key and tls_require_client_cert need transport tcp (agents listen with TLS)",
      );
    if (v.tls_cert === undefined || v.tls_key === undefined)
      throw new ConfigError("TLS needs both tls_cert and tls_key (the certificate and its private key)");
    if (v.tls_require_client_cert && v.tls_ca === undefined)
      throw new ConfigError("tls_require_client_cert needs tls_ca, the CA bundle that signs client certificates");
  }
  if (v.transport === "tcp" && v.port !== 0 && (v.port as number) + (v.agents as number) - 1 > 65535) {
    throw new ConfigError(
      `${v.agents} TCP agents from port ${v.port} need ports up to ` +
        `${(v.port as number) + (v.agents as number) - 1}, beyond 65535 (port 0 gives each a free port)`,
    );
  }
  return { ...(v as unknown as Config), configDir };
}

/** A file or SQLite store needs store_path; the library's openStore (store-config.ts) checks it here too. */
export function checkStorePath(backend: unknown, path: unknown): void {
  if ((backend === "file" || backend === "sqlite") && !path) {
    throw new ConfigError(
      `store_backend ${backend} needs store_path (a ${backend === "file" ? "directory" : "database file"}); ` +
        "set it in the config file or CONVERGE_STORE_PATH",
    );
  }
}

function coerce(key: string, value: unknown): unknown {
  const { kind } = KEYS[key]!;
  const bad = (what: string) => new ConfigError(`${key} must be ${what}, got ${shown(value)}`);
  switch (kind) {
    case "string":
    case "path": {
      const text = typeof value === "number" ? String(value) : typeof value === "string" ? value.trim() : "";
      if (text === "") throw bad("a non-empty string");
      if (CONTROL.test(text)) throw bad("text without control characters");
      return kind === "path" ? expandPath(text) : text;
    }
    case "port": {
      const n = toNumber(value);
      if (!Number.isInteger(n) || n < 0 || n > 65535) throw bad("an integer from 0 to 65535 (0: a free port)");
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
    case "boolean":
      if (typeof value === "boolean") return value;
      if (typeof value === "string" && /^(true|yes|1)$/i.test(value.trim())) return true;
      if (typeof value === "string" && /^(false|no|0)$/i.test(value.trim())) return false;
      throw bad("true or false");
    case "list": {
      const items = typeof value === "string" ? value.split(",") : Array.isArray(value) ? value : undefined;
      if (!items?.every((x) => typeof x === "string")) throw bad("a list of strings");
      if (items.some((x) => CONTROL.test(x))) throw bad("a list of strings without control characters");
      return (items as string[]).map((x) => x.trim()).filter(Boolean);
    }
    case "mapping":
      return value;
  }
}

/**
 * A mapping key's value: as given in the file or --set, or from its environment variable
 * (CONVERGE_RETENTION), where it is text: a YAML mapping such as `{completed: 7d}`.
 */
function mappingValue(key: string, value: unknown): unknown {
  if (typeof value !== "string") return value;
  let parsed: unknown;
  try {
    parsed = parseYAML(value);
  } catch (err) {
    throw new ConfigError(`${key} is not a valid YAML mapping: ${printable((err as Error).message.split("\n")[0]!)}`);
  }
  checkExpansion(parsed, key);
  return parsed;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * A path from the configuration, with a leading `~` or `~/` expanded to the home directory (config
 * files and --set values are not expanded by a shell, yet people write `~/converge.db`). Every
 * path-valued key goes through this (kind "path"): `agent`, `identity_dir`, `store_path`, ...
 */
export function expandPath(path: string): string {
  return path === "~" || path.startsWith("~/") ? homedir() + path.slice(1) : path;
}

/** A value for an error message: strings quoted, anything else as JSON; escaped and cut short either way. */
export function shown(value: unknown): string {
  if (typeof value === "string") return quoted(value);
  return printable(boundedJson(value, PRINTABLE_MAX + 1));
}

/** JSON.stringify that stops once it has written `max` characters (the value may be huge). */
function boundedJson(value: unknown, max: number): string {
  let out = "";
  const stop = {};
  const put = (text: string) => {
    out += text;
    if (out.length > max) throw stop;
  };
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) {
      put("[");
      v.forEach((x, i) => {
        if (i) put(",");
        walk(x);
      });
      put("]");
    } else if (typeof v === "object" && v !== null) {
      put("{");
      Object.entries(v).forEach(([k, x], i) => {
        put(`${i ? "," : ""}${JSON.stringify(k)}:`);
        walk(x);
      });
      put("}");
    } else put(JSON.stringify(v) ?? String(v));
  };
  try {
    walk(value);
  } catch (err) {
    if (err !== stop) throw err;
  }
  return out;
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

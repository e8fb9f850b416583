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
  /** Where the file was, for resolving relative paths in it; undefined without a file. */
  configDir?: string;
}

type Kind = "string" | "port" | "positive-int" | "non-negative-number" | "positive-number" | "list" | "boolean";
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
  tls_cert: { kind: "string", doc: "PEM certificate: agents listen with TLS (tls://); relative to the config file" },
  tls_key: { kind: "string", doc: "PEM private key of tls_cert; relative to the config file" },
  tls_ca: { kind: "string", doc: "PEM CA bundle that peers' certificates must chain to (default: the system's)" },
  tls_require_client_cert: {
    kind: "boolean",
    doc: "mutual TLS: refuse peers without a client certificate signed by tls_ca (default false)",
  },
};
export const CONFIG_KEYS = Object.keys(KEYS);
export const CONFIG_DOCS = KEYS;

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
  for (const key of CONFIG_KEYS) {
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
      raw[k] = v;
    }
  }
  return { config: validate(raw, configDir), warnings, file };
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
    case "boolean":
      if (typeof value === "boolean") return value;
      if (typeof value === "string" && /^(true|yes|1)$/i.test(value.trim())) return true;
      if (typeof value === "string" && /^(false|no|0)$/i.test(value.trim())) return false;
      throw bad("true or false");
    case "list": {
      const items = typeof value === "string" ? value.split(",") : Array.isArray(value) ? value : undefined;
      if (!items?.every((x) => typeof x === "string")) throw bad("a list of strings");
      return (items as string[]).map((x) => x.trim()).filter(Boolean);
    }
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

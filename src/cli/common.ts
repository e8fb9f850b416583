/** What every command shares: the config, --set, verbose and log-format options, and opening the store. */
import { statSync } from "node:fs";
import { ConfigError } from "../core/errors.ts";
import { printable, quoted } from "../core/text.ts";
import { configureLogging, stderrLine } from "../observability/log.ts";
import type { Store } from "../store/store.ts";
import { repeatable } from "./args.ts";
import { loadConfig, type Config } from "./config.ts";

export const commonArgs = {
  config: {
    type: "string",
    alias: "c",
    valueHint: "PATH",
    description:
      "Config file (.yaml, .yml or .toml); default: $CONVERGE_CONFIG. " +
      "File values override CONVERGE_<KEY> environment variables.",
  },
  set: repeatable({
    type: "string",
    valueHint: "KEY=VALUE",
    description:
      "Override a config key (repeatable); wins over the file and the environment. VALUE is read as " +
      "CONVERGE_<KEY> would be (YAML if it starts with [ or {); an empty VALUE unsets the key",
  }),
  verbose: {
    type: "boolean",
    alias: "v",
    description:
      "Debug logging: every message received and every decision executed (CONVERGE_LOG_LEVEL=debug, info, warn " +
      "or error sets the level without it; default info)",
  },
  "log-format": {
    type: "string",
    valueHint: "text|json",
    description:
      "Log lines for people (text, the default) or JSON lines for machines; json also turns converge run's " +
      "status lines on stdout and error lines into JSON objects (command output such as tables stays as it is; " +
      "use --json for lists)",
  },
} as const;

export interface CommonArgs {
  config?: string;
  set?: string[];
  verbose?: boolean;
  "log-format"?: string;
}

/** Sets up logging and loads the config, printing its warnings. */
export function setup(args: CommonArgs): Config {
  const format = args["log-format"] ?? "text";
  if (format !== "text" && format !== "json")
    throw new ConfigError(`--log-format must be text or json, got "${format}"`);
  const envLevel = process.env.CONVERGE_LOG_LEVEL;
  const known = envLevel === "debug" || envLevel === "info" || envLevel === "warn" || envLevel === "error";
  configureLogging({ level: args.verbose ? "debug" : known ? envLevel : "info", format });
  const { config, warnings } = loadConfig(args.config, process.env, args.set ?? []);
  if (envLevel && !known)
    warnings.push(
      `CONVERGE_LOG_LEVEL must be debug, info, warn or error, got ${quoted(envLevel, 40)}; logging at info`,
    );
  // With --log-format json every line on stderr must parse, warnings included.
  for (const w of warnings) stderrLine("warn", "config", w);
  return config;
}

/** Opens the configured store for an operator command; a memory store would be empty, so it is refused. */
async function openSharedStore(config: Config): Promise<Store> {
  const { openStore } = await import("./store-config.ts"); // not needed for --help or a refused config
  const store = await openStore(config);
  if (!store || store.description === "memory") {
    throw new ConfigError(
      "this command needs a shared store: set store_backend to sqlite, redis or file (with store_path) " +
        "in the config file or CONVERGE_STORE_BACKEND/CONVERGE_STORE_PATH, as for converge run; " +
        "the memory store lives only inside one converge run process",
    );
  }
  return store;
}

/** Runs `fn` with the store and always closes it. */
export async function withStore<T>(config: Config, fn: (store: Store) => Promise<T>): Promise<T> {
  const store = await openSharedStore(config);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** The most an `@FILE` or `-` option value may hold (the argument limit is ~128 KiB; this is well beyond). */
export const MAX_JSON_ARG_BYTES = 16 * 1024 * 1024;
let stdinReadBy: string | undefined;

/**
 * Parses an option holding a JSON object ({} when absent), naming the option in the error. The
 * value is inline JSON, `@FILE` (read from that file) or `-` (read from standard input), so that
 * inputs larger than the kernel's argument limit can be given; at most MAX_JSON_ARG_BYTES.
 */
export async function jsonObjectArg(
  name: string,
  text: string | undefined,
  example?: string,
): Promise<Record<string, unknown>> {
  if (text === undefined) return {};
  let body = text;
  let from = "";
  if (text === "-") {
    if (stdinReadBy) throw new ConfigError(`--${name} - and --${stdinReadBy} - cannot both read standard input`);
    stdinReadBy = name;
    body = await readBounded(Bun.stdin.stream(), name, "standard input");
    from = " (from standard input)";
  } else if (text.startsWith("@")) {
    const file = text.slice(1);
    from = ` (from ${printable(file)})`;
    const stream = boundedFileStream(file, `--${name} @${printable(file)}`, MAX_JSON_ARG_BYTES);
    body = await readBounded(stream, name, printable(file));
  }
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch (err) {
    throw new ConfigError(`--${name} must be JSON${from}: ${printable((err as Error).message)}`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v))
    throw new ConfigError(`--${name} must be a JSON object${from}${example ? `, e.g. '${example}'` : ""}`);
  return v as Record<string, unknown>;
}

/**
 * A stream of `file` once it is known to be a file of at most `maxBytes`; otherwise a ConfigError
 * that starts with `what` (e.g. `--inputs @x.json`, `--file tasks.jsonl`): it is a directory, it does
 * not exist, it cannot be read, or it is too large.
 */
export function boundedFileStream(file: string, what: string, maxBytes: number): ReadableStream<Uint8Array> {
  let size: number;
  try {
    const st = statSync(file);
    if (st.isDirectory()) throw new ConfigError(`${what}: that is a directory`);
    size = st.size;
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(`${what}: ${code === "ENOENT" ? "no such file" : printable((err as Error).message)}`);
  }
  if (size > maxBytes) throw new ConfigError(`${what} is ${size} bytes; at most ${maxBytes} are read`);
  return Bun.file(file).stream();
}

/** The stream's text, refusing more than MAX_JSON_ARG_BYTES. */
async function readBounded(stream: ReadableStream<Uint8Array>, name: string, what: string): Promise<string> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for await (const chunk of stream) {
      total += chunk.length;
      if (total > MAX_JSON_ARG_BYTES)
        throw new ConfigError(`--${name}: ${what} holds more than ${MAX_JSON_ARG_BYTES} bytes; refusing it`);
      chunks.push(chunk);
    }
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`--${name}: cannot read ${what}: ${printable((err as Error).message)}`);
  }
  return new TextDecoder().decode(Buffer.concat(chunks));
}

/** What every command shares: the config, --set, verbose and log-format options, and opening the store. */
import { ConfigError } from "../core/errors.ts";
import { configureLogging, logger } from "../observability/log.ts";
import type { Store } from "../store/store.ts";
import { repeatable } from "./args.ts";
import { loadConfig, type Config } from "./config.ts";

export const commonArgs = {
  config: {
    type: "string",
    alias: "c",
    valueHint: "PATH",
    description:
      "Config file (.yaml, .yml or .toml); default: $CONVERGE_CONFIG. File values override CONVERGE_<KEY> environment variables.",
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
    description: "Debug logging: every message received and every decision executed",
  },
  "log-format": {
    type: "string",
    valueHint: "text|json",
    description: "Log lines for people (text, the default) or JSON lines for machines",
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
  configureLogging({ level: args.verbose ? "debug" : "info", format });
  const { config, warnings } = loadConfig(args.config, process.env, args.set ?? []);
  // With --log-format json every line on stderr must parse, warnings included.
  for (const w of warnings)
    format === "json" ? logger("config").warn(w) : process.stderr.write(`converge: warning: ${w}\n`);
  return config;
}

/** Opens the configured store for an operator command; a memory store would be empty, so it is refused. */
export async function openSharedStore(config: Config): Promise<Store> {
  const { openStore } = await import("./store-config.ts"); // not needed for --help or a refused config
  const store = await openStore(config);
  if (!store || store.description === "memory") {
    throw new ConfigError(
      "this command needs a shared store: set store_backend to sqlite, redis or file (with store_path) in the config file or CONVERGE_STORE_BACKEND/CONVERGE_STORE_PATH, as for converge run; the memory store lives only inside one converge run process",
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

/** Parses an option holding a JSON object ({} when absent), naming the option in the error. */
export function jsonObjectArg(name: string, text: string | undefined, example?: string): Record<string, unknown> {
  if (text === undefined) return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`--${name} must be JSON: ${(err as Error).message}`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v))
    throw new ConfigError(`--${name} must be a JSON object${example ? `, e.g. '${example}'` : ""}`);
  return v as Record<string, unknown>;
}

/**
 * The one argument parser of the CLI. Commands declare their options the citty way (ArgsDef: that
 * also feeds citty's `--help` text); this derives a strict `node:util` parseArgs configuration from
 * those definitions and reads argv with it, so that an unknown option, a missing value and an
 * extra argument are refused by the same parser that reads the values. citty's own runner reads
 * argv loosely (parseArgs with `strict: false`: unknown flags pass silently), so it is not used.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import type { ArgDef, ArgsDef } from "citty";
import { ConfigError } from "../core/errors.ts";
import { printable } from "../core/text.ts";

type Options = NonNullable<ParseArgsConfig["options"]>;

const repeatables = new WeakSet<object>();

/** Marks a string option as repeatable (`--set a=1 --set b=2`): its value is then a list. */
export function repeatable<T extends ArgDef>(def: T): T {
  repeatables.add(def);
  return def;
}

function aliases(def: ArgDef): string[] {
  if (!("alias" in def) || !def.alias) return [];
  return Array.isArray(def.alias) ? def.alias : [def.alias];
}

/**
 * The parseArgs options for `args`: each option under its own name, a one-letter alias as its
 * `short`, and longer aliases as options of their own (folded back into the name after parsing).
 */
export function parseConfig(args: ArgsDef): { options: Options; longAliases: Map<string, string> } {
  const options: Options = {};
  const longAliases = new Map<string, string>();
  for (const [name, def] of Object.entries(args)) {
    if (def.type === "positional") continue;
    const type = def.type === "boolean" ? "boolean" : "string";
    const multiple = repeatables.has(def);
    const short = aliases(def).find((a) => a.length === 1);
    options[name] = { type, ...(short ? { short } : {}), ...(multiple ? { multiple } : {}) };
    for (const a of aliases(def).filter((x) => x.length > 1)) {
      options[a] = { type, ...(multiple ? { multiple } : {}) };
      longAliases.set(a, name);
    }
  }
  return { options, longAliases };
}

export type ParsedArgs = Record<string, unknown> & { _: string[] };

/**
 * Reads `argv` for a command with these `args`; `commandPath` (e.g. "converge tasks get") names it
 * in errors. Refuses unknown options, options without their value, values for flags and extra
 * arguments; applies defaults and checks required options and enum values.
 */
export function readArgs(argv: string[], args: ArgsDef, commandPath: string): ParsedArgs {
  const { options, longAliases } = parseConfig(args);
  let parsed: { values: Record<string, unknown>; positionals: string[] };
  try {
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: true, allowNegative: true });
  } catch (err) {
    throw argvError(err, commandPath);
  }
  const values = { ...parsed.values };
  for (const [alias, name] of longAliases) {
    if (values[alias] === undefined) continue;
    const [a, b] = [values[name], values[alias]];
    values[name] = Array.isArray(a) && Array.isArray(b) ? [...a, ...b] : b;
    delete values[alias];
  }
  const out: ParsedArgs = { _: parsed.positionals };
  const positionals = [...parsed.positionals];
  const takes = Object.values(args).filter((d) => d.type === "positional").length;
  if (positionals.length > takes) {
    const extra = positionals[takes]!;
    const hint =
      "config" in args && /\.(ya?ml|toml)$/i.test(extra) ? `; for a config file use ${commandPath} -c ${extra}` : "";
    throw new ConfigError(
      `unexpected argument "${printable(extra)}" for ${commandPath}${hint}; see ${commandPath} --help`,
    );
  }
  for (const [name, def] of Object.entries(args)) {
    if (def.type === "positional") {
      const v = positionals.shift() ?? def.default;
      if (v === undefined && def.required !== false)
        throw new ConfigError(`${commandPath} needs its ${name.toUpperCase()} argument; see ${commandPath} --help`);
      out[name] = v;
      continue;
    }
    const v = values[name] ?? def.default;
    if (v === undefined && def.required)
      throw new ConfigError(`${commandPath} needs --${name}; see ${commandPath} --help`);
    if (def.type === "enum" && v !== undefined && def.options && !def.options.includes(v as string))
      throw new ConfigError(`--${name} must be one of ${def.options.join(", ")}; got "${printable(String(v))}"`);
    out[name] = v;
  }
  return out;
}

/** parseArgs' errors, in our words: the option as typed and the command it was given to. */
function argvError(err: unknown, commandPath: string): ConfigError {
  const e = err as Error & { code?: string };
  const quoted = /'([^']*)'/.exec(e.message)?.[1] ?? "";
  const see = `see ${commandPath} --help`;
  if (e.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
    // Inside a cluster (-vx) parseArgs names the letter alone.
    const option = quoted.startsWith("-") ? quoted : `-${quoted}`;
    return new ConfigError(`unknown option ${printable(option)} for ${commandPath}; ${see}`);
  }
  if (e.code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") {
    const option = quoted.split(" ")[0]!.replace(/,$/, "");
    if (/does not take an argument/.test(e.message))
      return new ConfigError(`option ${option} of ${commandPath} takes no value; ${see}`);
    if (/ambiguous/.test(e.message)) {
      const long = /'(--[^=']+)=/.exec(e.message)?.[1] ?? option;
      return new ConfigError(
        `option ${option} of ${commandPath} needs a value (for a value that starts with "-", write ${long}=VALUE)`,
      );
    }
    return new ConfigError(`option ${option} of ${commandPath} needs a value; ${see}`);
  }
  return new ConfigError(`cannot read the arguments of ${commandPath}: ${printable(e.message)}; ${see}`);
}

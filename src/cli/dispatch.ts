/**
 * Our own front door around citty: citty parses loosely (unknown flags pass silently) and prints a
 * stack for errors that are not its own. Here we find the subcommand, answer --help and --version,
 * refuse unknown options, and turn every ConvergeError into one line on stderr and its exit code.
 */
import { renderUsage, runCommand, type ArgsDef, type CommandDef } from "citty";
import { ConfigError, ConvergeError } from "../core/errors.ts";

// biome-ignore lint/suspicious/noExplicitAny: commands differ in their args types
type AnyCommand = CommandDef<any>;

async function resolve<T>(v: T | Promise<T> | (() => T) | (() => Promise<T>) | undefined): Promise<T | undefined> {
  return typeof v === "function" ? await (v as () => T | Promise<T>)() : await v;
}

const footers = new WeakMap<object, string>();

/** Text printed after a command's usage (e.g. the config keys of `run`). */
export function setHelpFooter(cmd: object, text: string): void {
  footers.set(cmd, text);
}

/**
 * Rejects options the command does not define and arguments it does not take (citty would ignore
 * both: `converge run config.yaml` would silently run without that file).
 */
export function checkOptions(argv: string[], args: ArgsDef, commandPath: string): void {
  const known = new Map<string, string>(); // flag spelling → type
  for (const [name, def] of Object.entries(args)) {
    if (def.type === "positional") continue;
    const aliases = "alias" in def && def.alias ? (Array.isArray(def.alias) ? def.alias : [def.alias]) : [];
    for (const n of [name, ...aliases, kebab(name)]) known.set(n, def.type ?? "string");
    if (def.type === "boolean") known.set(`no-${name}`, "boolean");
  }
  known.set("help", "boolean").set("h", "boolean");
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith("-") || a === "-") {
      positionals.push(a);
      continue;
    }
    const body = a.replace(/^--?/, "");
    const [name, inline] = body.split("=", 2) as [string, string | undefined];
    const names = a.startsWith("--") || name.length === 1 ? [name] : [...name]; // -vc style
    for (const [k, n] of names.entries()) {
      const type = known.get(n);
      if (!type)
        throw new ConfigError(
          `unknown option ${a.startsWith("--") ? "--" : "-"}${n} for ${commandPath}; see ${commandPath} --help`,
        );
      if (type === "boolean") continue;
      if (k < names.length - 1) break; // -cfile: the rest of the cluster is the value, as citty reads it
      if (inline === undefined) {
        const next = argv[i + 1];
        if (next === undefined || (next.startsWith("-") && next !== "-" && !/^-\d/.test(next))) {
          throw new ConfigError(`option ${a} of ${commandPath} needs a value`);
        }
        i++;
      }
    }
  }
  const takes = Object.values(args).filter((d) => d.type === "positional").length;
  if (positionals.length > takes) {
    const extra = positionals[takes]!;
    const hint =
      "config" in args && /\.(ya?ml|toml)$/i.test(extra) ? `; for a config file use ${commandPath} -c ${extra}` : "";
    throw new ConfigError(`unexpected argument "${extra}" for ${commandPath}${hint}; see ${commandPath} --help`);
  }
}

/** citty colours its usage text; keep colour for terminals only (and never with NO_COLOR). */
function plain(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: ESC is what starts a colour code
  return process.stdout.isTTY && !process.env.NO_COLOR ? text : text.replace(/\u001b\[[0-9;]*m/g, "");
}

function kebab(s: string): string {
  return s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

export interface MainOptions {
  name: string;
  version: string;
  /** What --version prints (version, commit, target); the bare version when omitted. */
  versionLine?: () => string;
  description: string;
  /** One line per subcommand, so the root help never has to load them. */
  summaries: Record<string, string>;
}

function rootUsage(opts: MainOptions): string {
  const width = Math.max(...Object.keys(opts.summaries).map((k) => k.length));
  return [
    `${opts.description} (${opts.name} ${opts.version})`,
    "",
    `USAGE ${opts.name} <command> [options]`,
    "",
    "COMMANDS",
    "",
    ...Object.entries(opts.summaries).map(([k, v]) => `  ${k.padEnd(width)}  ${v}`),
    "",
    "OPTIONS",
    "",
    "  -h, --help       Show help (also after a command: converge run --help)",
    "  -V, --version    Print the version and exit",
    "",
  ].join("\n");
}

/** Runs the command tree with argv; returns the exit code (the caller exits). */
export async function dispatch(root: AnyCommand, argv: string[], opts: MainOptions): Promise<number> {
  if (argv.length === 0 || argv[0] === "--help" || argv[0] === "-h") {
    process.stdout.write(`${rootUsage(opts)}\n`);
    return 0;
  }
  let cmd = root;
  let parent: AnyCommand | undefined;
  const path = [opts.name];
  let rest = argv;
  for (;;) {
    const subs = await resolve(cmd.subCommands);
    const first = rest[0];
    if (!subs || first === undefined || first.startsWith("-")) break;
    const next = subs[first];
    if (!next) {
      if (!cmd.run)
        throw new ConfigError(`unknown command "${[...path, first].join(" ")}"; see ${path.join(" ")} --help`);
      break;
    }
    parent = cmd;
    cmd = (await resolve(next)) as AnyCommand;
    path.push(first);
    rest = rest.slice(1);
  }
  if (rest.includes("--help") || rest.includes("-h") || (!cmd.run && rest.length === 0)) {
    const footer = footers.get(cmd);
    process.stdout.write(`${plain(await renderUsage(cmd, parent))}\n${footer ? `${footer}\n` : ""}`);
    return 0;
  }
  if (cmd === root && (rest.includes("--version") || rest.includes("-V"))) {
    process.stdout.write(`${opts.versionLine?.() ?? opts.version}\n`);
    return 0;
  }
  const args = (await resolve(cmd.args)) ?? {};
  checkOptions(rest, args, path.join(" "));
  try {
    const { result } = await runCommand(cmd, { rawArgs: rest });
    return typeof result === "number" ? result : 0;
  } catch (err) {
    // citty's own argument errors (a missing required option, say) are configuration errors too.
    if ((err as Error)?.name === "CLIError")
      throw new ConfigError(`${(err as Error).message}; see ${path.join(" ")} --help`);
    throw err;
  }
}

/** The one place errors become output: one line, no stack, unless CONVERGE_DEBUG is set. */
export function reportError(err: unknown, name: string): number {
  if (err instanceof ConvergeError) {
    process.stderr.write(`${name}: ${err.message}\n`);
    if (process.env.CONVERGE_DEBUG && err.stack) process.stderr.write(`${err.stack}\n`);
    return err.exitCode;
  }
  const e = err as Error;
  process.stderr.write(`${name}: unexpected error: ${e?.message ?? String(err)}\n`);
  if (process.env.CONVERGE_DEBUG && e?.stack) process.stderr.write(`${e.stack}\n`);
  return 1;
}

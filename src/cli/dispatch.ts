/**
 * Our own front door around citty's command definitions: citty's runner parses loosely (unknown
 * flags pass silently) and prints a stack for errors that are not its own. Here we find the
 * subcommand, answer --help and --version, read the arguments with the one strict parser
 * (args.ts), run the command, and turn every ConvergeError into one line on stderr and its exit code.
 */
import { renderUsage, type CommandDef } from "citty";
import { ConfigError, ConvergeError } from "../core/errors.ts";
import { printable } from "../core/text.ts";
import { configureLogging, flushLog, logFormat, logger } from "../observability/log.ts";
import { readArgs } from "./args.ts";

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

/** citty colours its usage text; keep colour for terminals only (and never with NO_COLOR). */
function plain(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: ESC is what starts a colour code
  return process.stdout.isTTY && !process.env.NO_COLOR ? text : text.replace(/\u001b\[[0-9;]*m/g, "");
}

/** Every exit code the CLI uses, for every --help. */
const EXIT_CODES = [
  "EXIT CODES",
  "",
  "  0         success (for converge run: a clean stop)",
  "  1         a failure at run time: a store or peer unreachable, a port in use, a task in the wrong state;",
  "            a task waited for failed or was cancelled; run --until-idle: a task it handled ended failed",
  "  2         bad configuration or arguments (one line on stderr names the key or option)",
  "  3         not found: the task or schedule asked for does not exist",
  "  124       tasks wait, tasks submit --wait: the tasks did not finish within --timeout",
  "  130, 143  converge run: a second SIGINT or SIGTERM, a second or more after the first, ended it at once",
  "",
].join("\n");

export interface MainOptions {
  name: string;
  version: string;
  /** What --version prints (version, commit, target). */
  versionLine: () => string;
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
    EXIT_CODES,
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
        throw new ConfigError(
          `unknown command "${printable([...path, first].join(" "))}"; see ${path.join(" ")} --help`,
        );
      break;
    }
    parent = cmd;
    cmd = (await resolve(next)) as AnyCommand;
    path.push(first);
    rest = rest.slice(1);
  }
  if (rest.includes("--help") || rest.includes("-h") || (!cmd.run && rest.length === 0)) {
    const footer = footers.get(cmd);
    const usage = plain(await renderUsage(cmd, parent));
    process.stdout.write(`${usage}\n${footer ? `${footer}\n\n` : ""}${EXIT_CODES}`);
    return 0;
  }
  if (cmd === root && (rest.includes("--version") || rest.includes("-V"))) {
    process.stdout.write(`${opts.versionLine()}\n`);
    return 0;
  }
  // So that an error in the arguments themselves is already a JSON line when JSON was asked for.
  const at = rest.indexOf("--log-format");
  if ((at >= 0 && rest[at + 1] === "json") || rest.includes("--log-format=json")) configureLogging({ format: "json" });
  const args = readArgs(rest, (await resolve(cmd.args)) ?? {}, path.join(" "));
  if (!cmd.run) {
    const subs = Object.keys((await resolve(cmd.subCommands)) ?? {});
    throw new ConfigError(`${path.join(" ")} needs a command (${subs.join(", ")}); see ${path.join(" ")} --help`);
  }
  // biome-ignore lint/suspicious/noExplicitAny: citty's context type is per command
  const result = await cmd.run({ rawArgs: rest, args: args as any, cmd });
  return typeof result === "number" ? result : 0;
}

/**
 * A promise nobody awaited failed (a bug, in converge or in an agent module): after the log lines
 * held so far, its trace as Bun prints a crash's (with --log-format json, an error line with the
 * stack). The caller then sees that the process ends with exit 1, as the crash it is.
 */
export function reportUnhandled(reason: unknown, name: string): void {
  const e = reason as Error;
  if (logFormat() === "json") {
    const message = `unhandled rejection: ${e?.message ?? String(reason)}`;
    return logger(name).error(message, { exit_code: 1, stack: e?.stack });
  }
  flushLog();
  console.error(reason);
}

/**
 * The one place errors become output: one line, no stack, unless CONVERGE_DEBUG is set. With
 * --log-format json (once a command has read it) that line is a JSON log line like the others.
 */
export function reportError(err: unknown, name: string): number {
  if (logFormat() === "json") {
    const known = err instanceof ConvergeError;
    const message = known ? err.message : `unexpected error: ${(err as Error)?.message ?? String(err)}`;
    const code = known ? err.exitCode : 1;
    logger(name).error(message, {
      exit_code: code,
      ...(process.env.CONVERGE_DEBUG ? { stack: (err as Error)?.stack } : {}),
    });
    return code;
  }
  flushLog();
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

/**
 * One small logger for the whole runtime: levels, text for people or JSON lines for machines,
 * always to stderr (stdout belongs to command output). `statusLine` is the one way a command
 * prints status on stdout ("running, press Ctrl+C to stop"): as text, or in the log line's JSON
 * shape with `--log-format json`, so that every line a command prints parses.
 *
 * Whatever a line carries may come from the wire: in the text format the message and every field
 * value go through printable() (control characters and newlines escaped, long values cut), so no
 * value can forge a second line; the JSON format escapes by construction and cuts long strings too.
 *
 * A worker logs a line per finished task at info, so a line is kept cheap: the timestamp is
 * formatted once per millisecond, numbers and plain keys skip escaping, no object is spread, and
 * lines go out together (`HeldLines`): one write to stderr per line was a fifth of a busy
 * worker's CPU.
 */
import { printable } from "../core/text.ts";

export type Level = "debug" | "info" | "warn" | "error";
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Longest message and field value a line carries (characters); longer ones are cut, saying how long they were. */
const MAX_MESSAGE = 2000;
const MAX_VALUE = 500;

export interface LogSink {
  write(line: string): void;
  /** Writes whatever the sink still holds (called before a warning, an error or a status line, and at exit). */
  flush?(): void;
}

/** Held lines are written this many ms after the first of them, or at once past HOLD_CHARS. */
const HOLD_MS = 10;
const HOLD_CHARS = 64 * 1024;

/**
 * Lines held for up to HOLD_MS and written together (a worker on Redis finishes a task or two per
 * turn of the event loop, so holding for a turn alone saved little). What is held is written first
 * by a warning, an error, a status line, `flushLog()` and the process's exit, so that order holds;
 * a SIGKILL can lose the last HOLD_MS of lines.
 */
class HeldLines implements LogSink {
  #held: string[] = [];
  #chars = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly out: (text: string) => void) {}

  write(line: string): void {
    this.#held.push(line);
    this.#chars += line.length;
    if (this.#chars >= HOLD_CHARS) this.flush();
    else if (!this.#timer) {
      // Unref'd: a held line never keeps the process alive; the exit writes it.
      this.#timer = setTimeout(this.#due, HOLD_MS);
      this.#timer.unref?.();
    }
  }

  readonly #due = (): void => {
    this.#timer = undefined;
    this.flush();
  };

  flush(): void {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#held.length === 0) return;
    const text = this.#held.length === 1 ? this.#held[0]! : this.#held.join("");
    this.#held = [];
    this.#chars = 0;
    this.out(text);
  }
}

interface LogConfig {
  level: Level;
  format: "text" | "json";
  sink: LogSink;
  /** Where status lines go (stdout). */
  out: LogSink;
}

const config: LogConfig = {
  level: (process.env.CONVERGE_LOG_LEVEL as Level) in ORDER ? (process.env.CONVERGE_LOG_LEVEL as Level) : "info",
  format: "text",
  sink: new HeldLines((text) => process.stderr.write(text)),
  out: { write: (line) => process.stdout.write(line) },
};

export function configureLogging(options: Partial<LogConfig>): void {
  if (options.sink && options.sink !== config.sink) flushLog();
  Object.assign(config, options);
}

/** Writes the log lines still held, before something else goes to stderr or stdout. */
export function flushLog(): void {
  config.sink.flush?.();
}
process.on("exit", flushLog);
// A crash prints its trace before "exit": what was logged before it goes first. (No event comes
// before the trace of an unhandled rejection: the CLI reports those itself, cli/main.ts.)
process.on("uncaughtExceptionMonitor", flushLog);

export function logLevel(): Level {
  return config.level;
}

export function logFormat(): "text" | "json" {
  return config.format;
}

/**
 * A status line on stdout: `text` for people; with the JSON format, `{ts, level: "info", logger,
 * msg, ...fields}` instead, where `msg` is fixed for each kind of line and `fields` carry its data.
 */
export function statusLine(name: string, text: string, msg: string, fields?: Record<string, unknown>): void {
  flushLog();
  if (config.format !== "json") return void config.out.write(`${text}\n`);
  config.out.write(`${JSON.stringify({ ts: timestamp(), level: "info", logger: name, msg, ...fields }, jsonSafe)}\n`);
}

/** A line of a command's output on stdout (a table, a record, an id), after the log lines held so far. */
export function outputLine(text: string): void {
  flushLog();
  config.out.write(`${text}\n`);
}

/**
 * A command's warning or error on stderr, outside the log: for people `converge: warning: <message>`
 * (`converge: <message>` for an error, or for a warning with `bare`); with the JSON format a log line
 * of `name` at that level instead (with `fields`), so that every line on stderr parses.
 */
export function stderrLine(
  level: "warn" | "error",
  name: string,
  message: string,
  options: { fields?: Record<string, unknown>; bare?: boolean } = {},
): void {
  if (logFormat() === "json") return logger(name).write(level, message, options.fields); // whatever the level, as below
  flushLog();
  process.stderr.write(`converge: ${level === "warn" && !options.bare ? "warning: " : ""}${message}\n`);
}

let lastMs = 0;
let lastIso = "";

/** The time as ISO 8601, formatted at most once per millisecond. */
function timestamp(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    lastIso = new Date(now).toISOString();
  }
  return lastIso;
}

export class Logger {
  constructor(
    readonly name: string,
    private readonly fields: Record<string, unknown> = {},
  ) {}

  child(fields: Record<string, unknown>): Logger {
    return new Logger(this.name, { ...this.fields, ...fields });
  }

  enabled(level: Level): boolean {
    return ORDER[level] >= ORDER[config.level];
  }

  debug(msg: string, fields?: Record<string, unknown>): void {
    if (this.enabled("debug")) this.#emit("debug", msg, fields);
  }
  info(msg: string, fields?: Record<string, unknown>): void {
    if (this.enabled("info")) this.#emit("info", msg, fields);
  }
  warn(msg: string, fields?: Record<string, unknown>): void {
    if (this.enabled("warn")) this.#emit("warn", msg, fields);
  }
  error(msg: string, fields?: Record<string, unknown>): void {
    if (this.enabled("error")) this.#emit("error", msg, fields);
  }

  /** A line at `level` whatever the configured level (for lines that are not the log's, as stderrLine's). */
  write(level: Level, msg: string, fields?: Record<string, unknown>): void {
    this.#emit(level, msg, fields);
  }

  #emit(level: Level, msg: string, extra?: Record<string, unknown>): void {
    config.sink.write(config.format === "json" ? this.#json(level, msg, extra) : this.#text(level, msg, extra));
    // A warning or an error is not held: it goes out now, after the lines before it.
    if (level === "warn" || level === "error") flushLog();
  }

  #json(level: Level, msg: string, extra?: Record<string, unknown>): string {
    const line = { ts: timestamp(), level, logger: this.name, msg: cut(msg, MAX_MESSAGE), ...this.fields, ...extra };
    return `${JSON.stringify(line, jsonSafe)}\n`;
  }

  #text(level: Level, msg: string, extra?: Record<string, unknown>): string {
    let kv = "";
    for (const k in this.fields) if (!extra || !Object.hasOwn(extra, k)) kv += pair(k, this.fields[k]);
    if (extra) for (const k in extra) kv += pair(k, extra[k]);
    return `${timestamp()} ${LABEL[level]} ${this.name}: ${printable(msg, MAX_MESSAGE)}${kv}\n`;
  }
}

const LABEL: Record<Level, string> = { debug: "DEBUG", info: "INFO ", warn: "WARN ", error: "ERROR" };
/** Keys that need no escaping (every key the code itself writes). */
const PLAIN_KEY = /^[A-Za-z0-9_.-]{1,100}$/;

/** ` key=value` for the text format. */
function pair(k: string, v: unknown): string {
  const key = PLAIN_KEY.test(k) ? k : printable(k, 100);
  if (typeof v === "number" || typeof v === "boolean") return ` ${key}=${v}`;
  const text = typeof v === "string" ? v : (JSON.stringify(v, jsonSafe) ?? String(v));
  return ` ${key}=${printable(text, MAX_VALUE)}`;
}

function cut(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}… (${text.length} chars)` : text;
}

function jsonSafe(_key: string, v: unknown): unknown {
  if (typeof v === "string") return cut(v, MAX_VALUE);
  if (typeof v === "bigint") return v.toString();
  if (v instanceof Error) return cut(v.message, MAX_MESSAGE);
  if (v instanceof Uint8Array) return cut(Buffer.from(v).toString("hex"), MAX_VALUE);
  return v;
}

export function logger(name: string): Logger {
  return new Logger(name);
}

/**
 * For warnings a hostile peer can provoke at will (bad connections, forged messages): the first
 * `burst` lines of each window are written; the rest are counted, and when the window ends one line
 * says how many were held back ("998 more like this in the last 10 s: <the last one>").
 */
export class RateLimitedLog {
  readonly #log: Logger;
  readonly #level: Level;
  readonly #windowMs: number;
  readonly #burst: number;
  #windowStart = 0;
  #windowEnds = 0;
  #written = 0;
  #held = 0;
  #last: { msg: string; fields: Record<string, unknown> | undefined } | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Lines held back since this limiter was made (for tests and metrics). */
  suppressed = 0;

  constructor(log: Logger, options: { level?: Level; windowMs?: number; burst?: number } = {}) {
    this.#log = log;
    this.#level = options.level ?? "warn";
    this.#windowMs = options.windowMs ?? 10_000;
    this.#burst = options.burst ?? 1;
  }

  write(msg: string, fields?: Record<string, unknown>): void {
    if (!this.#log.enabled(this.#level)) return;
    const now = performance.now();
    if (now >= this.#windowEnds) {
      this.flush();
      this.#windowStart = now;
      this.#windowEnds = now + this.#windowMs;
      this.#written = 0;
    }
    if (this.#written < this.#burst) {
      this.#written++;
      this.#log[this.#level](msg, fields);
      return;
    }
    this.#held++;
    this.suppressed++;
    this.#last = { msg, fields };
    // The count goes out when the window ends, even if nothing else happens by then.
    if (!this.#timer) {
      // Timers may fire a little before performance.now() reaches windowEnds: the window ends here.
      this.#timer = setTimeout(
        () => {
          this.flush();
          this.#windowEnds = 0;
        },
        Math.max(1, this.#windowEnds - now),
      );
      this.#timer.unref?.();
    }
  }

  /** Writes the count of lines held back now (at the end of a window, or when the source stops). */
  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#held === 0 || !this.#last) return;
    const elapsed = Math.min(this.#windowMs, performance.now() - this.#windowStart);
    const seconds = Math.max(0.1, Math.round(elapsed / 100) / 10);
    this.#log[this.#level](
      `${this.#held} more like this in the last ${seconds} s: ${this.#last.msg}`,
      this.#last.fields,
    );
    this.#held = 0;
    this.#last = undefined;
  }
}

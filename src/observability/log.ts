/**
 * One small logger for the whole runtime: levels, text for people or JSON lines for machines,
 * always to stderr (stdout belongs to command output).
 */
export type Level = "debug" | "info" | "warn" | "error";
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface LogSink {
  write(line: string): void;
}

interface LogConfig {
  level: Level;
  format: "text" | "json";
  sink: LogSink;
}

const config: LogConfig = {
  level: (process.env.CONVERGE_LOG_LEVEL as Level) in ORDER ? (process.env.CONVERGE_LOG_LEVEL as Level) : "info",
  format: "text",
  sink: { write: (line) => process.stderr.write(line) },
};

export function configureLogging(options: Partial<LogConfig>): void {
  Object.assign(config, options);
}

export function logLevel(): Level {
  return config.level;
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

  #emit(level: Level, msg: string, extra?: Record<string, unknown>): void {
    const all = { ...this.fields, ...extra };
    if (config.format === "json") {
      config.sink.write(
        `${JSON.stringify({ ts: new Date().toISOString(), level, logger: this.name, msg, ...all }, jsonSafe)}\n`,
      );
      return;
    }
    const kv = Object.entries(all)
      .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v, jsonSafe)}`)
      .join(" ");
    config.sink.write(
      `${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${this.name}: ${msg}${kv ? ` ${kv}` : ""}\n`,
    );
  }
}

function jsonSafe(_key: string, v: unknown): unknown {
  if (typeof v === "bigint") return v.toString();
  if (v instanceof Error) return v.message;
  if (v instanceof Uint8Array) return Buffer.from(v).toString("hex");
  return v;
}

export function logger(name: string): Logger {
  return new Logger(name);
}

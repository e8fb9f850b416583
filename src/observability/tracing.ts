/**
 * Minimal tracing: a span measures a duration and reports it to a logger at debug level.
 *
 *   const span = startSpan(log, "decide", { agent });  ...  span.end();
 *   await traced(log, "execute", () => executor.executeAll(decisions));
 */
import type { Logger } from "./log.ts";

export interface Span {
  readonly name: string;
  /** Ends the span (once; later calls change nothing) and returns its duration in ms. */
  end(fields?: Record<string, unknown>): number;
}

export function startSpan(log: Logger, name: string, fields?: Record<string, unknown>): Span {
  const start = performance.now();
  let duration: number | undefined;
  return {
    name,
    end(extra) {
      if (duration !== undefined) return duration;
      duration = performance.now() - start;
      log.debug(`span ${name}`, { ...fields, ...extra, durationMs: Math.round(duration * 1000) / 1000 });
      return duration;
    },
  };
}

/** Runs `fn` in a span; a thrown error is reported on the span (`err`, as in every log line) and rethrown. */
export async function traced<T>(
  log: Logger,
  name: string,
  fn: () => T | Promise<T>,
  fields?: Record<string, unknown>,
): Promise<T> {
  const span = startSpan(log, name, fields);
  try {
    const value = await fn();
    span.end();
    return value;
  } catch (err) {
    span.end({ err: err instanceof Error ? err.message : String(err) });
    throw err;
  }
}

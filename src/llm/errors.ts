/**
 * What a failed model request means for the next one: a rate limit or overload the whole fleet
 * waits out (429, 529, or 503 with a wait hint), a transient error this request retries with
 * backoff (other 5xx, 408, 409, timeouts, connection failures), or a final answer (400, 401, 404,
 * ...). Also the wait a provider asks for, from `retry-after-ms`, `retry-after` (seconds or an
 * HTTP date) or its own reset headers (OpenAI `x-ratelimit-reset-*` durations such as "6m0s",
 * Anthropic `anthropic-ratelimit-*-reset` RFC 3339 times).
 */
import { ConvergeError } from "../core/errors.ts";
import { printable } from "../core/text.ts";
import { parseDuration } from "../core/duration.ts";

/** A model request that failed for good; its message says why, for the task's error. */
export class LlmError extends ConvergeError {}

/** A task attempt that would go over one of its budgets. */
export class BudgetExceededError extends LlmError {}

export type Failure =
  | { kind: "aborted"; message: string }
  | { kind: "rate-limited"; status: number; waitMs: number | undefined; message: string }
  | { kind: "transient"; status: number | undefined; message: string }
  | { kind: "final"; status: number | undefined; message: string };

interface ApiCallErrorLike {
  name?: string;
  message?: string;
  statusCode?: number;
  responseHeaders?: Record<string, string>;
  responseBody?: string;
  isRetryable?: boolean;
  url?: string;
  cause?: unknown;
}

/** How a failure from the provider library (or our own timeout) should be handled. */
export function classify(err: unknown, now = Date.now()): Failure {
  if (err instanceof LlmError) return { kind: "final", status: undefined, message: err.message };
  const e = (err ?? {}) as ApiCallErrorLike;
  if (e.name === "AbortError") return { kind: "aborted", message: "the request was aborted" };
  if (e.name === "TimeoutError") return { kind: "transient", status: undefined, message: "the request timed out" };
  const status = typeof e.statusCode === "number" ? e.statusCode : undefined;
  const message = describeFailure(e);
  if (e.name === "AI_APICallError" || status !== undefined) {
    const waitMs = e.responseHeaders ? retryAfterMs(e.responseHeaders, now) : undefined;
    if (status === 429 || status === 529 || (status === 503 && waitMs !== undefined))
      return { kind: "rate-limited", status, waitMs, message };
    if (e.isRetryable || (status !== undefined && (status === 408 || status === 409 || status >= 500)))
      return { kind: "transient", status, message };
    return { kind: "final", status, message };
  }
  return { kind: "final", status: undefined, message };
}

/** One line for a task's error: the status, the provider's own message, never a stack. */
function describeFailure(e: ApiCallErrorLike): string {
  const status = e.statusCode;
  const own = status !== undefined ? providerMessage(e.responseBody) : undefined;
  const text = own ?? (e.message || String(e.name ?? "unknown error"));
  const prefix = status !== undefined ? `HTTP ${status}: ` : "";
  const where = status === undefined && e.url ? ` (${e.url})` : "";
  return printable(`${prefix}${text}${where}`, 300);
}

/** `error.message` (OpenAI, Anthropic) or `message` (Mistral) of a JSON error body. */
function providerMessage(body: string | undefined): string | undefined {
  if (!body) return undefined;
  try {
    const j = JSON.parse(body.slice(0, 65_536)) as { error?: { message?: unknown } | string; message?: unknown };
    const m = typeof j.error === "object" ? j.error?.message : typeof j.error === "string" ? j.error : j.message;
    return typeof m === "string" && m !== "" ? m : undefined;
  } catch {
    return undefined;
  }
}

const HOUR_MS = 3_600_000;

/**
 * The wait in ms a response's headers ask for, or undefined when they name none. The longest of
 * the hints given wins (a request limit and a token limit may reset at different times).
 */
export function retryAfterMs(headers: Record<string, string>, now = Date.now()): number | undefined {
  const h = (name: string) => headers[name] ?? headers[name.toLowerCase()];
  const waits: number[] = [];
  const ms = Number(h("retry-after-ms"));
  if (h("retry-after-ms") !== undefined && Number.isFinite(ms) && ms >= 0) waits.push(ms);
  const ra = h("retry-after");
  if (ra !== undefined) {
    const s = ra.trim();
    if (/^\d+(\.\d+)?$/.test(s)) waits.push(Number(s) * 1000);
    else {
      const at = Date.parse(s);
      if (Number.isFinite(at)) waits.push(Math.max(0, at - now));
    }
  }
  for (const name of ["x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"]) {
    const d = h(name);
    const v = d === undefined ? undefined : headerDuration(d);
    if (v !== undefined) waits.push(v);
  }
  for (const name of [
    "anthropic-ratelimit-requests-reset",
    "anthropic-ratelimit-tokens-reset",
    "anthropic-ratelimit-input-tokens-reset",
    "anthropic-ratelimit-output-tokens-reset",
  ]) {
    const d = h(name);
    const at = d === undefined ? NaN : Date.parse(d);
    if (Number.isFinite(at)) waits.push(Math.max(0, at - now));
  }
  if (waits.length === 0) return undefined;
  // A hint is never believed beyond an hour (a hostile or broken header must not park the fleet for days).
  return Math.min(Math.max(...waits), HOUR_MS);
}

/**
 * A provider's reset header as ms: "1s", "6m0s", "20ms", "1h2m3.5s", or bare seconds ("0.5");
 * undefined when it is none of these (core/duration.ts reads it, as it reads every duration).
 */
export function headerDuration(text: string): number | undefined {
  try {
    return parseDuration(text, "a rate-limit header", { bareSeconds: true });
  } catch {
    return undefined;
  }
}

/**
 * One model request as the fleet needs it, wrapped around the provider model's `doGenerate`
 * (the AI SDK runs the tool loop; every step comes through here): the task's budget is checked
 * first, the fleet-wide limiter admits the request (waiting if it must), a timeout bounds it, and
 * the answer's usage is counted. A 429 (or 529, or 503 with a wait hint) makes the whole fleet
 * back off through the store for as long as the provider asked; other transient errors retry here
 * with exponential backoff and jitter, a bounded number of times; anything else, or running out of
 * tries, fails with an LlmError whose message is the task's error. The SDK's own retries are off.
 */
import type { LanguageModelV3, LanguageModelV3CallOptions, LanguageModelV3GenerateResult } from "@ai-sdk/provider";
import type { Logger } from "../observability/log.ts";
import { BudgetExceededError, classify, LlmError } from "./errors.ts";
import type { LlmStats, RequestOutcome } from "./metrics.ts";
import { sleep, type FleetLimiter } from "./rate-limit.ts";
import type { UsageMeter } from "./usage.ts";

export interface RequestPolicy {
  provider: string;
  model: string;
  limiter: FleetLimiter;
  stats: LlmStats;
  log: Logger;
  timeoutMs: number;
  /** Tries after a transient error. */
  retries: number;
  maxOutputTokens?: number;
}

/** Rate-limited answers are waited out this many times per request before the attempt fails. */
const RATE_LIMITED_TRIES = 10;
const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 30_000;

/** Exponential backoff with jitter: half the delay fixed, half random. */
export function backoffMs(tryNumber: number): number {
  const d = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.max(0, tryNumber - 1));
  return d / 2 + Math.random() * (d / 2);
}

export async function guardedGenerate(
  inner: LanguageModelV3,
  params: LanguageModelV3CallOptions,
  policy: RequestPolicy,
  meter: UsageMeter | undefined,
): Promise<LanguageModelV3GenerateResult> {
  const { provider, model, limiter, stats, log } = policy;
  const caller = params.abortSignal;
  let transient = 0;
  let limited = 0;
  for (;;) {
    meter?.beforeRequest();
    const configured = params.maxOutputTokens ?? policy.maxOutputTokens;
    const { cap, byBudget } = meter ? meter.outputCap(configured) : { cap: configured, byBudget: false };
    const estimate = limiter.options.tokensPerMinute !== undefined ? estimateTokens(params, cap) : 0;
    const reservation = await limiter.acquire(estimate, caller);
    const timeout = AbortSignal.timeout(policy.timeoutMs);
    const signal = caller ? AbortSignal.any([caller, timeout]) : timeout;
    const t0 = performance.now();
    let res: LanguageModelV3GenerateResult;
    try {
      res = await inner.doGenerate({ ...params, maxOutputTokens: cap, abortSignal: signal });
    } catch (err) {
      const seconds = (performance.now() - t0) / 1000;
      if (caller?.aborted) {
        stats.request(provider, model, "aborted", seconds);
        throw caller.reason ?? err;
      }
      const timedOut = timeout.aborted;
      const f = timedOut
        ? { kind: "transient" as const, status: undefined, message: `no answer within ${policy.timeoutMs / 1000} s` }
        : classify(err);
      const outcome: RequestOutcome = f.kind === "rate-limited" ? "rate_limited" : timedOut ? "timeout" : "error";
      stats.request(provider, model, outcome, seconds);
      await limiter.settle(reservation, 0).catch(() => {});
      if (f.kind === "rate-limited") {
        if (++limited >= RATE_LIMITED_TRIES)
          throw new LlmError(`${provider} kept rate-limiting after ${limited} tries: ${f.message}`);
        const wait = f.waitMs ?? backoffMs(limited);
        log.warn("rate limited by the provider; the fleet backs off", {
          provider,
          status: f.status,
          waitMs: Math.round(wait),
          hinted: f.waitMs !== undefined,
        });
        await limiter.backOff(wait);
        continue;
      }
      if (f.kind === "transient" && transient < policy.retries) {
        transient++;
        const wait = backoffMs(transient);
        log.warn("model request failed; retrying", {
          provider,
          try: transient,
          waitMs: Math.round(wait),
          err: f.message,
        });
        await sleep(wait, caller);
        continue;
      }
      const tries = transient + limited + 1;
      throw new LlmError(
        f.kind === "transient"
          ? `${provider} request failed after ${tries} tries: ${f.message}`
          : `${provider} request failed: ${f.message}`,
      );
    }
    const seconds = (performance.now() - t0) / 1000;
    const input = res.usage.inputTokens.total ?? 0;
    const output = res.usage.outputTokens.total ?? 0;
    stats.request(provider, model, "ok", seconds);
    stats.tokens(provider, model, input, output);
    await limiter
      .settle(reservation, input + output)
      .catch((err) => log.warn("could not settle a token reservation", { err }));
    try {
      meter?.add(input, output);
      if (res.finishReason.unified === "length") {
        if (byBudget && meter) throw meter.truncated();
        throw new LlmError(`the model's answer was cut off at max_output_tokens (${cap ?? "the provider's limit"})`);
      }
    } catch (err) {
      if (err instanceof BudgetExceededError) stats.budgetExceeded(provider, model);
      throw err;
    }
    return res;
  }
}

/** Tokens a request may use, for the tokens-per-minute reservation: prompt characters / 4, plus the output cap. */
function estimateTokens(params: LanguageModelV3CallOptions, cap: number | undefined): number {
  let chars = 0;
  for (const m of params.prompt)
    chars += typeof m.content === "string" ? m.content.length : JSON.stringify(m.content).length;
  if (params.tools) chars += JSON.stringify(params.tools).length;
  return Math.ceil(chars / 4) + (cap ?? 0);
}

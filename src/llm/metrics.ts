/**
 * Counters of model requests in this process (by provider, model and outcome), tokens, latency,
 * rate-limit waits and tool calls, added to the runtime's /metrics on each scrape.
 */
import type { Metrics } from "../observability/metrics.ts";

export type RequestOutcome = "ok" | "rate_limited" | "error" | "timeout" | "aborted";

interface Series {
  requests: Map<RequestOutcome, number>;
  inputTokens: number;
  outputTokens: number;
  latencySum: number;
  latencyCount: number;
  waits: Map<string, { count: number; seconds: number }>;
  budgetExceeded: number;
}

export class LlmStats {
  readonly #series = new Map<string, Series & { provider: string; model: string }>();
  readonly tools = new Map<string, { ok: number; error: number }>();

  #get(provider: string, model: string) {
    const k = `${provider}\u0000${model}`;
    let s = this.#series.get(k);
    if (!s) {
      s = {
        provider,
        model,
        requests: new Map(),
        inputTokens: 0,
        outputTokens: 0,
        latencySum: 0,
        latencyCount: 0,
        waits: new Map(),
        budgetExceeded: 0,
      };
      this.#series.set(k, s);
    }
    return s;
  }

  request(provider: string, model: string, outcome: RequestOutcome, seconds: number): void {
    const s = this.#get(provider, model);
    s.requests.set(outcome, (s.requests.get(outcome) ?? 0) + 1);
    s.latencySum += seconds;
    s.latencyCount++;
  }

  tokens(provider: string, model: string, input: number, output: number): void {
    const s = this.#get(provider, model);
    s.inputTokens += input;
    s.outputTokens += output;
  }

  /** A pause before a request; `first` counts a new wait (a long wait pauses several times). */
  wait(provider: string, model: string, reason: string, seconds: number, first = true): void {
    const w = this.#get(provider, model).waits;
    const c = w.get(reason) ?? { count: 0, seconds: 0 };
    if (first) c.count++;
    c.seconds += seconds;
    w.set(reason, c);
  }

  budgetExceeded(provider: string, model: string): void {
    this.#get(provider, model).budgetExceeded++;
  }

  tool(name: string, ok: boolean): void {
    const c = this.tools.get(name) ?? { ok: 0, error: 0 };
    ok ? c.ok++ : c.error++;
    this.tools.set(name, c);
  }

  /** Declares and fills the converge_llm_* metrics. */
  addTo(m: Metrics): Metrics {
    m.counter("converge_llm_requests_total", "Model requests, by provider, model and outcome")
      .counter("converge_llm_input_tokens_total", "Input (prompt) tokens the provider reported")
      .counter("converge_llm_output_tokens_total", "Output (completion) tokens the provider reported")
      .counter("converge_llm_request_duration_seconds_sum", "Time spent in model requests")
      .counter("converge_llm_request_duration_seconds_count", "Model requests timed")
      .counter(
        "converge_llm_rate_limit_waits_total",
        "Requests that waited: for the fleet limit or a provider back-off",
      )
      .counter("converge_llm_rate_limit_wait_seconds_total", "Time spent waiting before requests")
      .counter("converge_llm_budget_exceeded_total", "Task attempts failed for going over a budget")
      .counter("converge_llm_tool_calls_total", "Tool calls made for the model, by tool and outcome");
    for (const s of this.#series.values()) {
      const l = { provider: s.provider, model: s.model };
      for (const [outcome, n] of s.requests) m.increment("converge_llm_requests_total", { ...l, outcome }, n);
      m.increment("converge_llm_input_tokens_total", l, s.inputTokens);
      m.increment("converge_llm_output_tokens_total", l, s.outputTokens);
      m.increment("converge_llm_request_duration_seconds_sum", l, s.latencySum);
      m.increment("converge_llm_request_duration_seconds_count", l, s.latencyCount);
      for (const [reason, w] of s.waits) {
        m.increment("converge_llm_rate_limit_waits_total", { ...l, reason }, w.count);
        m.increment("converge_llm_rate_limit_wait_seconds_total", { ...l, reason }, w.seconds);
      }
      if (s.budgetExceeded) m.increment("converge_llm_budget_exceeded_total", l, s.budgetExceeded);
    }
    for (const [tool, c] of this.tools) {
      if (c.ok) m.increment("converge_llm_tool_calls_total", { tool, outcome: "ok" }, c.ok);
      if (c.error) m.increment("converge_llm_tool_calls_total", { tool, outcome: "error" }, c.error);
    }
    return m;
  }
}

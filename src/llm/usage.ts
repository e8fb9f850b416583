/**
 * What one task attempt has spent on the model, checked against its budgets: a request that the
 * budget no longer allows is never sent, and an answer that takes the attempt over its token
 * budget fails it with `budget exceeded: ...` rather than being reported.
 */
import { BudgetExceededError } from "./errors.ts";

export interface Usage {
  inputTokens: number;
  outputTokens: number;
  /** Model answers received (failed tries are not billed and not counted; /metrics has them). */
  requests: number;
}

export interface Budget {
  maxRequests?: number;
  maxTokens?: number;
}

export class UsageMeter {
  readonly usage: Usage = { inputTokens: 0, outputTokens: 0, requests: 0 };

  constructor(readonly budget: Budget = {}) {}

  get tokens(): number {
    return this.usage.inputTokens + this.usage.outputTokens;
  }

  /** Throws when the budget allows no further request. */
  beforeRequest(): void {
    const { maxRequests, maxTokens } = this.budget;
    if (maxRequests !== undefined && this.usage.requests >= maxRequests)
      throw new BudgetExceededError(
        `budget exceeded: max_requests_per_task (${maxRequests}) used up ` +
          `before the model gave its final answer (${this.#spent()})`,
      );
    if (maxTokens !== undefined && this.tokens >= maxTokens)
      throw new BudgetExceededError(`budget exceeded: max_tokens_per_task (${maxTokens}) used up (${this.#spent()})`);
  }

  /** The most output tokens the next answer may have: the configured cap, or less when the budget is nearly spent. */
  outputCap(configured: number | undefined): { cap: number | undefined; byBudget: boolean } {
    if (this.budget.maxTokens === undefined) return { cap: configured, byBudget: false };
    const left = Math.max(1, this.budget.maxTokens - this.tokens);
    return configured !== undefined && configured <= left
      ? { cap: configured, byBudget: false }
      : { cap: left, byBudget: true };
  }

  /** Counts an answer's usage; throws when it took the attempt over its token budget. */
  add(input: number, output: number): void {
    this.usage.requests++;
    this.usage.inputTokens += input;
    this.usage.outputTokens += output;
    const { maxTokens } = this.budget;
    if (maxTokens !== undefined && this.tokens > maxTokens)
      throw new BudgetExceededError(`budget exceeded: max_tokens_per_task (${maxTokens}) went over (${this.#spent()})`);
  }

  /** An answer cut short because the budget left no room for more. */
  truncated(): BudgetExceededError {
    return new BudgetExceededError(
      `budget exceeded: max_tokens_per_task (${this.budget.maxTokens}) ` +
        `left no room to finish the answer (${this.#spent()})`,
    );
  }

  #spent(): string {
    const u = this.usage;
    const requests = `${u.requests} request${u.requests === 1 ? "" : "s"}`;
    return `used ${this.tokens} tokens (${u.inputTokens} in, ${u.outputTokens} out) in ${requests}`;
  }
}

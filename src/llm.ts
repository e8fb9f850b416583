/**
 * `converge/llm`: model-driven agents (src/llm): providers through the AI SDK, the LLM worker and
 * decider, tools and MCP, fleet-wide rate limits and budgets. Its own entry point, so that a
 * program that never uses a model neither loads the AI SDK nor type-checks its declarations.
 */
export { LlmAgent, type LlmAgentOptions } from "./llm/agent.ts";
export { LlmClient, type LlmClientOptions, type LlmGenerateOptions, type LlmGenerateResult } from "./llm/client.ts";
export { ModelRunner, type RunnerOptions, type LlmTaskResult } from "./llm/runner.ts";
export { McpToolbox } from "./llm/mcp.ts";
export { FleetLimiter, type FleetLimitOptions } from "./llm/rate-limit.ts";
export { LlmStats } from "./llm/metrics.ts";
export { LlmError, BudgetExceededError } from "./llm/errors.ts";
export type { Usage, Budget } from "./llm/usage.ts";
export type { LlmConfig, McpServerConfig, ProviderName } from "./llm/config.ts";

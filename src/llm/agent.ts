/**
 * LlmAgent: an Agent whose work goes through a model, the counterpart of the Python original's
 * LLMAgent, but asynchronous, with tools, retries, fleet-wide limits and budgets.
 *
 *   const llm = await LlmClient.create({ provider: "anthropic", apiKey, store });
 *   const worker = new LlmAgent({ llm, capabilities: ["summarize"] });             // onTask via the model
 *   const decider = new LlmAgent({ llm, mode: "decider", systemPrompt: "..." });  // decide() via tool calls
 *
 * A worker's result is `{ output, usage: { inputTokens, outputTokens, requests }, model }`. Its MCP
 * servers (a shared McpToolbox) start with the agent and stop with it.
 */
import { Agent, type AgentOptions, type TaskContext } from "../core/agent.ts";
import type { Task } from "../core/task.ts";
import { ModelRunner, type LlmTaskResult, type RunnerOptions } from "./runner.ts";

export interface LlmAgentOptions extends AgentOptions, RunnerOptions {
  /** worker (default): tasks are claimed for it and run through the model; decider: decide() asks the model. */
  mode?: "worker" | "decider";
}

export class LlmAgent extends Agent {
  readonly mode: "worker" | "decider";
  readonly runner: ModelRunner;

  constructor(options: LlmAgentOptions) {
    super(options);
    this.mode = options.mode ?? "worker";
    this.runner = new ModelRunner(options);
    // Only the hook of its mode exists, so the runtime knows a worker from a decider.
    if (this.mode === "worker") this.onTask = (task, ctx) => this.runTask(task, ctx);
    else this.decide = (messages, tasks) => this.runner.decide(this.id, messages, tasks);
  }

  runTask(task: Task, ctx?: Pick<TaskContext, "signal">): Promise<LlmTaskResult> {
    return this.runner.runTask(task, ctx?.signal);
  }

  override async onStart(): Promise<void> {
    await this.runner.options.mcp?.acquire();
  }

  override async onStop(): Promise<void> {
    await this.runner.options.mcp?.release();
  }
}

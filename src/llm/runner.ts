/**
 * What an LLM agent does with its model, shared by the LlmAgent class and the agent specs that
 * `converge run` builds: run a task (worker) or turn what is new into decisions (decider).
 *
 * - runTask: the task becomes the prompt; the model may call tools for up to `maxSteps` requests;
 *   its final answer is the result `{ output, usage, model }`, where `output` is the text or, with
 *   `constraints.output_schema`, the parsed and validated JSON. A budget, a bad answer or a failed
 *   request throws, which fails the attempt (the task's retry policy applies).
 * - decide: called on every wake-up, it calls the model only when something is new (a message, or
 *   a claimable task it has not been shown), with one tool per decision. After a failed call what
 *   it was shown is shown again on a later wake-up (messages included), waiting longer each time.
 */
import type { JSONSchema7 } from "@ai-sdk/provider";
import type { StepResult, ToolSet } from "ai";
import type { Decisions } from "../core/agent.ts";
import type { Message } from "../core/message.ts";
import type { Task } from "../core/task.ts";
import { printable } from "../core/text.ts";
import type { ToolRegistry } from "../core/tools.ts";
import { logger, type Logger } from "../observability/log.ts";
import type { LlmClient } from "./client.ts";
import type { McpToolbox } from "./mcp.ts";
import { DECIDER_SYSTEM_PROMPT, deciderPrompt, WORKER_SYSTEM_PROMPT, workerPrompt } from "./prompt.ts";
import { UsageMeter, type Usage } from "./usage.ts";

export interface RunnerOptions {
  llm: LlmClient;
  /** Replaces the default system prompt. */
  systemPrompt?: string;
  tools?: ToolRegistry;
  /** JSON Schemas of the registry tools' arguments. */
  toolSchemas?: Record<string, JSONSchema7>;
  mcp?: McpToolbox;
  /** The tools the model may call (registry and MCP names); all when omitted. */
  toolAllowlist?: readonly string[];
  /** One tool call's timeout (default 30 000 ms). */
  toolTimeoutMs?: number;
  /** Most model requests per task or decide pass (default 8). */
  maxSteps?: number;
  maxRequestsPerTask?: number;
  maxTokensPerTask?: number;
}

export interface LlmTaskResult {
  output: unknown;
  usage: Usage;
  model: string;
}

interface DeciderState {
  /** `id@updatedAt` of the tasks already shown. */
  seen: Map<string, true>;
  /** Messages of a failed call, shown again with the next ones. */
  carry: Message[];
  held: Map<string, Task>;
  failures: number;
  notBefore: number;
}

// The modules that import the AI SDK and Ajv load on first use (a process without an LLM never
// loads them), once: an import() per task costs more than it looks.
let engine: Promise<typeof import("./engine.ts")> | undefined;
let output: Promise<typeof import("./output.ts")> | undefined;
let toolset: Promise<typeof import("./toolset.ts")> | undefined;
let deciderTools: Promise<typeof import("./decider-tools.ts")> | undefined;
const load = {
  engine: () => (engine ??= import("./engine.ts")),
  output: () => (output ??= import("./output.ts")),
  toolset: () => (toolset ??= import("./toolset.ts")),
  deciderTools: () => (deciderTools ??= import("./decider-tools.ts")),
};

const SEEN_MAX = 10_000;
const CARRY_MAX = 50;

export class ModelRunner {
  readonly #log: Logger;
  #toolset: { for: unknown; tools: ToolSet } | undefined;
  readonly #deciders = new Map<string, DeciderState>();

  constructor(readonly options: RunnerOptions) {
    this.#log = logger("llm");
  }

  async #tools(): Promise<ToolSet | undefined> {
    const o = this.options;
    const mcpTools = o.mcp?.tools;
    if (!o.tools && !mcpTools?.size) return undefined;
    if (!this.#toolset || this.#toolset.for !== mcpTools) {
      const { buildToolSet } = await load.toolset();
      const tools = buildToolSet({
        registry: o.tools,
        schemas: o.toolSchemas,
        mcp: mcpTools,
        allowlist: o.toolAllowlist,
        timeoutMs: o.toolTimeoutMs ?? 30_000,
        stats: o.llm.stats,
        log: this.#log,
      });
      this.#toolset = { for: mcpTools, tools };
    }
    return this.#toolset!.tools;
  }

  /** Runs one task through the model; throws (failing the attempt) on any problem. */
  async runTask(task: Task, signal?: AbortSignal): Promise<LlmTaskResult> {
    const schema = task.constraints?.output_schema;
    const parser = schema !== undefined ? await load.output() : undefined;
    parser?.validatorFor(schema); // a bad schema fails before any request
    const { generate } = await load.engine();
    const meter = new UsageMeter({
      maxRequests: this.options.maxRequestsPerTask,
      maxTokens: this.options.maxTokensPerTask,
    });
    const r = await generate(this.options.llm.handle, {
      system: this.options.systemPrompt ?? WORKER_SYSTEM_PROMPT,
      prompt: workerPrompt(task),
      tools: await this.#tools(),
      maxSteps: this.options.maxSteps,
      signal,
      meter,
      needsAnswer: true,
      onStep: (step) => this.#logRefused(step, { task: printable(task.id, 64) }, true),
    });
    return { output: parser ? parser.parseOutput(r.text, schema) : r.text, usage: { ...meter.usage }, model: r.model };
  }

  /**
   * Logs the tool calls of a step that were refused: calls of unknown tools or with bad arguments
   * (`invalidOnly`), or also those a tool turned down (a decision naming a task it may not take).
   * The model is told why in the tool's result; the call itself is dropped.
   */
  #logRefused(step: StepResult<ToolSet>, fields: Record<string, string>, invalidOnly: boolean): void {
    const invalid = new Set(step.toolCalls.filter((c) => c.dynamic && c.invalid).map((c) => c.toolCallId));
    for (const part of step.content) {
      if (part.type !== "tool-error" || (invalidOnly && !invalid.has(part.toolCallId))) continue;
      this.#log.warn("the model's tool call was refused and dropped", {
        ...fields,
        tool: printable(part.toolName, 64),
        reason: printable(String((part.error as Error)?.message ?? part.error)),
      });
    }
  }

  /** Decisions for what is new since the last call; [] without calling the model when nothing is. */
  async decide(agentId: string, messages: readonly Message[], tasks: readonly Task[]): Promise<Decisions> {
    let st = this.#deciders.get(agentId);
    if (!st)
      this.#deciders.set(agentId, (st = { seen: new Map(), carry: [], held: new Map(), failures: 0, notBefore: 0 }));
    const fresh = tasks.filter((t) => !st.seen.has(`${t.id}@${t.updatedAt}`));
    const shown = [...st.carry, ...messages];
    if (shown.length === 0 && fresh.length === 0) return [];
    if (performance.now() < st.notBefore) {
      st.carry = shown.slice(-CARRY_MAX);
      return [];
    }
    st.carry = [];
    for (const t of fresh) st.seen.set(`${t.id}@${t.updatedAt}`, true);
    while (st.seen.size > SEEN_MAX) st.seen.delete(st.seen.keys().next().value!);
    const [{ generate }, { decisionTools, DECISION_TOOL_NAMES }] = await Promise.all([
      load.engine(),
      load.deciderTools(),
    ]);
    const collector = { decisions: [], claimable: new Map(tasks.map((t) => [t.id, t])), held: new Map(st.held) };
    const own = await this.#tools();
    const names = new Set<string>(DECISION_TOOL_NAMES);
    try {
      await generate(this.options.llm.handle, {
        system: this.options.systemPrompt ?? DECIDER_SYSTEM_PROMPT,
        prompt: deciderPrompt(agentId, shown, tasks, [...st.held.values()]),
        tools: { ...own, ...decisionTools(collector) },
        maxSteps: this.options.maxSteps,
        // A turn whose calls were all decisions (or refused calls, which are dropped) is over:
        // there is nothing the model waits to read.
        stopWhen: ({ steps }) => {
          const calls = steps[steps.length - 1]?.toolCalls ?? [];
          return calls.length > 0 && calls.every((c) => names.has(c.toolName) || (c.dynamic && c.invalid));
        },
        onStep: (step) => this.#logRefused(step, { agent: agentId.slice(0, 12) }, false),
      });
    } catch (err) {
      st.failures++;
      st.notBefore = performance.now() + Math.min(60_000, 1000 * 2 ** (st.failures - 1));
      st.carry = shown.slice(-CARRY_MAX);
      for (const t of fresh) st.seen.delete(`${t.id}@${t.updatedAt}`);
      this.#log.warn("decide: the model call failed; what it was shown will be shown again", {
        agent: agentId.slice(0, 12),
        err: printable(String((err as Error)?.message ?? err)),
      });
      return [];
    }
    st.failures = 0;
    st.held = collector.held;
    while (st.held.size > 100) st.held.delete(st.held.keys().next().value!);
    return collector.decisions;
  }
}

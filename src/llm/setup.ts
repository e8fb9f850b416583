/**
 * The `llm` mapping made real for `converge run`, in two steps. `prepareLlm` runs before anything
 * starts: it reads the API key from the variable the config names, the system prompt file, and
 * checks the MCP servers' commands and token variables, so a missing one is one line and exit 2.
 * `bind(store)` then makes the client over the shared store (the fleet's limits live there) and
 * starts the MCP servers; `close()` stops them after the agents have stopped.
 *
 * With no agent module every agent is an LlmAgent (`agentFor`). A module's factory gets `llm` (the
 * LlmModuleApi below) in its converge argument, so code and model can be mixed.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import type { JSONSchema7 } from "@ai-sdk/provider";
import type { Agent, TaskContext } from "../core/agent.ts";
import { ConfigError, ConvergeError } from "../core/errors.ts";
import type { Identity } from "../core/identity.ts";
import type { Task } from "../core/task.ts";
import { printable } from "../core/text.ts";
import type { ToolRegistry } from "../core/tools.ts";
import { topic } from "../core/topic.ts";
import type { Metrics } from "../observability/metrics.ts";
import type { AgentSpec } from "../runtime/module-agent.ts";
import type { Store } from "../store/store.ts";
import { LlmAgent } from "./agent.ts";
import { LlmClient, type LlmGenerateOptions, type LlmGenerateResult } from "./client.ts";
import type { LlmConfig } from "./config.ts";
import { McpToolbox } from "./mcp.ts";
import { LlmStats } from "./metrics.ts";
import { PROVIDERS } from "./providers.ts";
import { ModelRunner, type LlmTaskResult, type RunnerOptions } from "./runner.ts";

/** What an agent module may change from the config when it builds a worker or decider spec. */
export interface LlmSpecOptions {
  capabilities?: string[];
  topics?: string[];
  systemPrompt?: string;
  tools?: ToolRegistry;
  toolSchemas?: Record<string, JSONSchema7>;
  maxSteps?: number;
}

/** `converge.llm` in an agent module's factory: the configured model. */
export interface LlmModuleApi {
  readonly provider: string;
  readonly model: string;
  /** The client (limits, counters); there once the agents start. */
  readonly client: LlmClient;
  /** A model call under the fleet's limits (prompt, optional tools, signal). */
  generate(options: LlmGenerateOptions): Promise<LlmGenerateResult>;
  /** Runs a task through the model as the LLM worker does, with the config's tools plus `options.tools`. */
  runTask(task: Task, ctx: Pick<TaskContext, "signal">, options?: LlmSpecOptions): Promise<LlmTaskResult>;
  /** A module export whose onTask goes through the model. */
  worker(options?: LlmSpecOptions): AgentSpec;
  /** A module export whose decide goes through the model. */
  decider(options?: LlmSpecOptions): AgentSpec;
}

export interface LlmSetup {
  readonly config: LlmConfig;
  /** e.g. "openai gpt-4o-mini, worker, 60 requests/min for the fleet". */
  readonly description: string;
  readonly api: LlmModuleApi;
  bind(store: Store): Promise<void>;
  agentFor(identity: Identity, extra: { capabilities: string[]; topics: string[] }): Agent;
  addMetrics(m: Metrics): void;
  close(): Promise<void>;
}

const MAX_PROMPT_FILE = 1024 * 1024;

export function prepareLlm(config: LlmConfig, env: Record<string, string | undefined> = process.env): LlmSetup {
  const info = PROVIDERS[config.provider];
  const keyEnv = config.api_key_env ?? info.keyEnv;
  let apiKey: string | undefined;
  if (keyEnv) {
    apiKey = env[keyEnv];
    if (!apiKey)
      throw new ConfigError(
        `environment variable ${keyEnv} is not set: llm.provider ${config.provider} reads its API key from it ` +
          "(llm.api_key_env names the variable)",
      );
  }
  const systemPrompt =
    config.system_prompt ?? (config.system_prompt_file ? readPrompt(config.system_prompt_file) : undefined);
  checkMcpServers(config, env);
  const model = config.model ?? info.defaultModel!;
  const stats = new LlmStats();
  const mcp = config.mcp_servers.length > 0 ? new McpToolbox(config.mcp_servers, env) : undefined;
  let client: LlmClient | undefined;
  let bound = false;
  const need = (): LlmClient => {
    if (!client)
      throw new ConvergeError("converge.llm is ready once the agents start (use it in onTask, decide or onStart)");
    return client;
  };
  const base = (o: LlmSpecOptions = {}): RunnerOptions => ({
    llm: need(),
    systemPrompt: o.systemPrompt ?? systemPrompt,
    tools: o.tools,
    toolSchemas: o.toolSchemas,
    mcp,
    toolAllowlist: config.tools,
    toolTimeoutMs: config.tool_timeout_sec * 1000,
    maxSteps: o.maxSteps ?? config.max_steps,
    maxRequestsPerTask: config.max_requests_per_task,
    maxTokensPerTask: config.max_tokens_per_task,
  });
  const lazyRunner = (o?: LlmSpecOptions) => {
    let r: ModelRunner | undefined;
    return () => (r ??= new ModelRunner(base(o)));
  };
  // runTask is called per task: one runner per options object (its toolset is built once, and an
  // allowlist naming a missing tool is warned about once), not one per call.
  const defaultRunner = lazyRunner();
  const runners = new WeakMap<LlmSpecOptions, ModelRunner>();
  const runnerFor = (o?: LlmSpecOptions): ModelRunner => {
    if (o === undefined) return defaultRunner();
    let r = runners.get(o);
    if (!r) runners.set(o, (r = new ModelRunner(base(o))));
    return r;
  };
  const spec = (o: LlmSpecOptions | undefined, hooks: Pick<AgentSpec, "onTask" | "decide">): AgentSpec => ({
    ...(o?.capabilities ? { capabilities: o.capabilities } : {}),
    ...(o?.topics ? { topics: o.topics } : {}),
    ...hooks,
    onStart: () => mcp?.acquire(),
    onStop: () => mcp?.release(),
  });

  const api: LlmModuleApi = {
    provider: config.provider,
    model,
    get client() {
      return need();
    },
    generate: (options) => need().generate(options),
    runTask: (task, ctx, options) => runnerFor(options).runTask(task, ctx.signal),
    worker(o) {
      const runner = lazyRunner(o);
      return spec(o, { onTask: (task, ctx) => runner().runTask(task, ctx.signal) });
    },
    decider(o) {
      const runner = lazyRunner(o);
      return spec(o, { decide: (messages, tasks, agent) => runner().decide(agent.id, messages, tasks) });
    },
  };

  const limits = [
    config.requests_per_minute !== undefined ? `${config.requests_per_minute} requests/min` : "",
    config.tokens_per_minute !== undefined ? `${config.tokens_per_minute} tokens/min` : "",
  ].filter(Boolean);
  return {
    config,
    description: [
      `${config.provider} ${model}`,
      config.mode,
      limits.length ? `${limits.join(" and ")} for the fleet` : "",
    ]
      .filter(Boolean)
      .join(", "),
    api,
    async bind(store) {
      client = await LlmClient.create({
        provider: config.provider,
        model,
        baseUrl: config.base_url,
        apiKey,
        store,
        requestsPerMinute: config.requests_per_minute,
        tokensPerMinute: config.tokens_per_minute,
        rateWindowMs: config.rate_window_ms,
        temperature: config.temperature,
        maxOutputTokens: config.max_output_tokens,
        timeoutMs: config.timeout_sec * 1000,
        requestRetries: config.request_retries,
        stats,
      });
      if (mcp) {
        await mcp.acquire();
        bound = true;
      }
    },
    agentFor(identity, extra) {
      return new LlmAgent({
        ...base(),
        identity,
        mode: config.mode,
        capabilities: [...extra.capabilities],
        topics: extra.topics.map((t) => topic(t)),
      });
    },
    addMetrics(m) {
      stats.addTo(m);
    },
    async close() {
      if (bound) await mcp?.close();
    },
  };
}

function readPrompt(file: string): string {
  if (!existsSync(file)) throw new ConfigError(`llm.system_prompt_file ${file} does not exist`);
  const st = statSync(file);
  if (!st.isFile()) throw new ConfigError(`llm.system_prompt_file ${file} is not a file`);
  if (st.size > MAX_PROMPT_FILE) throw new ConfigError(`llm.system_prompt_file ${file} is over 1 MiB`);
  const text = readFileSync(file, "utf8").trim();
  if (text === "") throw new ConfigError(`llm.system_prompt_file ${file} is empty`);
  return text;
}

/** A stdio server's command must exist, and every variable a server needs must be set. */
function checkMcpServers(config: LlmConfig, env: Record<string, string | undefined>): void {
  for (const s of config.mcp_servers) {
    const where = `llm.mcp_servers "${s.name}"`;
    if ("command" in s) {
      const found = s.command.includes("/")
        ? existsSync(isAbsolute(s.command) ? s.command : resolve(s.cwd ?? process.cwd(), s.command))
        : Bun.which(s.command, { PATH: env.PATH ?? "" }) !== null;
      if (!found) throw new ConfigError(`${where}: command ${printable(s.command)} not found`);
      for (const v of s.pass_env)
        if (env[v] === undefined) throw new ConfigError(`${where}: pass_env names ${v}, which is not set`);
    } else if (s.bearer_token_env && !env[s.bearer_token_env]) {
      throw new ConfigError(`${where}: environment variable ${s.bearer_token_env} (bearer_token_env) is not set`);
    }
  }
}

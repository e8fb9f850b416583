/**
 * LlmClient: one configured model with the fleet's limits. It holds the provider's AI SDK model,
 * the limiter over the shared store (so `requests_per_minute`, `tokens_per_minute` and a 429's
 * back-off hold for every process sharing it), the request policy (timeout, retries) and the
 * counters behind /metrics. `generate` is a model call with tools under all of that.
 *
 *   const llm = await LlmClient.create({ provider: "openai", apiKey, store, requestsPerMinute: 500 });
 *   const { text, usage } = await llm.generate({ prompt: "Say hi", signal });
 */
import type { LanguageModelV3 } from "@ai-sdk/provider";
import { ConfigError } from "../core/errors.ts";
import { logger } from "../observability/log.ts";
import { MemoryStore } from "../store/memory.ts";
import type { Store } from "../store/store.ts";
import type { ProviderName } from "./config.ts";
import type { GenerateRequest, ModelHandle } from "./engine.ts";
import { LlmStats } from "./metrics.ts";
import { createLanguageModel, PROVIDERS } from "./providers.ts";
import { FleetLimiter } from "./rate-limit.ts";
import type { RequestPolicy } from "./request.ts";
import { UsageMeter, type Budget, type Usage } from "./usage.ts";

export interface LlmClientOptions {
  /** One of the built-in providers, or a label for `languageModel`. */
  provider: ProviderName | string;
  /** The model id (default: the provider's default). */
  model?: string;
  baseUrl?: string;
  apiKey?: string;
  /** Any AI SDK language model, instead of a built-in provider. */
  languageModel?: LanguageModelV3;
  /** Where the fleet-wide limits live; a private in-process store when omitted. */
  store?: Store;
  requestsPerMinute?: number;
  tokensPerMinute?: number;
  /** The limits' window (default 60 000 ms). */
  rateWindowMs?: number;
  temperature?: number;
  maxOutputTokens?: number;
  /** One request's timeout (default 120 000 ms). */
  timeoutMs?: number;
  /** Retries after a transient error (default 3). */
  requestRetries?: number;
  /** Counters to add to (shared by the clients of one process); a new set when omitted. */
  stats?: LlmStats;
}

export interface LlmGenerateOptions extends Omit<GenerateRequest, "meter"> {
  budget?: Budget;
}

export interface LlmGenerateResult {
  text: string;
  usage: Usage;
  model: string;
  steps: number;
}

let engine: Promise<typeof import("./engine.ts")> | undefined;

export class LlmClient {
  readonly provider: string;
  readonly modelId: string;
  readonly stats: LlmStats;
  readonly limiter: FleetLimiter;
  readonly handle: ModelHandle;

  private constructor(options: LlmClientOptions, languageModel: LanguageModelV3) {
    this.provider = options.provider;
    this.modelId = languageModel.modelId;
    this.stats = options.stats ?? new LlmStats();
    this.limiter = new FleetLimiter(
      options.store ?? new MemoryStore(),
      `${options.provider}:${options.baseUrl ?? "default"}:${this.modelId}`,
      {
        requestsPerMinute: options.requestsPerMinute,
        tokensPerMinute: options.tokensPerMinute,
        windowMs: options.rateWindowMs,
        onWait: (reason, ms, first) => this.stats.wait(this.provider, this.modelId, reason, ms / 1000, first),
      },
    );
    const policy: RequestPolicy = {
      provider: this.provider,
      model: this.modelId,
      limiter: this.limiter,
      stats: this.stats,
      log: logger("llm").child({ provider: this.provider, model: this.modelId }),
      timeoutMs: options.timeoutMs ?? 120_000,
      retries: options.requestRetries ?? 3,
      maxOutputTokens: options.maxOutputTokens,
    };
    this.handle = { languageModel, policy, temperature: options.temperature };
  }

  static async create(options: LlmClientOptions): Promise<LlmClient> {
    if (options.languageModel) return new LlmClient(options, options.languageModel);
    const provider = options.provider as ProviderName;
    const info = PROVIDERS[provider];
    if (!info) throw new ConfigError(`unknown LLM provider "${options.provider}"; pass languageModel for others`);
    const model = options.model ?? info.defaultModel;
    if (!model) throw new ConfigError(`LLM provider ${provider} needs a model id`);
    const lm = await createLanguageModel({ provider, model, baseUrl: options.baseUrl, apiKey: options.apiKey });
    return new LlmClient(options, lm);
  }

  /** A model call (with tools, up to `maxSteps` requests) under the fleet's limits and the given budget. */
  async generate(request: LlmGenerateOptions): Promise<LlmGenerateResult> {
    const { generate } = await (engine ??= import("./engine.ts"));
    const meter = new UsageMeter(request.budget);
    const r = await generate(this.handle, { ...request, meter });
    return { text: r.text, usage: { ...meter.usage }, model: r.model, steps: r.steps };
  }
}

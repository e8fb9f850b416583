/**
 * A model call with tools through the AI SDK's `generateText`: the SDK runs the tool loop (tool
 * errors and invalid calls go back to the model as error results), and every request of the loop
 * goes through `guardedGenerate` (limits, retries, budget). Loaded only when a model is called.
 */
import { generateText, stepCountIs, wrapLanguageModel, type StepResult, type StopCondition, type ToolSet } from "ai";
import type { LanguageModelV3 } from "@ai-sdk/provider";
import { printable } from "../core/text.ts";
import { logger } from "../observability/log.ts";
import { LlmError } from "./errors.ts";
import { guardedGenerate, type RequestPolicy } from "./request.ts";
import type { UsageMeter } from "./usage.ts";

// The SDK prints its warnings (an unknown model's output cap, an unsupported setting) to the console
// on every request; route them to our log, once each, unless the embedding program chose otherwise.
const g = globalThis as { AI_SDK_LOG_WARNINGS?: unknown };
if (g.AI_SDK_LOG_WARNINGS === undefined) {
  const log = logger("llm");
  const said = new Set<string>();
  g.AI_SDK_LOG_WARNINGS = (o: { warnings: unknown[]; provider: string; model: string }) => {
    for (const w of o.warnings) {
      const text = printable(JSON.stringify(w) ?? String(w), 300);
      if (said.size > 100 || said.has(text)) continue;
      said.add(text);
      log.warn("provider library warning", { provider: o.provider, model: o.model, warning: text });
    }
  };
}

export interface GenerateRequest {
  system?: string;
  prompt: string;
  tools?: ToolSet;
  /** Most requests (tool rounds) in this call (default 8). */
  maxSteps?: number;
  signal?: AbortSignal;
  meter?: UsageMeter;
  /** Stops the loop early (besides the step count and an answer without tool calls). */
  stopWhen?: StopCondition<ToolSet>;
  /** Fails the call when the steps run out while the model still calls tools (a worker needs a final answer). */
  needsAnswer?: boolean;
  onStep?: (step: StepResult<ToolSet>) => void;
}

export interface GenerateResult {
  text: string;
  /** The model id the provider answered with. */
  model: string;
  steps: number;
}

export interface ModelHandle {
  languageModel: LanguageModelV3;
  policy: RequestPolicy;
  temperature?: number;
}

export async function generate(handle: ModelHandle, req: GenerateRequest): Promise<GenerateResult> {
  const maxSteps = req.maxSteps ?? 8;
  const model = wrapLanguageModel({
    model: handle.languageModel,
    middleware: {
      specificationVersion: "v3",
      wrapGenerate: ({ params, model: inner }) => guardedGenerate(inner, params, handle.policy, req.meter),
    },
  });
  const result = await generateText({
    model,
    system: req.system,
    prompt: req.prompt,
    tools: req.tools,
    stopWhen: req.stopWhen ? [stepCountIs(maxSteps), req.stopWhen] : stepCountIs(maxSteps),
    maxRetries: 0,
    abortSignal: req.signal,
    ...(handle.temperature !== undefined ? { temperature: handle.temperature } : {}),
    onStepFinish: req.onStep,
  });
  const last = result.steps[result.steps.length - 1];
  if (req.needsAnswer && last && last.finishReason === "tool-calls" && result.steps.length >= maxSteps)
    throw new LlmError(
      `the model was still calling tools after max_steps (${maxSteps}) requests, with no final answer`,
    );
  return { text: result.text, model: result.response.modelId, steps: result.steps.length };
}

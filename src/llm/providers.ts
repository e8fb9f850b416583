/**
 * The providers converge speaks to, through the AI SDK's provider packages (never hand-written
 * HTTP). Each package is imported only when its provider is used, so a process without an `llm`
 * mapping never loads them. The base URL is always passed explicitly, so no provider variable in
 * the environment (OPENAI_BASE_URL, ANTHROPIC_BASE_URL, ...) can send requests elsewhere.
 */
import type { LanguageModelV3 } from "@ai-sdk/provider";
import type { ProviderName } from "./config.ts";

export interface ProviderInfo {
  defaultModel?: string;
  /** The variable the key is read from when `api_key_env` is not set; none: no key needed. */
  keyEnv?: string;
  defaultBaseUrl?: string;
}

export const PROVIDERS: Record<ProviderName, ProviderInfo> = {
  openai: { defaultModel: "gpt-4o-mini", keyEnv: "OPENAI_API_KEY", defaultBaseUrl: "https://api.openai.com/v1" },
  anthropic: {
    defaultModel: "claude-sonnet-4-20250514",
    keyEnv: "ANTHROPIC_API_KEY",
    defaultBaseUrl: "https://api.anthropic.com/v1",
  },
  mistral: {
    defaultModel: "mistral-small-latest",
    keyEnv: "MISTRAL_API_KEY",
    defaultBaseUrl: "https://api.mistral.ai/v1",
  },
  "openai-compatible": {},
};

export interface ModelSpec {
  provider: ProviderName;
  model: string;
  baseUrl?: string;
  apiKey?: string;
}

/** An AI SDK language model for the spec: OpenAI's chat completions, Anthropic's messages, Mistral's chat. */
export async function createLanguageModel(spec: ModelSpec): Promise<LanguageModelV3> {
  const baseURL = spec.baseUrl ?? PROVIDERS[spec.provider].defaultBaseUrl;
  switch (spec.provider) {
    case "openai": {
      const { createOpenAI } = await import("@ai-sdk/openai");
      // Chat completions, as the Python original uses, and what OpenAI-style proxies serve.
      return createOpenAI({ apiKey: spec.apiKey ?? "", baseURL }).chat(spec.model);
    }
    case "anthropic": {
      const { createAnthropic } = await import("@ai-sdk/anthropic");
      return createAnthropic({ apiKey: spec.apiKey ?? "", baseURL })(spec.model);
    }
    case "mistral": {
      const { createMistral } = await import("@ai-sdk/mistral");
      return createMistral({ apiKey: spec.apiKey ?? "", baseURL })(spec.model);
    }
    case "openai-compatible": {
      const { createOpenAICompatible } = await import("@ai-sdk/openai-compatible");
      if (!baseURL) throw new Error("openai-compatible needs a base URL");
      return createOpenAICompatible({ name: "openai-compatible", baseURL, apiKey: spec.apiKey }).chatModel(spec.model);
    }
  }
}

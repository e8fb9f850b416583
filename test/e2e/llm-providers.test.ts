/**
 * End to end through `converge run` with an `llm` mapping and no agent module: for each provider
 * (a stand-in speaking its wire format), a task submitted with `converge tasks submit` completes
 * with the model's answer as `{ output, usage, model }`, and the request carried the key from the
 * named variable, the model, the system prompt and the task's inputs. /metrics counts the request.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { TaskManager } from "../../src/coordination/task-manager.ts";
import { freePort, stopAll } from "../support/cli.ts";
import { useE2eEnvironment } from "../support/e2e.ts";
import { getTask, llmConfig } from "../fixtures/llm/harness.ts";
import { StandIn, systemOf, userText, type Provider } from "../fixtures/llm/stand-in.ts";
import { openStore, startWorker, submitViaCli, waitFinal } from "./fixtures/worker-support/harness.ts";

const standIns: StandIn[] = [];
const { tmp } = useE2eEnvironment({
  prefix: "converge-e2e-llm-providers-",
  cleanup: [stopAll, () => Promise.all(standIns.map((s) => s.stop()))],
});

const CASES: {
  provider: Provider;
  keyEnv?: string;
  defaultKeyEnv: string;
  auth: (h: Record<string, string>) => string;
}[] = [
  { provider: "openai", keyEnv: "MY_OPENAI_KEY", defaultKeyEnv: "", auth: (h) => h.authorization! },
  { provider: "anthropic", defaultKeyEnv: "ANTHROPIC_API_KEY", auth: (h) => h["x-api-key"]! },
  { provider: "mistral", defaultKeyEnv: "MISTRAL_API_KEY", auth: (h) => h.authorization! },
  { provider: "openai-compatible", keyEnv: "LOCAL_LLM_KEY", defaultKeyEnv: "", auth: (h) => h.authorization! },
];

for (const c of CASES) {
  test(`when the provider is ${c.provider}, a submitted task completes with the model's answer and the request carries key, model, system prompt and inputs`, async () => {
    const s = StandIn.start(c.provider, [
      { text: `Bees are insects (${c.provider})`, usage: { input: 42, output: 7 } },
    ]);
    standIns.push(s);
    const spec = { backend: "sqlite" as const, path: join(tmp.path, `${c.provider}.db`) };
    const httpPort = freePort();
    const key = `secret-${c.provider}-123`;
    const config = llmConfig(
      tmp.path,
      c.provider,
      spec,
      {
        provider: c.provider,
        model: `model-of-${c.provider}`,
        base_url: s.url,
        ...(c.keyEnv ? { api_key_env: c.keyEnv } : {}),
        system_prompt: "You are terse. Answer in one sentence.",
      },
      { http_port: httpPort },
    );
    const env = { [c.keyEnv ?? c.defaultKeyEnv]: key };
    const worker = await startWorker(config, { env });
    expect(worker.stdout).toContain(`llm: ${c.provider} model-of-${c.provider}, worker`);
    await submitViaCli(config, [
      { id: `bees-${c.provider}`, inputs: { topic: "bees", words: 12 }, capabilities: "write" },
    ]);
    const store = await openStore(spec);
    try {
      await waitFinal(new TaskManager(store), [`bees-${c.provider}`], 20_000);
    } finally {
      await store.close();
    }
    const task = await getTask(config, `bees-${c.provider}`);
    expect(task.state).toBe("completed");
    expect(task.result).toEqual({
      output: `Bees are insects (${c.provider})`,
      usage: { inputTokens: 42, outputTokens: 7, requests: 1 },
      model: `model-of-${c.provider}`,
    });

    expect(s.requests).toHaveLength(1);
    const r = s.requests[0]!;
    expect(r.path).toBe(c.provider === "anthropic" ? "/v1/messages" : "/v1/chat/completions");
    expect(c.auth(r.headers)).toBe(c.provider === "anthropic" ? key : `Bearer ${key}`);
    if (c.provider === "anthropic") expect(r.headers["anthropic-version"]).toBe("2023-06-01");
    expect(r.body.model).toBe(`model-of-${c.provider}`);
    expect(systemOf(r)).toBe("You are terse. Answer in one sentence.");
    const prompt = userText(r);
    expect(prompt).toContain(`Task bees-${c.provider}`);
    expect(prompt).toContain('"topic": "bees"');
    expect(prompt).toContain('"words": 12');

    const metrics = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
    const labels = `model="model-of-${c.provider}",outcome="ok",provider="${c.provider}"`;
    expect(metrics).toContain(`converge_llm_requests_total{${labels}} 1`);
    expect(metrics).toContain(
      `converge_llm_input_tokens_total{model="model-of-${c.provider}",provider="${c.provider}"} 42`,
    );
    expect(metrics).toContain(
      `converge_llm_output_tokens_total{model="model-of-${c.provider}",provider="${c.provider}"} 7`,
    );
    expect(await worker.stop("SIGTERM")).toBe(0);
    expect(worker.stdout).toContain("1 task completed, 0 failed");
  }, 40_000);
}

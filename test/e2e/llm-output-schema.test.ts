/**
 * `constraints.output_schema` through `converge run`: a valid JSON answer is reported parsed, a
 * markdown-fenced one too; an answer that does not match fails the attempt with the reason and the
 * task's retry policy runs it again; with no retries left the task ends failed with that reason.
 */
import { beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import { TaskManager } from "../../src/coordination/task-manager.ts";
import { stopAll, type Running } from "../support/cli.ts";
import { useE2eEnvironment } from "../support/e2e.ts";
import { getTask, llmConfig } from "../fixtures/llm/harness.ts";
import { StandIn, taskIdOf, userText, type Reply } from "../fixtures/llm/stand-in.ts";
import { openStore, startWorker, submitViaCli, waitFinal, type StoreSpec } from "./fixtures/worker-support/harness.ts";

let s: StandIn | undefined;
const { tmp } = useE2eEnvironment({ prefix: "converge-e2e-llm-schema-", cleanup: [stopAll, () => s?.stop()] });

const SCHEMA = {
  type: "object",
  properties: { name: { type: "string" }, age: { type: "integer", minimum: 0 } },
  required: ["name", "age"],
  additionalProperties: false,
};
/** Answers per task id, in order. */
const ANSWERS: Record<string, Reply[]> = {
  plain: [{ text: '{"name": "Ada", "age": 36}' }],
  fenced: [{ text: 'Here is the record:\n```json\n{"name": "Grace", "age": 85}\n```\nAnything else?' }],
  "bad-then-good": [{ text: '{"name": "Alan", "age": "forty-one"}' }, { text: '{"name": "Alan", "age": 41}' }],
  "never-json": [{ text: "I would rather not." }],
};
let spec: StoreSpec;
let config: string;
let worker: Running;

beforeAll(async () => {
  const served: Record<string, number> = {};
  s = StandIn.start("openai", (req) => {
    const id = taskIdOf(req)!;
    const n = (served[id] = (served[id] ?? 0) + 1);
    return ANSWERS[id]?.[n - 1] ?? { text: "(no more answers)" };
  });
  spec = { backend: "sqlite", path: join(tmp.path, "schema.db") };
  config = llmConfig(tmp.path, "schema", spec, { provider: "openai", base_url: s.url }, { agents: 2 });
  worker = await startWorker(config, { env: { OPENAI_API_KEY: "k" } });
});

test("when a task has output_schema, valid and fenced JSON answers are reported parsed, a bad one is retried, and one that never is fails with the reason", async () => {
  const constraints = { output_schema: SCHEMA, max_retries: 1, retry_backoff_ms: 50 };
  await submitViaCli(config, [
    { id: "plain", inputs: { who: "Ada Lovelace" }, constraints },
    { id: "fenced", inputs: { who: "Grace Hopper" }, constraints },
    { id: "bad-then-good", inputs: { who: "Alan Turing" }, constraints },
    { id: "never-json", inputs: { who: "nobody" }, constraints: { output_schema: SCHEMA, max_retries: 0 } },
  ]);
  const store = await openStore(spec);
  try {
    await waitFinal(new TaskManager(store), Object.keys(ANSWERS), 20_000);
  } finally {
    await store.close();
  }
  const plain = await getTask(config, "plain");
  expect(plain.state).toBe("completed");
  expect((plain.result as { output: unknown }).output).toEqual({ name: "Ada", age: 36 });
  const fenced = await getTask(config, "fenced");
  expect((fenced.result as { output: unknown }).output).toEqual({ name: "Grace", age: 85 });

  const retried = await getTask(config, "bad-then-good");
  expect(retried.state).toBe("completed");
  expect(retried.attempts).toBe(2);
  expect((retried.result as { output: unknown }).output).toEqual({ name: "Alan", age: 41 });

  const failed = await getTask(config, "never-json");
  expect(failed.state).toBe("failed");
  expect(failed.attempts).toBe(1);
  expect(failed.error).toContain("the model's answer is not JSON");

  // The model was shown the schema and asked for JSON only.
  const first = s!.requests.find((r) => taskIdOf(r) === "plain")!;
  expect(userText(first)).toContain("Answer with only a JSON value");
  expect(userText(first)).toContain('"additionalProperties": false');
  expect(s!.requests.filter((r) => taskIdOf(r) === "bad-then-good")).toHaveLength(2);
  expect(worker.stderr).toContain("does not match constraints.output_schema: /age must be integer");
  expect(await worker.stop("SIGTERM")).toBe(0);
}, 40_000);

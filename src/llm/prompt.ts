/**
 * What the model is told. A worker gets the task (objective, inputs, the constraints a model should
 * see, and the output schema when there is one); a decider gets what is new (messages reduced to
 * sender, topics, payload and task id; tasks to id, objective, inputs and capabilities) and the
 * tasks it holds. Values from outside are cut to bounded sizes, so one huge payload cannot make
 * an unbounded prompt.
 */
import type { Message } from "../core/message.ts";
import type { Task } from "../core/task.ts";
import { topicToString } from "../core/topic.ts";

export const WORKER_SYSTEM_PROMPT =
  "You are a worker agent in converge, a network of autonomous agents. The user message is a task. " +
  "Do it, using the tools when they help, and reply with the final answer only.";

export const DECIDER_SYSTEM_PROMPT =
  "You are an autonomous agent in converge, a network of agents that exchange signed messages and share tasks. " +
  "You are shown what is new: messages you received and tasks you may claim, and the tasks you hold. " +
  "Act only by calling tools: claim a task you can do, then report its result (report_task) or fail it; " +
  "send messages; submit new tasks; join or leave pools. When nothing needs doing, call no tool.";

/** Constraints converge acts on itself; the model is not shown them. */
const OWN_CONSTRAINTS = new Set(["claim_ttl_sec", "max_retries", "retry_backoff_ms", "output_schema"]);

/** A value as JSON of at most `max` characters (cut, saying so). */
export function boundedJson(v: unknown, max: number): string {
  let text: string;
  try {
    text = JSON.stringify(v, null, 2) ?? "null";
  } catch {
    text = JSON.stringify(String(v));
  }
  return text.length <= max ? text : `${text.slice(0, max)}… (cut: ${text.length} characters in all)`;
}

export function workerPrompt(task: Task): string {
  const parts = [`Task ${task.id}`, `Objective: ${task.objective ? task.objective.slice(0, 20_000) : "(none given)"}`];
  parts.push(`Inputs:\n${boundedJson(task.inputs ?? {}, 100_000)}`);
  const shown = Object.fromEntries(Object.entries(task.constraints ?? {}).filter(([k]) => !OWN_CONSTRAINTS.has(k)));
  if (Object.keys(shown).length > 0) parts.push(`Constraints:\n${boundedJson(shown, 20_000)}`);
  const schema = task.constraints?.output_schema;
  if (schema !== undefined)
    parts.push(
      "Answer with only a JSON value (no prose, no markdown) that conforms to this JSON Schema:\n" +
        boundedJson(schema, 50_000),
    );
  return parts.join("\n\n");
}

const MAX_MESSAGES = 50;
const MAX_TASKS = 20;

export function deciderPrompt(
  agentId: string,
  messages: readonly Message[],
  tasks: readonly Task[],
  held: readonly Task[],
): string {
  const recent = messages.slice(-MAX_MESSAGES);
  const view = {
    you: agentId,
    messages: recent.map((m) => ({
      id: m.id,
      sender: m.sender,
      topics: m.topics.map((t) => topicToString(t)),
      payload: JSON.parse(boundedJsonCompact(m.payload, 8_000)),
      task_id: m.taskId,
    })),
    ...(messages.length > recent.length ? { messages_omitted: messages.length - recent.length } : {}),
    tasks_you_may_claim: tasks.slice(0, MAX_TASKS).map(taskView),
    ...(tasks.length > MAX_TASKS ? { tasks_omitted: tasks.length - MAX_TASKS } : {}),
    tasks_you_hold: held.slice(0, MAX_TASKS).map(taskView),
  };
  return JSON.stringify(view, null, 2);
}

function taskView(t: Task) {
  return {
    id: t.id,
    objective: t.objective.slice(0, 4_000),
    inputs: JSON.parse(boundedJsonCompact(t.inputs, 8_000)),
    required_capabilities: t.requiredCapabilities,
  };
}

/** Compact JSON, or a JSON string saying the value was cut when it is longer than `max`. */
function boundedJsonCompact(v: unknown, max: number): string {
  let text: string;
  try {
    text = JSON.stringify(v ?? null) ?? "null";
  } catch {
    return JSON.stringify("(not JSON)");
  }
  return text.length <= max ? text : JSON.stringify(`${text.slice(0, max)}… (cut: ${text.length} characters in all)`);
}

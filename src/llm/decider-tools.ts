/**
 * A decider's decisions as tools, one per decision it may take. The SDK checks each call's
 * arguments against the tool's JSON Schema (with Ajv) and the tool checks what it refers to (a
 * task it may claim, a task it holds); a call that fails either is logged with its reason and
 * dropped, and the model gets the reason as the tool's error. A valid call becomes a Decision,
 * executed by the runtime after the model's turn (so messages are signed by the agent as usual).
 */
import { jsonSchema, tool, type ToolSet } from "ai";
import type { JSONSchema7 } from "@ai-sdk/provider";
import type { Decision } from "../core/decisions.ts";
import type { Task } from "../core/task.ts";
import { topic } from "../core/topic.ts";
import { validatorFor } from "./output.ts";

export const DECISION_TOOL_NAMES = [
  "send_message",
  "claim_task",
  "report_task",
  "fail_task",
  "submit_task",
  "join_pool",
  "leave_pool",
] as const;

const id = { type: "string", minLength: 1, maxLength: 256 } as const;
const object = { type: "object", additionalProperties: true } as const;

const SCHEMAS: Record<(typeof DECISION_TOOL_NAMES)[number], { description: string; schema: JSONSchema7 }> = {
  send_message: {
    description: "Send a signed message: to one agent (recipient = its id), or to everyone subscribed to the topics",
    schema: {
      type: "object",
      properties: {
        payload: object,
        recipient: id,
        topics: { type: "array", items: id, maxItems: 16 },
        task_id: id,
      },
      required: ["payload"],
      additionalProperties: false,
    },
  },
  claim_task: {
    description: "Claim a task from tasks_you_may_claim; once held, report or fail it",
    schema: { type: "object", properties: { task_id: id }, required: ["task_id"], additionalProperties: false },
  },
  report_task: {
    description: "Complete a task you claimed (in this turn or before) with its result",
    schema: {
      type: "object",
      properties: { task_id: id, result: {} },
      required: ["task_id", "result"],
      additionalProperties: false,
    },
  },
  fail_task: {
    description: "Give up on a task you claimed, saying why",
    schema: {
      type: "object",
      properties: { task_id: id, error: { type: "string", minLength: 1, maxLength: 2000 } },
      required: ["task_id", "error"],
      additionalProperties: false,
    },
  },
  submit_task: {
    description: "Submit a new task for any capable agent",
    schema: {
      type: "object",
      properties: {
        objective: { type: "string", minLength: 1, maxLength: 20_000 },
        inputs: object,
        required_capabilities: { type: "array", items: id, maxItems: 32 },
        pool_id: id,
      },
      required: ["objective"],
      additionalProperties: false,
    },
  },
  join_pool: {
    description: "Join a pool (with its admission token if it needs one)",
    schema: {
      type: "object",
      properties: { pool_id: id, token: { type: "string", maxLength: 1000 } },
      required: ["pool_id"],
      additionalProperties: false,
    },
  },
  leave_pool: {
    description: "Leave a pool",
    schema: { type: "object", properties: { pool_id: id }, required: ["pool_id"], additionalProperties: false },
  },
};

export interface DecisionCollector {
  readonly decisions: Decision[];
  /** Tasks the model may claim, by id. */
  readonly claimable: ReadonlyMap<string, Task>;
  /** Tasks the agent holds (claimed before, or in this turn), by id; updated as the model claims and reports. */
  readonly held: Map<string, Task>;
}

/** The decision tools, writing what the model decides into `into`. */
export function decisionTools(into: DecisionCollector): ToolSet {
  const def = <T>(name: keyof typeof SCHEMAS, make: (args: T) => Decision | string) => {
    const validate = validatorFor(SCHEMAS[name].schema);
    return tool({
      description: SCHEMAS[name].description,
      inputSchema: jsonSchema<T>(SCHEMAS[name].schema, {
        validate: (value) =>
          validate(value)
            ? { success: true, value: value as T }
            : {
                success: false,
                error: new Error(
                  `${validate.errors?.[0]?.instancePath || "arguments"} ${validate.errors?.[0]?.message}`,
                ),
              },
      }),
      execute: async (args: T) => {
        const d = make(args);
        if (typeof d === "string") throw new Error(d);
        into.decisions.push(d);
        return "accepted; it is carried out after your turn";
      },
    });
  };
  type WithTask = { task_id: string };
  return {
    send_message: def<{ payload: Record<string, unknown>; recipient?: string; topics?: string[]; task_id?: string }>(
      "send_message",
      (a) => ({
        type: "SendMessage",
        message: {
          recipient: a.recipient ?? null,
          topics: (a.topics ?? []).map((t) => topic(t)),
          payload: a.payload,
          taskId: a.task_id ?? null,
        },
      }),
    ),
    claim_task: def<WithTask>("claim_task", (a) => {
      const t = into.claimable.get(a.task_id);
      if (!t) return `no task ${a.task_id} among tasks_you_may_claim`;
      into.held.set(t.id, t);
      return { type: "ClaimTask", taskId: t.id };
    }),
    report_task: def<WithTask & { result: unknown }>("report_task", (a) => {
      if (!into.held.delete(a.task_id)) return `you hold no task ${a.task_id}; claim it first`;
      return { type: "ReportTask", taskId: a.task_id, result: a.result ?? null };
    }),
    fail_task: def<WithTask & { error: string }>("fail_task", (a) => {
      if (!into.held.delete(a.task_id)) return `you hold no task ${a.task_id}; claim it first`;
      return { type: "FailTask", taskId: a.task_id, error: a.error };
    }),
    submit_task: def<{
      objective: string;
      inputs?: Record<string, unknown>;
      required_capabilities?: string[];
      pool_id?: string;
    }>("submit_task", (a) => ({
      type: "SubmitTask",
      task: {
        objective: a.objective,
        inputs: a.inputs ?? {},
        requiredCapabilities: a.required_capabilities ?? [],
        poolId: a.pool_id ?? null,
      },
    })),
    join_pool: def<{ pool_id: string; token?: string }>("join_pool", (a) => ({
      type: "JoinPool",
      poolId: a.pool_id,
      ...(a.token !== undefined ? { token: a.token } : {}),
    })),
    leave_pool: def<{ pool_id: string }>("leave_pool", (a) => ({ type: "LeavePool", poolId: a.pool_id })),
  };
}

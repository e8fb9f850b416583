/** The converge library: everything a program embedding converge needs, re-exported from one place. */
export * from "./core/errors.ts";
export { Identity } from "./core/identity.ts";
export { Message, type MessageInit, type Payload } from "./core/message.ts";
export { topic, topicToString, topicsEqual, type Topic, type TopicAttributes } from "./core/topic.ts";
export { encode as msgpackEncode, decode as msgpackDecode } from "./core/codec.ts";
export { newTask, claimTtlMs, isTaskState, TASK_STATES, type Task, type TaskInit, type TaskState } from "./core/task.ts";
export { newPool, type Pool, type PoolInit, type AdmissionSpec, type GovernanceSpec, type GovernanceModel } from "./core/pool.ts";
export { capability, hasAllCapabilities, type Capability } from "./core/capability.ts";
export * from "./core/decisions.ts";
export { Agent, type AgentOptions, type Decisions } from "./core/agent.ts";
export { ToolRegistry, type ToolFn, type ToolEntry } from "./core/tools.ts";
export { DECLINE, type Store, type Decline, type JsonValue } from "./store/store.ts";
export { MemoryStore } from "./store/memory.ts";
export { Logger, logger, configureLogging, type Level } from "./observability/log.ts";

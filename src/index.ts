/** The converge library: everything a program embedding converge needs, re-exported from one place. */
export * from "./core/errors.ts";
export { Identity } from "./core/identity.ts";
export {
  Message,
  InvalidMessageError,
  checkWireIds,
  MAX_MESSAGE_ELEMENTS,
  type MessageInit,
  type Payload,
} from "./core/message.ts";
export { topic, topicToString, topicsEqual, type Topic, type TopicAttributes } from "./core/topic.ts";
export { encode as msgpackEncode, decode as msgpackDecode } from "./core/codec.ts";
export {
  newTask,
  claimTtlMs,
  isTaskState,
  TASK_STATES,
  type Task,
  type TaskInit,
  type TaskState,
} from "./core/task.ts";
export {
  newPool,
  type Pool,
  type PoolInit,
  type AdmissionSpec,
  type GovernanceSpec,
  type GovernanceModel,
} from "./core/pool.ts";
export { capability, hasAllCapabilities, type Capability } from "./core/capability.ts";
export * from "./core/decisions.ts";
export { Agent, type AgentOptions, type Decisions } from "./core/agent.ts";
export { ToolRegistry, type ToolFn, type ToolEntry } from "./core/tools.ts";
export { DECLINE, type Store, type Decline, type JsonValue } from "./store/store.ts";
export { MemoryStore } from "./store/memory.ts";
export { Logger, logger, configureLogging, RateLimitedLog, type Level } from "./observability/log.ts";
export { openStore, isStoreConfigured, STORE_BACKENDS, type StoreBackend, type StoreConfig } from "./store/open.ts";
export { FileStore } from "./store/file.ts";
export { SqliteStore } from "./store/sqlite.ts";
export { RedisStore } from "./store/redis.ts";
export type { Transport, KeyLookup, EndpointResolver, MessageListener } from "./transport/transport.ts";
export { LocalTransport, LocalHub } from "./transport/local.ts";
export { TcpTransport } from "./transport/tcp.ts";
export { WebSocketTransport } from "./transport/websocket.ts";
export { FrameDecoder, encodeFrame, decodeFrame, MAX_FRAME, type FrameDecoderOptions } from "./transport/framing.ts";
export { DEFAULT_LIMITS, type ListenerLimits, type InboundStats } from "./transport/inbound.ts";
export type { TlsOptions } from "./transport/tls.ts";
export { unverifiedReason } from "./transport/verify.ts";
export { IdentityRegistry } from "./network/identity-registry.ts";
export { DiscoveryKeys, type DiscoveryKeysOptions } from "./network/discovery-keys.ts";
export {
  DiscoveryService,
  descriptorFor,
  endpointResolver,
  type AgentDescriptor,
  type DiscoveryQuery,
} from "./network/discovery.ts";
export { AgentNetwork } from "./network/network.ts";
export { PoolManager } from "./coordination/pool-manager.ts";
export { TaskManager, type Lease, type Holder } from "./coordination/task-manager.ts";
export { NegotiationManager } from "./coordination/negotiation.ts";
export { ProposalManager } from "./coordination/consensus.ts";
export { AuctionManager } from "./coordination/bidding.ts";
export { DelegationManager } from "./coordination/delegation.ts";
export { admits } from "./policy/admission.ts";
export { TrustManager } from "./policy/trust.ts";
export { decide as governanceDecide } from "./policy/governance.ts";
export { ActionPolicy, ResourceLimits } from "./policy/safety.ts";
export { AgentRuntime, type RuntimeOptions } from "./runtime/runtime.ts";
export {
  MessageGate,
  isVerified,
  verificationOf,
  type VerifyMode,
  type MessageGateOptions,
  type GateStats,
  type RefusalReason,
} from "./runtime/message-gate.ts";
export { Executor, type DecisionResult, type DecisionGuard, type DecisionHandler } from "./runtime/executor.ts";
export { TaskWorker } from "./runtime/worker.ts";
export { ModuleAgent, type AgentSpec } from "./runtime/module-agent.ts";
export type { TaskContext, MessageContext, Verification } from "./core/agent.ts";
export { Metrics } from "./observability/metrics.ts";
export { ReplayLog, readReplayFile } from "./observability/replay.ts";

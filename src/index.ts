/**
 * The converge library (`import … from "converge"`): everything a program embedding converge needs,
 * re-exported from one place, and nothing that loads a database driver. Those have their own entry
 * points, so a process that never opens Redis never loads ioredis: `converge/sqlite` (SqliteStore),
 * `converge/redis` (RedisStore), `converge/stores` (openStore: the store a configuration names);
 * and so do model-driven agents: `converge/llm` (the AI SDK is loaded only by programs that use it).
 */
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
export { encode as msgpackEncode, decode as msgpackDecode, type Packable } from "./core/codec.ts";
export {
  newTask,
  checkTaskId,
  MAX_TASK_ID,
  claimTtlMs,
  isTaskState,
  TASK_STATES,
  FINAL_STATES,
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
export {
  Agent,
  type AgentOptions,
  type Decisions,
  type TaskContext,
  type MessageContext,
} from "./core/agent.ts";
export { ToolRegistry, type ToolFn, type ToolEntry } from "./core/tools.ts";

// Stores: the contract (what a Store implementation must provide) and the driver-free backends.
export {
  DECLINE,
  ABSENT,
  getMany,
  type Store,
  type Decline,
  type Absent,
  type UpdateOptions,
  type JsonValue,
} from "./store/store.ts";
export type { Clock } from "./store/clock.ts";
// A backend written as a Driver gets the whole contract from the one front; its task queue may be
// native (TaskQueue) or the generic one over the Store contract.
export type { Driver, IndexChange, UpdateStep, Write } from "./store/driver.ts";
export { StoreFront } from "./store/front.ts";
export { GenericTaskQueue } from "./store/generic-queue.ts";
export type {
  Answer,
  Claim,
  ClaimNext,
  Expect,
  Placement,
  TaskQueue,
  Transition,
  TransitionOptions,
  Visibility,
} from "./store/task-queue.ts";
export { MemoryStore } from "./store/memory.ts";
export { FileStore, type FileStoreOptions } from "./store/file.ts";

// Transports: the contract, a base class that implements its delivery rules, and the three transports.
export type { Transport, KeyLookup, EndpointResolver, MessageListener } from "./transport/transport.ts";
export { TransportBase } from "./transport/base.ts";
export { LocalTransport, LocalHub, type LocalTransportOptions } from "./transport/local.ts";
export { TcpTransport, type TcpTransportOptions } from "./transport/tcp.ts";
export { WebSocketTransport, type WebSocketTransportOptions } from "./transport/websocket.ts";
export {
  FrameDecoder,
  FrameError,
  encodeFrame,
  decodeFrame,
  MAX_FRAME,
  type FrameDecoderOptions,
} from "./transport/framing.ts";
export { DEFAULT_LIMITS, type ListenerLimits, type InboundStats } from "./transport/inbound.ts";
export { BufferBudgetError, WsProtocolError } from "./transport/ws-server.ts";
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
export { AgentNetwork, type SendOptions } from "./network/network.ts";

export { PoolManager, type PoolManagerOptions } from "./coordination/pool-manager.ts";
export {
  TaskManager,
  TASKS_CHANNEL,
  type TaskManagerOptions,
  type Lease,
  type Holder,
  type Scope,
  type SubmitResult,
} from "./coordination/task-manager.ts";
export {
  ScheduleManager,
  SCHEDULES_CHANNEL,
  scheduledTaskId,
  MAX_CATCH_UP,
  type Schedule,
  type ScheduleInit,
  type ScheduleManagerOptions,
  type ScheduleTemplate,
  type TickResult,
} from "./coordination/schedules.ts";
export {
  FINISHED_CHANNEL,
  TASK_EVENTS,
  type TaskEvent,
  type TaskListener,
  type WaitOptions,
} from "./coordination/task-events.ts";
export {
  cleanFinished,
  RetentionLoop,
  type RetentionConfig,
  type RetentionRule,
} from "./coordination/retention.ts";
export { parseDuration, formatDuration } from "./core/duration.ts";
export {
  KNOWN_CONSTRAINTS,
  capabilityWarnings,
  constraintWarnings,
  type SubmitWarning,
} from "./coordination/task-warnings.ts";
export {
  NegotiationManager,
  NegotiationError,
  type NegotiationSession,
  type NegotiationState,
  type Offer,
  type OpenNegotiation,
} from "./coordination/negotiation.ts";
export {
  ProposalManager,
  ConsensusError,
  type ConsensusRule,
  type Proposal,
  type CreateProposal,
  type Ballot,
  type Tally,
} from "./coordination/consensus.ts";
export {
  AuctionManager,
  AuctionError,
  type Auction,
  type AuctionOptions,
  type AuctionResult,
  type AuctionType,
  type AuctionView,
  type Bid,
} from "./coordination/bidding.ts";
export {
  DelegationManager,
  DelegationError,
  type DelegationLink,
  type DelegationRecord,
} from "./coordination/delegation.ts";

export { admits, type AdmissionResult } from "./policy/admission.ts";
export { TrustManager, TrustError, type TrustOptions, type TrustRecord, type Outcome } from "./policy/trust.ts";
export {
  decide as governanceDecide,
  type GovernanceDecision,
  type GovernanceVote,
  type DecideOptions,
} from "./policy/governance.ts";
export { ActionPolicy, ResourceLimits, PolicyViolation, type ResourceLimitSpec } from "./policy/safety.ts";

// The runtime, and what a decision handler or guard is given.
export { AgentRuntime, type RuntimeOptions } from "./runtime/runtime.ts";
export {
  Executor,
  DecisionError,
  type AnyDecision,
  type DecisionResult,
  type DecisionGuard,
  type DecisionHandler,
  type ExecutionContext,
} from "./runtime/executor.ts";
export { TaskWorker, type WorkerOptions, type WorkerStats } from "./runtime/worker.ts";
export { ModuleAgent, type AgentSpec } from "./runtime/module-agent.ts";
export {
  MessageGate,
  isVerified,
  verificationOf,
  type VerifyMode,
  type MessageGateOptions,
  type GateStats,
  type RefusalReason,
} from "./runtime/message-gate.ts";
export type { Verification } from "./core/agent.ts";

export { Logger, logger, configureLogging, RateLimitedLog, type Level, type LogSink } from "./observability/log.ts";
export { Metrics, MetricsError } from "./observability/metrics.ts";
export { startSpan, traced, type Span } from "./observability/tracing.ts";
export {
  ReplayLog,
  ReplayError,
  readReplayFile,
  type ReplayEntry,
  type ReplayLogOptions,
} from "./observability/replay.ts";

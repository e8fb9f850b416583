/**
 * The Agent base class: an identity, the capabilities and topics it advertises, and `decide`,
 * which turns what it sees (messages, visible pending tasks) into decisions. Lifecycle hooks are
 * optional. Subclass it, or give an agent module (loaded by cli/agent-module.ts, wrapped by
 * runtime/module-agent.ts) and let converge wrap it.
 */
import type { Decision, CustomDecision } from "./decisions.ts";
import { Identity } from "./identity.ts";
import type { Message, MessageInit } from "./message.ts";
import type { Task } from "./task.ts";
import type { Topic } from "./topic.ts";

export interface AgentOptions {
  identity?: Identity;
  capabilities?: string[];
  topics?: Topic[];
}

export type Decisions = (Decision | CustomDecision)[];

/** What `onTask` gets besides the task: who it is, when to stop, and how to keep its lease. */
export interface TaskContext {
  readonly agentId: string;
  readonly task: Task;
  /**
   * Fired when the lease is lost, the task's `timeout_sec` passes, or the worker shuts down: stop
   * work; the result will not be reported.
   */
  readonly signal: AbortSignal;
  /** Which attempt this is (1 for the first). */
  readonly attempt: number;
  /**
   * The same for every attempt of this task: a result is recorded once, but a handler may run
   * again after a lost lease, so use it to make side effects idempotent.
   */
  readonly idempotencyKey: string;
  /** Unique to this attempt (`<task id>#<attempt>`). */
  readonly attemptKey: string;
  /** Extends the lease now (the runtime also renews at half the lease while the handler runs). */
  renew(): Promise<void>;
  /** Records progress on the task record (visible to `converge tasks get`). */
  progress(value: unknown): Promise<void>;
  /** Signs as this agent and sends. */
  send(message: Message | MessageInit): Promise<void>;
}

/** What the runtime found when it checked an arrived message (runtime/message-gate.ts). */
export interface Verification {
  /** True when the message is signed by the key its sender registered (discovery or an identity registry). */
  readonly verified: boolean;
  /**
   * "verified"; "unknown sender" (nobody registered that sender, so its signature could not be
   * checked; delivered under verify_messages known); "not checked" (verify_messages off).
   */
  readonly status: "verified" | "unknown sender" | "not checked";
  /** Set when the message's timestamp is further than the allowed clock skew from now: timestamp − now (ms). */
  readonly clockSkewMs: number | null;
}

/** What `onMessage` gets besides the message. */
export interface MessageContext {
  readonly agentId: string;
  /** Whether the message verified against its sender's registered key (`verification` says more). */
  readonly verified: boolean;
  readonly verification: Verification;
  /** Sends `payload` back to the message's sender, signed, with the same task id. */
  reply(payload: Record<string, unknown>): Promise<void>;
  send(message: Message | MessageInit): Promise<void>;
}

export class Agent {
  readonly identity: Identity;
  capabilities: string[];
  topics: Topic[];

  constructor(options: AgentOptions = {}) {
    this.identity = options.identity ?? Identity.generate();
    this.capabilities = options.capabilities ?? [];
    this.topics = options.topics ?? [];
  }

  get id(): string {
    return this.identity.fingerprint;
  }

  /** Called with new inbox messages and the pending tasks this agent may claim. */
  decide(_messages: readonly Message[], _tasks: readonly Task[]): Decisions | Promise<Decisions> {
    return [];
  }

  /**
   * Optional: makes the agent a worker. The runtime claims visible tasks for it (up to its
   * concurrency), calls this, and reports the returned value; a thrown error fails the attempt.
   */
  onTask?(task: Task, ctx: TaskContext): unknown | Promise<unknown>;

  /** Optional: called for every inbox message before decide. */
  onMessage?(message: Message, ctx: MessageContext): void | Promise<void>;

  onStart(): void | Promise<void> {}
  onStop(): void | Promise<void> {}
  /** Called on every scheduler wake-up, before decide. */
  onTick(): void | Promise<void> {}
}

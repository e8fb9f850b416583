/**
 * The Agent base class: an identity, the capabilities and topics it advertises, and `decide`,
 * which turns what it sees (messages, visible pending tasks) into decisions. Lifecycle hooks are
 * optional. Subclass it, or give an agent module (see runtime/worker.ts) and let converge wrap it.
 */
import type { Decision, CustomDecision } from "./decisions.ts";
import { Identity } from "./identity.ts";
import type { Message } from "./message.ts";
import type { Task } from "./task.ts";
import type { Topic } from "./topic.ts";

export interface AgentOptions {
  identity?: Identity;
  capabilities?: string[];
  topics?: Topic[];
}

export type Decisions = (Decision | CustomDecision)[];

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

  onStart(): void | Promise<void> {}
  onStop(): void | Promise<void> {}
  /** Called on every scheduler wake-up, before decide. */
  onTick(): void | Promise<void> {}
}

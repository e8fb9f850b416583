/**
 * In-process transport: agents in one process hand each other the (immutable) message objects,
 * with no encoding. Started transports register in a hub, one per process by default; tests
 * create their own hubs so that they never see each other's agents.
 *
 * Routing: a recipient gets the message alone; a message with topics goes to the agents subscribed
 * to any of its topic namespaces, or to every agent when none is; a message with neither goes to
 * every agent. A broadcast never comes back to its sender.
 */
import { TransportError } from "../core/errors.ts";
import type { Message } from "../core/message.ts";
import type { Topic } from "../core/topic.ts";
import { logger } from "../observability/log.ts";
import { TransportBase } from "./base.ts";

export class LocalHub {
  /** The process-wide hub that LocalTransports join unless given another. */
  static readonly default = new LocalHub();
  readonly #agents = new Map<string, LocalTransport>();

  get size(): number {
    return this.#agents.size;
  }

  /** @internal */
  join(t: LocalTransport): void {
    const existing = this.#agents.get(t.agentId);
    if (existing && existing !== t)
      throw new TransportError(`agent ${t.agentId} is already registered in this process's local transport hub`);
    this.#agents.set(t.agentId, t);
  }

  /** @internal */
  leave(t: LocalTransport): void {
    if (this.#agents.get(t.agentId) === t) this.#agents.delete(t.agentId);
  }

  get(agentId: string): LocalTransport | undefined {
    return this.#agents.get(agentId);
  }

  /** Where a message from `from` goes (never back to `from` unless addressed to it). */
  route(message: Message, from: LocalTransport): LocalTransport[] {
    if (message.recipient !== null) {
      const to = this.#agents.get(message.recipient);
      if (!to)
        throw new TransportError(
          `no local agent ${message.recipient} (address local://${message.recipient}) is started in this process`,
        );
      return [to];
    }
    const all = [...this.#agents.values()];
    if (message.topics.length === 0) return all.filter((t) => t !== from);
    const namespaces = message.topics.map((t) => t.namespace);
    const subscribers = all.filter((t) => namespaces.some((ns) => t.isSubscribed(ns)));
    // Nobody subscribes to any of these namespaces: the message is for everyone.
    return (subscribers.length > 0 ? subscribers : all).filter((t) => t !== from);
  }
}

export interface LocalTransportOptions {
  /** The agent this transport belongs to (its fingerprint). */
  agentId: string;
  /** Topic namespaces (or topics, by namespace) this agent subscribes to. */
  subscriptions?: readonly (string | Topic)[];
  /** Defaults to LocalHub.default (one per process). */
  hub?: LocalHub;
}

export class LocalTransport extends TransportBase {
  readonly agentId: string;
  readonly hub: LocalHub;
  protected readonly log = logger("transport.local");
  readonly #subscriptions: Set<string>;
  #started = false;

  constructor(options: LocalTransportOptions) {
    super();
    if (!options.agentId) throw new TransportError("a LocalTransport needs the id of its agent");
    this.agentId = options.agentId;
    this.hub = options.hub ?? LocalHub.default;
    this.#subscriptions = new Set((options.subscriptions ?? []).map((s) => (typeof s === "string" ? s : s.namespace)));
  }

  get address(): string {
    return `local://${this.agentId}`;
  }

  get started(): boolean {
    return this.#started;
  }

  subscribe(namespace: string): void {
    this.#subscriptions.add(namespace);
  }

  unsubscribe(namespace: string): void {
    this.#subscriptions.delete(namespace);
  }

  isSubscribed(namespace: string): boolean {
    return this.#subscriptions.has(namespace);
  }

  async start(): Promise<void> {
    if (this.#started) return;
    this.hub.join(this);
    this.#started = true;
  }

  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    this.hub.leave(this);
    this.endDelivery();
  }

  async send(message: Message): Promise<void> {
    if (!this.#started)
      throw new TransportError(
        `cannot send from ${this.address}: the local transport is not started (call start() first)`,
      );
    for (const to of this.hub.route(message, this)) to.accept(message);
  }

  /** @internal Called by the hub with a message routed here. */
  accept(message: Message): void {
    this.deliver(message);
  }
}

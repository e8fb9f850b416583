/**
 * AgentNetwork: an agent's side of a transport. Everything it sends is signed with the agent's
 * identity first, so receivers can verify the sender against discovery.
 */
import { TransportError } from "../core/errors.ts";
import type { Identity } from "../core/identity.ts";
import { Message, type Payload } from "../core/message.ts";
import type { Topic } from "../core/topic.ts";
import type { KeyLookup, MessageListener, Transport } from "../transport/transport.ts";

export interface SendOptions {
  topics?: readonly Topic[];
  taskId?: string | null;
}

export class AgentNetwork {
  constructor(
    readonly transport: Transport,
    readonly identity: Identity,
  ) {
    if (!identity.canSign)
      throw new TransportError(
        `agent ${identity.fingerprint.slice(0, 12)}'s identity is verify-only; an AgentNetwork needs one that can sign`,
      );
  }

  get id(): string {
    return this.identity.fingerprint;
  }

  start(): Promise<void> {
    return this.transport.start();
  }

  stop(): Promise<void> {
    return this.transport.stop();
  }

  /** Signs `message` as this agent and sends it; resolves to the signed message. */
  async send(message: Message): Promise<Message> {
    const signed = message.sign(this.identity);
    await this.transport.send(signed);
    return signed;
  }

  /** A signed message to one agent. */
  sendTo(recipient: string, payload: Payload, options: SendOptions = {}): Promise<Message> {
    return this.send(new Message({ recipient, payload, topics: options.topics ?? [], taskId: options.taskId ?? null }));
  }

  /** A signed message with no recipient: routed by its topics (or to everyone), never back to us. */
  broadcast(payload: Payload, options: SendOptions = {}): Promise<Message> {
    return this.send(
      new Message({ recipient: null, payload, topics: options.topics ?? [], taskId: options.taskId ?? null }),
    );
  }

  onMessage(listener: MessageListener): () => void {
    return this.transport.onMessage(listener);
  }

  receive(timeoutMs?: number): Promise<Message> {
    return this.transport.receive(timeoutMs);
  }

  receiveVerified(keys: KeyLookup, timeoutMs?: number): Promise<Message> {
    return this.transport.receiveVerified(keys, timeoutMs);
  }
}

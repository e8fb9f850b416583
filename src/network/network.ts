/**
 * How an agent sends: `sendSigned` signs with the agent's identity, then hands the message to the
 * transport, so receivers can verify the sender against discovery. It is the one way to do so:
 * AgentNetwork (an agent's side of a transport, for library users) and AgentRuntime.send use it.
 */
import { TransportError } from "../core/errors.ts";
import type { Identity } from "../core/identity.ts";
import { Message, type MessageInit, type Payload } from "../core/message.ts";
import type { Topic } from "../core/topic.ts";
import type { KeyLookup, MessageListener, Transport } from "../transport/transport.ts";

export interface SendOptions {
  topics?: readonly Topic[];
  taskId?: string | null;
}

/** Signs `message` as `identity` and sends it through `transport`; resolves to the signed message. */
export async function sendSigned(
  transport: Transport,
  identity: Identity,
  message: Message | MessageInit,
): Promise<Message> {
  const signed = (message instanceof Message ? message : new Message(message)).sign(identity);
  await transport.send(signed);
  return signed;
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
  send(message: Message | MessageInit): Promise<Message> {
    return sendSigned(this.transport, this.identity, message);
  }

  /** A signed message to one agent. */
  sendTo(recipient: string, payload: Payload, options: SendOptions = {}): Promise<Message> {
    return this.send({ recipient, payload, topics: options.topics, taskId: options.taskId });
  }

  /** A signed message with no recipient: routed by its topics (or to everyone), never back to us. */
  broadcast(payload: Payload, options: SendOptions = {}): Promise<Message> {
    return this.send({ recipient: null, payload, topics: options.topics, taskId: options.taskId });
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

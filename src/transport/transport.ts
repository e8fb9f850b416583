/**
 * The Transport contract: how an agent's messages leave and arrive. Every transport (local, TCP,
 * WebSocket) keeps the same rules:
 * - `send` resolves once the message is handed on (to the peer agent, or written to the socket);
 *   it rejects with a TransportError naming the address when the peer cannot be reached, and
 *   never drops a message silently.
 * - Arrivals go to `onMessage` listeners when there are any (the runtime's receive loop: it wakes
 *   on arrival, without polling), otherwise they wait in a queue for `receive`.
 */
import type { Identity } from "../core/identity.ts";
import type { Message } from "../core/message.ts";

export type MessageListener = (message: Message) => void;

/** Where a sender's public key is found (an IdentityRegistry, or one backed by discovery). */
export interface KeyLookup {
  get(agentId: string): Identity | Uint8Array | undefined | Promise<Identity | Uint8Array | undefined>;
}

/**
 * Maps an agent id to the endpoint it listens on (e.g. "tcp://127.0.0.1:9000"), or null/undefined
 * when it is unknown. The runtime passes one backed by the discovery service.
 */
export type EndpointResolver = (agentId: string) => string | null | undefined | Promise<string | null | undefined>;

export interface Transport {
  /**
   * e.g. "tcp://127.0.0.1:9000", "ws://127.0.0.1:9000", "local://<agentId>"; null when it does not
   * listen (or before start with port 0).
   */
  readonly address: string | null;
  readonly started: boolean;
  /** Starts listening; throws TransportError when it cannot (e.g. the port is in use). */
  start(): Promise<void>;
  /** Closes the listener and every connection; pending `receive` calls reject. Idempotent. */
  stop(): Promise<void>;
  /** Routes and sends one message; rejects with TransportError naming the address when it cannot. */
  send(message: Message): Promise<void>;
  /** The next arrived message; throws TimeoutError after `timeoutMs` (no timeout when omitted). */
  receive(timeoutMs?: number): Promise<Message>;
  /**
   * Like `receive`, but drops (with a debug log saying why) every message that is unsigned, whose
   * sender is unknown to `keys`, or whose signature does not verify, and keeps waiting.
   */
  receiveVerified(keys: KeyLookup, timeoutMs?: number): Promise<Message>;
  /**
   * Calls `listener` for every arriving message, synchronously on arrival (keep it cheap: push
   * into an inbox and wake someone). While any listener is attached, messages go only to the
   * listeners and `receive` refuses to wait; messages queued before the first listener attached
   * are handed to it at once. Returns the function that detaches it.
   */
  onMessage(listener: MessageListener): () => void;
}

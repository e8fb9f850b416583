/**
 * What a pooled outbound connection keeps whatever carries its bytes (TCP socket: tcp-peer.ts,
 * WebSocket client: ws-peer.ts): frames wait in order until the connection takes them; a send
 * resolves once its frame is handed on and rejects naming the address when it cannot be, so
 * nothing is lost silently; a connection that dies with frames waiting is dialled again once for
 * them; closing gives queued frames a grace period to go out before rejecting the rest.
 */
import { TransportError } from "../core/errors.ts";
import type { TLSOptions } from "bun";
import type { Message } from "../core/message.ts";
import type { Logger } from "../observability/log.ts";
import type { Endpoint } from "./endpoint.ts";
import { Fifo } from "./fifo.ts";

export interface PendingFrame {
  frame: Uint8Array;
  resolve: () => void;
  reject: (err: Error) => void;
}

export interface PeerOptions {
  connectTimeoutMs: number;
  log: Logger;
  /** Frames the peer sends back on this connection (our peers do not, but nothing is ignored). */
  onMessage: (m: Message) => void;
  /** Dial with TLS (Bun.connect's tls options); undefined: plain. */
  tls?: TLSOptions | true | undefined;
}

/** Why a dial failed, for the error naming the address: a refused connection says what to check. */
export function dialFailure(code: string | undefined, message: string): string {
  return code === "ECONNREFUSED" ? "connection refused (is the peer listening?)" : (code ?? message);
}

export abstract class PooledPeer {
  protected readonly queue = new Fifo<PendingFrame>();
  /** Set when a connection dies with frames waiting; cleared when a frame goes out. */
  protected reconnected = false;
  protected closed = false;
  #idle: (() => void)[] = [];

  constructor(
    readonly endpoint: Endpoint,
    protected readonly options: PeerOptions,
  ) {}

  abstract get connected(): boolean;
  /** A connection is open or being dialled, so queued frames may still go out. */
  protected abstract get reachable(): boolean;
  /** Queues (or writes) a frame on a peer that is not closed. */
  protected abstract write(frame: Uint8Array): Promise<void>;
  /** Ends the connection for good (closing `stop`). */
  protected abstract hangUp(): void;

  get pending(): number {
    return this.queue.length;
  }

  send(frame: Uint8Array): Promise<void> {
    if (this.closed)
      return Promise.reject(new TransportError(`cannot send to ${this.endpoint.address}: the transport is stopping`));
    return this.write(frame);
  }

  /**
   * The connection died with frames waiting. The first time, says so and returns true: the caller
   * dials again for them. Dying again before a frame went out means the peer is gone: they are
   * rejected, with `again` saying what happened.
   */
  protected retryOnce(lost: string, again: string): boolean {
    if (this.reconnected) {
      this.rejectAll(
        new TransportError(`cannot send to ${this.endpoint.address}: ${again} again right after reconnecting`),
      );
      return false;
    }
    this.reconnected = true;
    this.options.log.info(
      `connection to ${this.endpoint.address} lost (${lost}); reconnecting once for ${this.pending} waiting message(s)`,
    );
    return true;
  }

  protected rejectAll(err: TransportError): void {
    const waiting = this.queue.clear();
    this.reconnected = false;
    if (waiting.length > 0) this.options.log.debug(err.message, { messages: waiting.length });
    for (const p of waiting) p.reject(err);
    this.notifyIdle();
  }

  /** Wakes a `close` waiting for the queue to empty. */
  protected notifyIdle(): void {
    const idle = this.#idle;
    this.#idle = [];
    for (const f of idle) f();
  }

  /**
   * Stops: waits up to `graceMs` for queued frames to be handed on (so that sends not awaited
   * still go out), rejects whatever is left, then ends the connection.
   */
  async close(graceMs: number): Promise<void> {
    if (this.pending > 0 && this.reachable) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        new Promise<void>((r) => this.#idle.push(r)),
        new Promise<void>((r) => (timer = setTimeout(r, graceMs))),
      ]);
      clearTimeout(timer);
    }
    this.closed = true;
    this.rejectAll(new TransportError(`message to ${this.endpoint.address} not sent: the transport was stopped first`));
    this.hangUp();
  }
}

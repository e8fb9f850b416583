/**
 * One pooled outbound TCP connection to a peer, with its write queue.
 *
 * Bun's `socket.write()` does not buffer: it returns how many bytes the kernel took. Frames wait
 * in a queue; a flush (one microtask after the first send of a tick, so that every frame sent in
 * the same tick goes out in one write) copies up to BATCH bytes of them into one buffer and writes
 * it; what the kernel did not take waits for `drain`. A send resolves when its whole frame has been
 * written, and rejects (naming the address) when the peer cannot be reached, so nothing is lost
 * silently.
 *
 * Over TLS nothing is written before the handshake completed (Bun takes no bytes before it), and
 * a failed handshake rejects the waiting sends with its reason (tls.ts). Under TLS 1.3 a listener
 * refuses a client certificate only after our side of the handshake completed: frames written by
 * then are lost like any written to a connection that dies (send-once.ts confirms instead).
 *
 * A pooled connection that died (peer restarted) is re-established once for the frames waiting;
 * if the new connection cannot be made, or dies before carrying a single frame, they are rejected
 * (peer.ts).
 */
import type { Socket } from "bun";
import { TransportError } from "../core/errors.ts";
import { dial } from "./dial.ts";
import type { Endpoint } from "./endpoint.ts";
import { FrameDecoder } from "./framing.ts";
import { PooledPeer, type PeerOptions } from "./peer.ts";

const BATCH = 256 * 1024;

/** Counters shared by a transport's peers, for tests and metrics. */
export interface TcpStats {
  /** Writes the kernel took only part of (the rest waited for drain). */
  partialWrites: number;
  /** Connections re-established after one died with frames waiting. */
  reconnects: number;
}

export interface TcpPeerOptions extends PeerOptions {
  stats: TcpStats;
}

export class TcpPeer extends PooledPeer {
  #socket: Socket<TcpPeer> | null = null;
  #connecting = false;
  /** Bytes of the head frame already written. */
  #offset = 0;
  #flushScheduled = false;
  /** Bytes queued since the last write attempt. */
  #unflushed = 0;
  /** Waiting for `drain`: the kernel took less than we wrote. */
  #blocked = false;
  readonly #decoder: FrameDecoder;
  readonly #stats: TcpStats;
  /** While a TLS connection is being made: settles when its handshake does. */
  #handshake: PromiseWithResolvers<void> | undefined;
  /** The last socket error, for saying why a connection closed. */
  #lastError: Error | undefined;

  constructor(endpoint: Endpoint, options: TcpPeerOptions) {
    super(endpoint, options);
    this.#decoder = new FrameDecoder(options.onMessage);
    this.#stats = options.stats;
  }

  get connected(): boolean {
    return this.#socket !== null;
  }

  protected get reachable(): boolean {
    return this.#socket !== null || this.#connecting;
  }

  protected write(frame: Uint8Array): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ frame, resolve, reject });
      this.#unflushed += frame.length;
      if (this.#unflushed >= BATCH && this.#socket && !this.#blocked) {
        // A long synchronous burst: write a full batch now, so the peer starts decoding while we
        // are still encoding, instead of everything waiting for the end of the burst.
        this.#pump();
      } else if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        queueMicrotask(this.#flushSoon);
      }
    });
  }

  readonly #flushSoon = (): void => {
    this.#flushScheduled = false;
    this.#pump();
  };

  #pump(): void {
    this.#unflushed = 0;
    if (this.pending === 0) return;
    const socket = this.#socket;
    if (!socket) {
      if (!this.#connecting) void this.#connect();
      return;
    }
    while (!this.#blocked && this.pending > 0) {
      const { buf, frames } = this.#batch();
      const n = socket.write(buf);
      if (n < 0) {
        this.#lost(socket, "the connection was closed");
        return;
      }
      this.#account(n, frames);
      if (n < buf.length) {
        this.#blocked = true;
        this.#stats.partialWrites++;
      }
    }
    if (this.pending === 0) this.notifyIdle();
  }

  /** The head frames (from the written offset), one buffer of at most BATCH bytes unless one frame is larger. */
  #batch(): { buf: Uint8Array; frames: number } {
    const queue = this.queue;
    const first = queue.at(0).frame;
    let size = first.length - this.#offset;
    let frames = 1;
    for (; frames < queue.length; frames++) {
      const next = queue.at(frames).frame.length;
      if (size + next > BATCH) break;
      size += next;
    }
    if (frames === 1) return { buf: this.#offset === 0 ? first : first.subarray(this.#offset), frames };
    const buf = new Uint8Array(size);
    buf.set(this.#offset === 0 ? first : first.subarray(this.#offset), 0);
    let at = first.length - this.#offset;
    for (let i = 1; i < frames; i++) {
      const f = queue.at(i).frame;
      buf.set(f, at);
      at += f.length;
    }
    return { buf, frames };
  }

  /** Resolves the frames that `n` written bytes completed; remembers how far into the next one we got. */
  #account(n: number, frames: number): void {
    let left = n + this.#offset;
    for (let i = 0; i < frames; i++) {
      const p = this.queue.at(0);
      if (left < p.frame.length) {
        this.#offset = left;
        return;
      }
      left -= p.frame.length;
      this.queue.shift();
      this.#offset = 0;
      this.reconnected = false;
      p.resolve();
    }
  }

  async #connect(): Promise<void> {
    this.#connecting = true;
    const { host, port, address } = this.endpoint;
    const tls = this.options.tls;
    this.#lastError = undefined;
    const handshake = tls ? Promise.withResolvers<void>() : undefined;
    this.#handshake = handshake;
    let socket: Socket<TcpPeer>;
    try {
      socket = await dial<TcpPeer>({
        connect: { hostname: host, port, data: this, socket: handlers, ...(tls ? { tls } : {}) },
        handshake: handshake?.promise,
        timeoutMs: this.options.connectTimeoutMs,
        fail: (why, cause) => new TransportError(`cannot reach ${address}: ${why}`, { cause }),
      });
    } catch (err) {
      this.rejectAll(err as TransportError);
      return;
    } finally {
      this.#connecting = false;
      this.#handshake = undefined;
    }
    if (this.closed) {
      socket.end();
      return;
    }
    socket.setNoDelay(true);
    this.#socket = socket;
    this.options.log.debug("connected", { peer: address });
    this.#pump();
  }

  /** @internal TLS handshake handler. */
  onHandshake(ok: boolean, error: Error | null): void {
    if (ok) this.#handshake?.resolve();
    else this.#handshake?.reject(error); // dial.ts says why
  }

  /** @internal drain handler: the kernel has room again. */
  onDrain(): void {
    this.#blocked = false;
    this.#pump();
  }

  /** @internal */
  onData(chunk: Uint8Array): void {
    try {
      this.#decoder.push(chunk);
    } catch (err) {
      this.options.log.warn(`closing connection to ${this.endpoint.address}: ${(err as Error).message}`);
      this.#socket?.end();
    }
  }

  /** @internal The close event that follows says what happens to waiting frames. */
  onError(error: Error): void {
    this.#lastError = error;
    this.options.log.debug(`socket error on ${this.endpoint.address}: ${error.message}`);
  }

  /** @internal close handler. */
  onClose(socket: Socket<TcpPeer>, error?: Error): void {
    // Closed during the TLS handshake: the peer refused it (or does not speak TLS).
    this.#handshake?.reject(error ?? this.#lastError ?? null);
    if (this.#socket !== socket) return;
    const why = error ?? this.#lastError;
    this.#lost(socket, why ? why.message : "the peer closed the connection");
  }

  /** The connection died: frames that were waiting go out on a new connection once, else are rejected. */
  #lost(socket: Socket<TcpPeer>, why: string): void {
    if (this.#socket === socket) this.#socket = null;
    this.#blocked = false;
    this.#offset = 0; // a partly written frame is resent whole on the next connection
    if (this.pending === 0 || this.closed || !this.retryOnce(why, why)) return;
    this.#stats.reconnects++;
    this.#pump();
  }

  protected override rejectAll(err: TransportError): void {
    this.#offset = 0; // a partly written frame is not resumed on another connection
    super.rejectAll(err);
  }

  protected hangUp(): void {
    const s = this.#socket;
    this.#socket = null;
    s?.end();
  }
}

const handlers = {
  binaryType: "uint8array" as const,
  data(socket: Socket<TcpPeer>, chunk: Uint8Array) {
    socket.data.onData(chunk);
  },
  drain(socket: Socket<TcpPeer>) {
    socket.data.onDrain();
  },
  close(socket: Socket<TcpPeer>, error?: Error) {
    socket.data.onClose(socket, error);
  },
  error(socket: Socket<TcpPeer>, error: Error) {
    socket.data.onError(error);
  },
  handshake(socket: Socket<TcpPeer>, ok: boolean, error: Error | null) {
    socket.data.onHandshake(ok, error);
  },
};

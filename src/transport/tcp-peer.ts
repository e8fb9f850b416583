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
 * A pooled connection that died (peer restarted) is re-established once for the frames waiting;
 * if the new connection cannot be made, or dies before carrying a single frame, they are rejected.
 */
import type { Socket } from "bun";
import { TransportError } from "../core/errors.ts";
import type { Logger } from "../observability/log.ts";
import type { Endpoint } from "./endpoint.ts";
import { FrameDecoder } from "./framing.ts";
import type { Message } from "../core/message.ts";

const BATCH = 256 * 1024;

interface Pending {
  frame: Uint8Array;
  resolve: () => void;
  reject: (err: Error) => void;
}

/** Counters shared by a transport's peers, for tests and metrics. */
export interface TcpStats {
  /** Writes the kernel took only part of (the rest waited for drain). */
  partialWrites: number;
  /** Connections re-established after one died with frames waiting. */
  reconnects: number;
}

export interface PeerOptions {
  stats: TcpStats;
  connectTimeoutMs: number;
  log: Logger;
  /** Frames the peer sends back on this connection (our peers do not, but nothing is ignored). */
  onMessage: (m: Message) => void;
}

export class TcpPeer {
  #socket: Socket<TcpPeer> | null = null;
  #connecting = false;
  #queue: Pending[] = [];
  #head = 0;
  /** Bytes of the head frame already written. */
  #offset = 0;
  #flushScheduled = false;
  /** Bytes queued since the last write attempt. */
  #unflushed = 0;
  /** Waiting for `drain`: the kernel took less than we wrote. */
  #blocked = false;
  /** Set when a connection dies with frames waiting; cleared when a frame completes. */
  #reconnected = false;
  #closed = false;
  #idle: (() => void)[] = [];
  readonly #decoder: FrameDecoder;

  constructor(readonly endpoint: Endpoint, private readonly options: PeerOptions) {
    this.#decoder = new FrameDecoder(options.onMessage);
  }

  get pending(): number {
    return this.#queue.length - this.#head;
  }

  get connected(): boolean {
    return this.#socket !== null;
  }

  send(frame: Uint8Array): Promise<void> {
    if (this.#closed) return Promise.reject(new TransportError(`cannot send to ${this.endpoint.address}: the transport is stopping`));
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ frame, resolve, reject });
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
        this.options.stats.partialWrites++;
      }
    }
    if (this.pending === 0) this.#notifyIdle();
  }

  /** The head frames (from the written offset), one buffer of at most BATCH bytes unless one frame is larger. */
  #batch(): { buf: Uint8Array; frames: number } {
    const first = this.#queue[this.#head]!.frame;
    let size = first.length - this.#offset;
    let frames = 1;
    while (this.#head + frames < this.#queue.length && size + this.#queue[this.#head + frames]!.frame.length <= BATCH) {
      size += this.#queue[this.#head + frames]!.frame.length;
      frames++;
    }
    if (frames === 1) return { buf: this.#offset === 0 ? first : first.subarray(this.#offset), frames };
    const buf = new Uint8Array(size);
    buf.set(this.#offset === 0 ? first : first.subarray(this.#offset), 0);
    let at = first.length - this.#offset;
    for (let i = 1; i < frames; i++) {
      const f = this.#queue[this.#head + i]!.frame;
      buf.set(f, at);
      at += f.length;
    }
    return { buf, frames };
  }

  /** Resolves the frames that `n` written bytes completed; remembers how far into the next one we got. */
  #account(n: number, frames: number): void {
    let left = n + this.#offset;
    for (let i = 0; i < frames; i++) {
      const p = this.#queue[this.#head]!;
      if (left < p.frame.length) {
        this.#offset = left;
        return;
      }
      left -= p.frame.length;
      this.#queue[this.#head++] = undefined as unknown as Pending; // let it be collected
      this.#offset = 0;
      this.#reconnected = false;
      p.resolve();
    }
    this.#compact();
  }

  #compact(): void {
    if (this.#head === this.#queue.length) {
      this.#queue = [];
      this.#head = 0;
    } else if (this.#head > 4096 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
  }

  async #connect(): Promise<void> {
    this.#connecting = true;
    const { host, port, address } = this.endpoint;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const connecting = Bun.connect<TcpPeer>({ hostname: host, port, data: this, socket: handlers });
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no connection after ${this.options.connectTimeoutMs} ms`)), this.options.connectTimeoutMs);
    });
    let socket: Socket<TcpPeer>;
    try {
      socket = await Promise.race([connecting, timeout]);
    } catch (err) {
      // A connection that completes after the timeout is closed rather than leaked.
      connecting.then((late) => late.end(), () => {});
      const code = (err as { code?: string }).code;
      const why = code === "ECONNREFUSED" ? "connection refused (is the peer listening?)" : code ?? (err as Error).message;
      this.#rejectAll(new TransportError(`cannot reach ${address}: ${why}`, { cause: err }));
      return;
    } finally {
      clearTimeout(timer);
      this.#connecting = false;
    }
    if (this.#closed) {
      socket.end();
      return;
    }
    socket.setNoDelay(true);
    this.#socket = socket;
    this.options.log.debug("connected", { peer: address });
    this.#pump();
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
    this.options.log.debug(`socket error on ${this.endpoint.address}: ${error.message}`);
  }

  /** @internal close handler. */
  onClose(socket: Socket<TcpPeer>, error?: Error): void {
    if (this.#socket !== socket) return;
    this.#lost(socket, error ? error.message : "the peer closed the connection");
  }

  /** The connection died: frames that were waiting go out on a new connection once, else are rejected. */
  #lost(socket: Socket<TcpPeer>, why: string): void {
    if (this.#socket === socket) this.#socket = null;
    this.#blocked = false;
    this.#offset = 0; // a partly written frame is resent whole on the next connection
    if (this.pending === 0 || this.#closed) return;
    if (this.#reconnected) {
      this.#rejectAll(new TransportError(`cannot send to ${this.endpoint.address}: ${why} again right after reconnecting`));
      return;
    }
    this.#reconnected = true;
    this.options.stats.reconnects++;
    this.options.log.info(`connection to ${this.endpoint.address} lost (${why}); reconnecting once for ${this.pending} waiting message(s)`);
    this.#pump();
  }

  #rejectAll(err: TransportError): void {
    const waiting = this.#queue.slice(this.#head);
    this.#queue = [];
    this.#head = 0;
    this.#offset = 0;
    this.#reconnected = false;
    if (waiting.length > 0) this.options.log.debug(err.message, { messages: waiting.length });
    for (const p of waiting) p.reject(err);
    this.#notifyIdle();
  }

  #notifyIdle(): void {
    const idle = this.#idle;
    this.#idle = [];
    for (const f of idle) f();
  }

  /**
   * Stops: waits up to `graceMs` for queued frames to be written (so that sends not awaited still
   * go out), rejects whatever is left, then ends the connection.
   */
  async close(graceMs: number): Promise<void> {
    if (this.pending > 0 && (this.#socket || this.#connecting)) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([new Promise<void>((r) => this.#idle.push(r)), new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
      clearTimeout(timer);
    }
    this.#closed = true;
    this.#rejectAll(new TransportError(`message to ${this.endpoint.address} not sent: the transport was stopped first`));
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
};

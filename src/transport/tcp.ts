/**
 * TCP transport on Bun.listen / Bun.connect, with the Python original's frames (framing.ts).
 *
 * Connections are one-way: this transport receives on the connections peers open to its listener
 * and sends on its own pooled connections (one per peer address, tcp-peer.ts), so the order of
 * messages from one sender to one receiver is kept. A connection that breaks the framing rules
 * (oversized frame, zero length, garbage, undecodable body) is closed and logged at warn; the
 * listener keeps serving everyone else.
 */
import type { Socket, TCPSocketListener } from "bun";
import { TransportError } from "../core/errors.ts";
import type { Message } from "../core/message.ts";
import { logger } from "../observability/log.ts";
import { TransportBase } from "./base.ts";
import { formatAddress, normaliseHost, routeOf, topicRoute, type Endpoint } from "./endpoint.ts";
import { FrameDecoder, MAX_FRAME, encodeFrame } from "./framing.ts";
import { TcpPeer, type TcpStats } from "./tcp-peer.ts";
import type { EndpointResolver } from "./transport.ts";

export const TCP_TOPIC = "transport.tcp";

export interface TcpTransportOptions {
  /** Interface to listen on; "localhost" means 127.0.0.1. Default 127.0.0.1. */
  host?: string;
  /** Port to listen on; 0 (the default) picks a free one, readable from `address` after start. */
  port?: number;
  /** False for a transport that only sends (its address is then null). Default true. */
  listen?: boolean;
  /** Recipient id → "tcp://host:port", for messages without a transport.tcp topic. */
  resolve?: EndpointResolver;
  /** Give up dialing a peer after this long. Default 5000 ms. */
  connectTimeoutMs?: number;
  /** On stop, how long queued frames may take to go out before they are rejected. Default 1000 ms. */
  stopGraceMs?: number;
  /** Largest accepted frame body. Default MAX_FRAME (10 MiB). */
  maxFrame?: number;
}

interface Inbound {
  decoder: FrameDecoder;
  remote: string;
}

export class TcpTransport extends TransportBase {
  protected readonly log = logger("transport.tcp");
  readonly host: string;
  readonly #port: number;
  readonly #listen: boolean;
  readonly #resolve: EndpointResolver | undefined;
  readonly #connectTimeoutMs: number;
  readonly #stopGraceMs: number;
  readonly #maxFrame: number;
  #listener: TCPSocketListener<Inbound> | null = null;
  #lastPort: number | undefined;
  readonly #inbound = new Set<Socket<Inbound>>();
  readonly #peers = new Map<string, TcpPeer>();
  #started = false;
  /** Counters for tests and metrics; `closedBadFrames` counts inbound connections closed for breaking the framing rules. */
  readonly stats: TcpStats & { closedBadFrames: number } = { partialWrites: 0, reconnects: 0, closedBadFrames: 0 };

  constructor(options: TcpTransportOptions = {}) {
    super();
    this.host = normaliseHost(options.host ?? "127.0.0.1");
    this.#port = options.port ?? 0;
    if (!Number.isInteger(this.#port) || this.#port < 0 || this.#port > 65535) throw new TransportError(`invalid TCP port ${options.port} (expected 0-65535)`);
    this.#listen = options.listen ?? true;
    this.#resolve = options.resolve;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 5000;
    this.#stopGraceMs = options.stopGraceMs ?? 1000;
    this.#maxFrame = options.maxFrame ?? MAX_FRAME;
  }

  get started(): boolean {
    return this.#started;
  }

  /** The port listened on (kept after stop, for messages), or the configured one before start. */
  get port(): number {
    return this.#listener?.port ?? this.#lastPort ?? this.#port;
  }

  get address(): string | null {
    if (!this.#listen || this.port === 0) return null;
    return formatAddress("tcp", this.host, this.port);
  }

  /** A `transport.tcp` topic attribute set pointing at this transport, for replies. */
  get route(): { host: string; port: number } | null {
    return this.#listener ? { host: this.host, port: this.port } : null;
  }

  async start(): Promise<void> {
    if (this.#started) return;
    if (this.#listen) this.#listener = this.#bind();
    this.#started = true;
    if (this.#listener) this.log.debug("listening", { address: this.address });
  }

  #bind(): TCPSocketListener<Inbound> {
    try {
      return Bun.listen<Inbound>({
        hostname: this.host,
        port: this.#port,
        socket: {
          binaryType: "uint8array",
          open: (s) => this.#accept(s),
          data: (s, chunk) => this.#received(s, chunk as Uint8Array),
          close: (s) => this.#closed(s),
          error: (s, err) => this.log.debug(`inbound socket error from ${s.data?.remote}: ${err.message}`),
        },
      });
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === "EADDRINUSE") throw new TransportError(`port ${this.#port} on ${this.host} is already in use`, { cause: err });
      if (code === "EADDRNOTAVAIL") throw new TransportError(`cannot listen on ${this.host}: no such local address`, { cause: err });
      if (code === "EACCES") throw new TransportError(`not allowed to listen on port ${this.#port} on ${this.host}`, { cause: err });
      throw new TransportError(`cannot listen on ${formatAddress("tcp", this.host, this.#port)}: ${(err as Error).message}`, { cause: err });
    }
  }

  #accept(s: Socket<Inbound>): void {
    s.data = { decoder: new FrameDecoder((m) => this.deliver(m), this.#maxFrame), remote: `${s.remoteAddress}:${s.remotePort}` };
    this.#inbound.add(s);
  }

  #received(s: Socket<Inbound>, chunk: Uint8Array): void {
    try {
      s.data.decoder.push(chunk);
    } catch (err) {
      this.stats.closedBadFrames++;
      this.log.warn(`closed the connection from ${s.data.remote}: ${(err as Error).message}`, { listener: this.address });
      this.#inbound.delete(s);
      s.terminate();
    }
  }

  #closed(s: Socket<Inbound>): void {
    if (!this.#inbound.delete(s) || !this.#started) return; // closed by us (bad frame or stop)
    const left = s.data?.decoder.buffered ?? 0;
    if (left > 0) this.log.warn(`the connection from ${s.data.remote} closed in the middle of a frame; ${left} bytes discarded`, { listener: this.address });
  }

  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    this.#lastPort = this.#listener?.port;
    this.#listener?.stop(true);
    this.#listener = null;
    for (const s of this.#inbound) s.terminate();
    this.#inbound.clear();
    const peers = [...this.#peers.values()];
    this.#peers.clear();
    await Promise.all(peers.map((p) => p.close(this.#stopGraceMs)));
    this.endDelivery();
  }

  // Not async: the common path (a transport topic) stays synchronous up to the socket write, with
  // one promise per message; only recipient resolution waits.
  send(message: Message): Promise<void> {
    if (!this.#started) return Promise.reject(new TransportError(`cannot send from ${this.describe()}: the TCP transport is not started (call start() first)`));
    const to = topicRoute(message, [TCP_TOPIC], "tcp");
    if (to) return this.#sendTo(to, message);
    return routeOf(message, { namespaces: [TCP_TOPIC], schemes: ["tcp"], resolve: this.#resolve }).then((ep) => this.#sendTo(ep, message));
  }

  #sendTo(to: Endpoint, message: Message): Promise<void> {
    let frame: Uint8Array;
    try {
      frame = encodeFrame(message);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#peer(to).send(frame);
  }

  /** Sends already framed bytes to an endpoint (benchmarks and relays that frame once). */
  sendFrame(to: Endpoint, frame: Uint8Array): Promise<void> {
    if (!this.#started) return Promise.reject(new TransportError(`cannot send from ${this.describe()}: the TCP transport is not started`));
    return this.#peer(to).send(frame);
  }

  #peer(to: Endpoint): TcpPeer {
    let peer = this.#peers.get(to.address);
    if (!peer) {
      peer = new TcpPeer(to, { stats: this.stats, connectTimeoutMs: this.#connectTimeoutMs, log: this.log, onMessage: (m) => this.deliver(m) });
      this.#peers.set(to.address, peer);
    }
    return peer;
  }

  /** Pooled outbound connections that are currently open (for tests and health). */
  get outboundConnections(): number {
    let n = 0;
    for (const p of this.#peers.values()) if (p.connected) n++;
    return n;
  }

  /** Open inbound connections (for tests and health). */
  get inboundConnections(): number {
    return this.#inbound.size;
  }
}

/**
 * What the TCP and WebSocket transports share: each listens on a host and port for peers to dial
 * in, and sends on pooled outbound connections of its own, one per peer address (peer.ts). This
 * holds their options, the started/port/address state, the listener's socket (admitted against the
 * limits of inbound.ts: listenSockets), the pool, routing (a transport topic, else the recipient's
 * endpoint through the resolver: endpoint.ts) and the stop sequence; a concrete transport brings
 * what it does with an accepted socket and its kind of pooled connection.
 */
import type { Socket, TCPSocketListener } from "bun";
import { TransportError } from "../core/errors.ts";
import type { Message } from "../core/message.ts";
import { printable } from "../core/text.ts";
import type { Logger } from "../observability/log.ts";
import { TransportBase } from "./base.ts";
import { formatAddress, normaliseHost, routeOf, topicRoute, type Endpoint } from "./endpoint.ts";
import { MAX_FRAME, encodeFrame } from "./framing.ts";
import { type Inbound, InboundGuard, type ListenerLimits } from "./inbound.ts";
import type { PeerOptions, PooledPeer } from "./peer.ts";
import { dialTls, listenHandshakeFailure, listenerTls, type TlsOptions } from "./tls.ts";
import type { EndpointResolver } from "./transport.ts";

export interface NetworkTransportOptions {
  /** Interface to listen on; "localhost" means 127.0.0.1. Default 127.0.0.1. */
  host?: string;
  /** Port to listen on; 0 (the default) picks a free one, readable from `address` after start. */
  port?: number;
  /** False for a transport that only sends (its address is then null). Default true. */
  listen?: boolean;
  /** Recipient id → its endpoint ("tcp://host:port", "ws://host:port"), for messages without a transport topic. */
  resolve?: EndpointResolver;
  /** Give up dialing a peer after this long. Default 5000 ms. */
  connectTimeoutMs?: number;
  /** On stop, how long queued frames may take to go out before they are rejected. Default 1000 ms. */
  stopGraceMs?: number;
  /** Largest accepted frame body. Default MAX_FRAME (10 MiB). */
  maxFrame?: number;
  /** What peers dialling in may hold, and for how long (inbound.ts); each has a safe default. */
  limits?: ListenerLimits;
  /**
   * TLS, as the Python original's ssl_context. With cert and key the listener speaks TLS (tls://,
   * wss://), and so do connections routed by a transport topic; a transport that does not listen
   * uses TLS for those whenever `tls` is given. Connections to an endpoint from the resolver follow
   * its scheme (tcp:// plain, tls:// TLS). Peers are verified against `ca` (default: the system's).
   */
  tls?: TlsOptions;
}

/** How a concrete transport is told apart: in addresses, routing topics and error messages. */
export interface NetworkKind {
  /** The endpoint scheme: "tcp", "ws". */
  scheme: string;
  /** The endpoint scheme with TLS: "tls", "wss". */
  tlsScheme: string;
  /** For error messages: "TCP", "WebSocket". */
  name: string;
  /** Topic namespaces whose host and port attributes route a message to this kind of transport. */
  topics: readonly string[];
  log: Logger;
}

/** A bound listener, as Bun.listen returns it. */
export interface Listener {
  readonly port: number | undefined;
}

/** What a transport does with the sockets its listener accepts (listenSockets). */
export interface InboundHandlers<C extends Inbound> {
  /** The connection of a socket just admitted; `now` is performance.now() when it was accepted. */
  accept(s: Socket<C>, remote: string, now: number): C;
  /** The TLS handshake of an accepted connection succeeded (a failed one is rejected by listenSockets). */
  handshake?(c: C): void;
  data(s: Socket<C>, chunk: Uint8Array): void;
  drain?(s: Socket<C>): void;
  close(s: Socket<C>): void;
}

export abstract class NetworkTransport<L extends Listener> extends TransportBase {
  readonly host: string;
  protected readonly log: Logger;
  protected readonly maxFrame: number;
  /** Limits and counters of the connections peers open to this transport's listener. */
  readonly inbound: InboundGuard;
  protected readonly tls: TlsOptions | undefined;
  /** The listener speaks TLS. */
  protected readonly listensTls: boolean;
  readonly #tlsScheme: string;
  readonly #scheme: string;
  readonly #name: string;
  readonly #topics: readonly string[];
  readonly #port: number;
  readonly #listen: boolean;
  readonly #connectTimeoutMs: number;
  readonly #stopGraceMs: number;
  readonly #routing: Parameters<typeof routeOf>[1];
  readonly #peers = new Map<string, PooledPeer>();
  #listener: L | null = null;
  #lastPort: number | undefined;
  #started = false;

  constructor(kind: NetworkKind, options: NetworkTransportOptions) {
    super();
    this.log = kind.log;
    this.tls = options.tls;
    this.#tlsScheme = kind.tlsScheme;
    const listens = options.listen ?? true;
    const tlsOn = !!options.tls && (!listens || !!(options.tls.cert && options.tls.key));
    this.#scheme = tlsOn ? kind.tlsScheme : kind.scheme;
    this.listensTls = tlsOn && listens;
    this.#name = kind.name;
    this.#topics = kind.topics;
    this.host = normaliseHost(options.host ?? "127.0.0.1");
    this.#port = options.port ?? 0;
    if (!Number.isInteger(this.#port) || this.#port < 0 || this.#port > 65535)
      throw new TransportError(`invalid ${kind.name} port ${options.port} (expected 0-65535)`);
    this.#listen = listens;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 5000;
    this.#stopGraceMs = options.stopGraceMs ?? 1000;
    this.maxFrame = options.maxFrame ?? MAX_FRAME;
    const schemes = tlsOn ? [kind.tlsScheme, kind.scheme] : [kind.scheme, kind.tlsScheme];
    this.#routing = { namespaces: kind.topics, schemes, resolve: options.resolve };
    try {
      const t = options.tls;
      if (listens && t && (t.cert || t.key || t.requireClientCert)) listenerTls(t);
      this.inbound = new InboundGuard(options.limits, this.log);
    } catch (err) {
      throw new TransportError(`invalid ${kind.name} transport options: ${(err as Error).message}`, { cause: err });
    }
  }

  /** The endpoint scheme this transport listens with and routes transport topics to: "tcp", "tls", "ws", "wss". */
  get scheme(): string {
    return this.#scheme;
  }

  /** Binds `port` on `host` (at once: Bun binds synchronously); what it throws goes through `listenFailed`. */
  protected abstract listen(port: number): L;
  /** Closes the listener and the connections it accepted. */
  protected abstract unlisten(listener: L): void | Promise<void>;
  /** The pooled connection for `to`; it dials on its first send. */
  protected abstract newPeer(to: Endpoint, options: PeerOptions): PooledPeer;

  /** Open inbound connections (for tests and health). */
  get inboundConnections(): number {
    return this.inbound.size;
  }

  /**
   * A Bun.listen listener on `host` (TLS when this transport listens with it) whose sockets are held
   * to the listener's limits: each is admitted or terminated at once, and an admitted one carries
   * the connection `on.accept` makes for it. A failed TLS handshake closes the connection here, the
   * same way for every transport (counted as a TLS failure).
   */
  protected listenSockets<C extends Inbound>(port: number, on: InboundHandlers<C>): TCPSocketListener<C> {
    const tls = this.listensTls ? listenerTls(this.tls!) : undefined;
    return Bun.listen<C>({
      hostname: this.host,
      port,
      ...(tls ? { tls } : {}),
      socket: {
        binaryType: "uint8array",
        open: (s) => {
          const remote = `${s.remoteAddress}:${s.remotePort}`;
          if (!this.started || !this.inbound.admit(remote, this.address)) {
            s.terminate();
            return;
          }
          s.data = on.accept(s, remote, performance.now());
          this.inbound.add(s.data);
        },
        handshake: (s, ok, err) => this.#handshake(s.data, ok, err, on),
        data: (s, chunk) => on.data(s, chunk as Uint8Array),
        ...(on.drain ? { drain: (s: Socket<C>) => on.drain!(s) } : {}),
        close: (s) => on.close(s),
        error: (s, err) => this.log.debug(`inbound socket error from ${s.data?.remote}: ${printable(err.message)}`),
      },
    });
  }

  #handshake<C extends Inbound>(c: C | undefined, ok: boolean, err: Error | null, on: InboundHandlers<C>): void {
    if (!c) return; // not admitted: already terminated
    const why = listenHandshakeFailure(ok, err as { code?: string } | null, !!this.tls?.requireClientCert);
    if (why === null) on.handshake?.(c);
    else this.inbound.reject(c, "tlsFailures", why, this.address);
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
    return formatAddress(this.#scheme, this.host, this.port);
  }

  protected get listening(): boolean {
    return this.#listener !== null;
  }

  async start(): Promise<void> {
    if (this.#started) return;
    if (this.#listen) this.#listener = this.#bind();
    this.inbound.address = this.address;
    this.#started = true;
    if (this.#listener) this.log.debug("listening", { address: this.address });
  }

  #bind(): L {
    try {
      return this.listen(this.#port);
    } catch (err) {
      throw this.listenFailed(err, this.#port);
    }
  }

  /** Why binding failed: a port in use says so plainly; otherwise Bun's own words, with the address. */
  protected listenFailed(err: unknown, port: number): TransportError {
    if ((err as { code?: string }).code === "EADDRINUSE")
      return new TransportError(`port ${port} on ${this.host} is already in use`, { cause: err });
    return new TransportError(
      `cannot listen on ${formatAddress(this.#scheme, this.host, port)}: ${(err as Error).message}`,
      { cause: err },
    );
  }

  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    await this.shutdown();
    this.endDelivery();
  }

  /**
   * Closes the listener, then gives the pool `stopGraceMs` to write what is queued. Both begin in
   * the same tick, with no await between (as the TCP transport always has), so the pool sees the
   * state `stop` was called in: a connection not yet dialling is not dialled for a stop.
   */
  protected async shutdown(): Promise<void> {
    await Promise.all([this.closeListener(), this.closePool()]);
  }

  protected async closeListener(): Promise<void> {
    const listener = this.#listener;
    if (!listener) return;
    this.#lastPort = listener.port;
    this.#listener = null;
    await this.unlisten(listener);
  }

  protected async closePool(): Promise<void> {
    const peers = [...this.#peers.values()];
    this.#peers.clear();
    await Promise.all(peers.map((p) => p.close(this.#stopGraceMs)));
  }

  // Not async: the common path (a transport topic) stays synchronous up to the write, with one
  // promise per message; only recipient resolution waits.
  send(message: Message): Promise<void> {
    if (!this.#started)
      return Promise.reject(
        new TransportError(
          `cannot send from ${this.describe()}: the ${this.#name} transport is not started (call start() first)`,
        ),
      );
    const to = topicRoute(message, this.#topics, this.#scheme);
    if (to) return this.#sendTo(to, message);
    return routeOf(message, this.#routing).then((ep) => this.#sendTo(ep, message));
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
    if (!this.#started)
      return Promise.reject(
        new TransportError(`cannot send from ${this.describe()}: the ${this.#name} transport is not started`),
      );
    return this.#peer(to).send(frame);
  }

  #peer(to: Endpoint): PooledPeer {
    let peer = this.#peers.get(to.address);
    if (!peer) {
      peer = this.newPeer(to, {
        connectTimeoutMs: this.#connectTimeoutMs,
        log: this.log,
        onMessage: (m) => this.deliver(m),
        tls: to.scheme === this.#tlsScheme ? dialTls(this.tls) : undefined,
      });
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
}

/**
 * WebSocket transport: Bun.serve listens, the WebSocket client dials. Each message is one binary
 * WebSocket message holding exactly the TCP frame (length prefix + wire map), so a relay can pass
 * frames between the two transports unchanged. Routing and error rules are the TCP transport's:
 * a `transport.websocket` (or `transport.ws`) topic with host and port, else the recipient's
 * endpoint ("ws://host:port") through the resolver.
 */
import type { Server, ServerWebSocket } from "bun";
import { TransportError } from "../core/errors.ts";
import type { Message } from "../core/message.ts";
import { logger } from "../observability/log.ts";
import { TransportBase } from "./base.ts";
import { formatAddress, normaliseHost, routeOf, topicRoute, type Endpoint } from "./endpoint.ts";
import { MAX_FRAME, decodeFrame, encodeFrame } from "./framing.ts";
import type { EndpointResolver } from "./transport.ts";
import { WsPeer } from "./ws-peer.ts";

export const WS_TOPICS = ["transport.websocket", "transport.ws"] as const;

export interface WebSocketTransportOptions {
  /** Interface to listen on; "localhost" means 127.0.0.1. Default 127.0.0.1. */
  host?: string;
  /** 0 (the default) picks a free port, readable from `address` after start. */
  port?: number;
  /** False for a transport that only sends (its address is then null). Default true. */
  listen?: boolean;
  /** Recipient id → "ws://host:port", for messages without a transport.websocket topic. */
  resolve?: EndpointResolver;
  connectTimeoutMs?: number;
  stopGraceMs?: number;
  maxFrame?: number;
}

interface Conn {
  remote: string;
}

export class WebSocketTransport extends TransportBase {
  protected readonly log = logger("transport.websocket");
  readonly host: string;
  readonly #port: number;
  readonly #listen: boolean;
  readonly #resolve: EndpointResolver | undefined;
  readonly #connectTimeoutMs: number;
  readonly #stopGraceMs: number;
  readonly #maxFrame: number;
  #server: Server<Conn> | null = null;
  #lastPort: number | undefined;
  readonly #peers = new Map<string, WsPeer>();
  #started = false;

  constructor(options: WebSocketTransportOptions = {}) {
    super();
    this.host = normaliseHost(options.host ?? "127.0.0.1");
    this.#port = options.port ?? 0;
    if (!Number.isInteger(this.#port) || this.#port < 0 || this.#port > 65535) throw new TransportError(`invalid WebSocket port ${options.port} (expected 0-65535)`);
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
    return this.#server?.port ?? this.#lastPort ?? this.#port;
  }

  get address(): string | null {
    if (!this.#listen || this.port === 0) return null;
    return formatAddress("ws", this.host, this.port);
  }

  async start(): Promise<void> {
    if (this.#started) return;
    if (this.#listen) this.#server = this.#serve();
    this.#started = true;
  }

  #serve(): Server<Conn> {
    try {
      return Bun.serve<Conn>({
        hostname: this.host,
        port: this.#port,
        fetch: (req, server) => {
          if (server.upgrade(req, { data: { remote: `${server.requestIP(req)?.address ?? "?"}:${server.requestIP(req)?.port ?? "?"}` } })) return undefined;
          return new Response("converge WebSocket transport: connect with a WebSocket client\n", { status: 426, headers: { upgrade: "websocket" } });
        },
        websocket: {
          // The frame's 4-byte prefix rides inside the message; anything larger closes with 1009.
          maxPayloadLength: this.#maxFrame + 4,
          message: (ws, data) => this.#received(ws, data),
          close: (ws, code, reason) => {
            // uWebSockets reports an oversized message as 1006 "Received too big message" on our side (the client sees 1009).
            if (code === 1009 || /too big/i.test(reason)) this.log.warn(`closed the connection from ${ws.data.remote}: a message exceeded the ${this.#maxFrame} byte frame limit`, { listener: this.address });
            else this.log.debug("connection closed", { remote: ws.data.remote, code, reason });
          },
        },
      });
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === "EADDRINUSE") throw new TransportError(`port ${this.#port} on ${this.host} is already in use`, { cause: err });
      throw new TransportError(`cannot listen on ${formatAddress("ws", this.host, this.#port)}: ${(err as Error).message}`, { cause: err });
    }
  }

  #received(ws: ServerWebSocket<Conn>, data: string | Uint8Array): void {
    if (typeof data === "string") {
      this.log.warn(`closed the connection from ${ws.data.remote}: it sent a text message (converge frames are binary)`, { listener: this.address });
      ws.close(1003, "binary frames only");
      return;
    }
    let message: Message;
    try {
      message = decodeFrame(data, this.#maxFrame);
    } catch (err) {
      this.log.warn(`closed the connection from ${ws.data.remote}: ${(err as Error).message}`, { listener: this.address });
      ws.close(1007, "bad frame");
      return;
    }
    this.deliver(message);
  }

  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    const peers = [...this.#peers.values()];
    this.#peers.clear();
    await Promise.all(peers.map((p) => p.close(this.#stopGraceMs)));
    this.#lastPort = this.#server?.port;
    await this.#server?.stop(true);
    this.#server = null;
    this.endDelivery();
  }

  // Not async: the common path (a transport topic) stays synchronous, one promise per message.
  send(message: Message): Promise<void> {
    if (!this.#started) return Promise.reject(new TransportError(`cannot send from ${this.describe()}: the WebSocket transport is not started (call start() first)`));
    const to = topicRoute(message, WS_TOPICS, "ws");
    if (to) return this.#sendTo(to, message);
    return routeOf(message, { namespaces: WS_TOPICS, schemes: ["ws"], resolve: this.#resolve }).then((ep) => this.#sendTo(ep, message));
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

  /** Pooled outbound connections that are currently open (for tests and health). */
  get outboundConnections(): number {
    let n = 0;
    for (const p of this.#peers.values()) if (p.connected) n++;
    return n;
  }

  /** Sends already framed bytes to an endpoint. */
  sendFrame(to: Endpoint, frame: Uint8Array): Promise<void> {
    if (!this.#started) return Promise.reject(new TransportError(`cannot send from ${this.describe()}: the WebSocket transport is not started`));
    return this.#peer(to).send(frame);
  }

  #peer(to: Endpoint): WsPeer {
    let peer = this.#peers.get(to.address);
    if (!peer) {
      peer = new WsPeer(to, { connectTimeoutMs: this.#connectTimeoutMs, log: this.log, onMessage: (m) => this.deliver(m) });
      this.#peers.set(to.address, peer);
    }
    return peer;
  }
}

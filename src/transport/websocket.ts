/**
 * WebSocket transport: our RFC 6455 server over Bun.listen (ws-server.ts; wss:// with TLS), the
 * WebSocket client to dial (ws-peer.ts). Each message is one binary WebSocket message holding
 * exactly the TCP frame (length prefix + wire map), so a relay can pass frames between the two
 * transports unchanged. Options, routing, limits and error rules are the TCP transport's
 * (network-transport.ts, inbound.ts): a `transport.websocket` (or `transport.ws`) topic with host
 * and port, else the recipient's endpoint ("ws://host:port", "wss://host:port") through the resolver.
 */
import type { Socket, TCPSocketListener } from "bun";
import { InvalidMessageError, type Message } from "../core/message.ts";
import { logger } from "../observability/log.ts";
import { BufferBudgetError } from "./budget.ts";
import type { Endpoint } from "./endpoint.ts";
import { decodeFrame } from "./framing.ts";
import type { Inbound, InboundStats } from "./inbound.ts";
import { NetworkTransport, type NetworkTransportOptions } from "./network-transport.ts";
import type { PeerOptions } from "./peer.ts";
import { WsConnection, WsProtocolError } from "./ws-server.ts";
import { WsPeer } from "./ws-peer.ts";

export const WS_TOPICS = ["transport.websocket", "transport.ws"] as const;

export type WebSocketTransportOptions = NetworkTransportOptions;

interface Conn extends Inbound {
  readonly parser: WsConnection;
}

export class WebSocketTransport extends NetworkTransport<TCPSocketListener<Conn>> {
  constructor(options: WebSocketTransportOptions = {}) {
    super(
      { scheme: "ws", tlsScheme: "wss", name: "WebSocket", topics: WS_TOPICS, log: logger("transport.websocket") },
      options,
    );
  }

  protected listen(port: number): TCPSocketListener<Conn> {
    return this.listenSockets<Conn>(port, {
      accept: (s, remote, now) => this.#accept(s, remote, now),
      data: (s, chunk) => this.#received(s, chunk),
      drain: (s) => s.data?.parser.flushed(),
      close: (s) => {
        if (s.data) this.inbound.remove(s.data);
      },
    });
  }

  #accept(s: Socket<Conn>, remote: string, now: number): Conn {
    const ws = new WsConnection(s as Socket<unknown>, this.maxFrame + 4, this.inbound.budget, {
      message: (data) => this.#message(conn, data),
      closing: (code, reason) => this.log.debug("connection closed", { remote, code, reason }),
    });
    const conn: Conn = {
      remote,
      parser: ws,
      // The upgrade request (and a TLS handshake) is held to the frame deadline too.
      close: (_why, goingAway) => (ws.open ? ws.close(goingAway ? 1001 : 1008, "") : s.terminate()),
      frameStart: now,
      framesSeen: 0,
      lastActive: now,
    };
    return conn;
  }

  #received(s: Socket<Conn>, chunk: Uint8Array): void {
    const c = s.data;
    if (!c) return;
    try {
      c.parser.push(chunk);
    } catch (err) {
      if (err instanceof WsProtocolError) this.#refuse(c, "badFrames", err.code, err.message);
      else if (err instanceof BufferBudgetError) this.#refuse(c, "overBudget", 1008, err.message);
      else this.#refuse(c, "badFrames", 1011, `frame handling failed: ${(err as Error).message}`);
      return;
    }
    this.inbound.touched(c);
  }

  /** The guard's reject, closing with a WebSocket close code (which `why` alone does not give). */
  #refuse(c: Conn, kind: keyof InboundStats, code: number, why: string): void {
    const reason = code === 1007 ? "bad frame" : code === 1003 ? "binary frames only" : "";
    this.inbound.reject(c, kind, why, this.address, () => c.parser.close(code, reason));
  }

  #message(c: Conn, data: Uint8Array): void {
    let message: Message;
    try {
      message = decodeFrame(data, this.maxFrame, this.inbound.limits.maxMessageElements);
    } catch (err) {
      if (err instanceof InvalidMessageError) return this.inbound.refused(c.remote, err.message, this.address);
      throw new WsProtocolError(1007, (err as Error).message);
    }
    this.deliver(message);
  }

  /**
   * The reverse of the TCP order: the pool has its grace period before the server closes, as this
   * transport has always stopped (the server keeps delivering arrivals during that period).
   */
  protected override async shutdown(): Promise<void> {
    await this.closePool();
    await this.closeListener();
  }

  protected unlisten(listener: TCPSocketListener<Conn>): void {
    // Close frames first (1001, going away), then stop accepting; each connection ends once its frame is out.
    this.inbound.closeAll("the transport stopped");
    listener.stop(false);
  }

  protected newPeer(to: Endpoint, options: PeerOptions): WsPeer {
    return new WsPeer(to, options);
  }
}

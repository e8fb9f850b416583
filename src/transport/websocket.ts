/**
 * WebSocket transport: Bun.serve listens, the WebSocket client dials (ws-peer.ts). Each message is
 * one binary WebSocket message holding exactly the TCP frame (length prefix + wire map), so a relay
 * can pass frames between the two transports unchanged. Options, routing and error rules are the
 * TCP transport's (network-transport.ts): a `transport.websocket` (or `transport.ws`) topic with
 * host and port, else the recipient's endpoint ("ws://host:port") through the resolver.
 */
import type { Server, ServerWebSocket } from "bun";
import type { Message } from "../core/message.ts";
import { logger } from "../observability/log.ts";
import type { Endpoint } from "./endpoint.ts";
import { decodeFrame } from "./framing.ts";
import { NetworkTransport, type NetworkTransportOptions } from "./network-transport.ts";
import type { PeerOptions } from "./peer.ts";
import { WsPeer } from "./ws-peer.ts";

export const WS_TOPICS = ["transport.websocket", "transport.ws"] as const;

export type WebSocketTransportOptions = NetworkTransportOptions;

interface Conn {
  remote: string;
}

export class WebSocketTransport extends NetworkTransport<Server<Conn>> {
  protected readonly log = logger("transport.websocket");

  constructor(options: WebSocketTransportOptions = {}) {
    super({ scheme: "ws", name: "WebSocket", topics: WS_TOPICS }, options);
  }

  protected listen(port: number): Server<Conn> {
    return Bun.serve<Conn>({
      hostname: this.host,
      port,
      fetch: (req, server) => {
        if (
          server.upgrade(req, {
            data: { remote: `${server.requestIP(req)?.address ?? "?"}:${server.requestIP(req)?.port ?? "?"}` },
          })
        )
          return undefined;
        return new Response("converge WebSocket transport: connect with a WebSocket client\n", {
          status: 426,
          headers: { upgrade: "websocket" },
        });
      },
      websocket: {
        // The frame's 4-byte prefix rides inside the message; anything larger closes with 1009.
        maxPayloadLength: this.maxFrame + 4,
        message: (ws, data) => this.#received(ws, data),
        close: (ws, code, reason) => {
          // uWebSockets reports an oversized message as 1006 "Received too big message" on our side (the client sees 1009).
          if (code === 1009 || /too big/i.test(reason))
            this.log.warn(
              `closed the connection from ${ws.data.remote}: a message exceeded the ${this.maxFrame} byte frame limit`,
              { listener: this.address },
            );
          else this.log.debug("connection closed", { remote: ws.data.remote, code, reason });
        },
      },
    });
  }

  #received(ws: ServerWebSocket<Conn>, data: string | Uint8Array): void {
    if (typeof data === "string") {
      this.log.warn(
        `closed the connection from ${ws.data.remote}: it sent a text message (converge frames are binary)`,
        { listener: this.address },
      );
      ws.close(1003, "binary frames only");
      return;
    }
    let message: Message;
    try {
      message = decodeFrame(data, this.maxFrame);
    } catch (err) {
      this.log.warn(`closed the connection from ${ws.data.remote}: ${(err as Error).message}`, {
        listener: this.address,
      });
      ws.close(1007, "bad frame");
      return;
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

  protected async unlisten(server: Server<Conn>): Promise<void> {
    await server.stop(true);
  }

  protected newPeer(to: Endpoint, options: PeerOptions): WsPeer {
    return new WsPeer(to, options);
  }
}

/**
 * TCP transport (Bun.listen / Bun.connect), with TLS when given a certificate (tls://), as the
 * Python original's TcpTransport with an ssl_context: frames are a 4-byte big-endian length and
 * the message's wire map, the same bytes either way. Inbound connections are held to the
 * listener's limits (inbound.ts); outbound ones are pooled per peer (tcp-peer.ts).
 */
import type { Socket, TCPSocketListener } from "bun";
import { TransportError } from "../core/errors.ts";
import { logger } from "../observability/log.ts";
import { BufferBudgetError } from "./budget.ts";
import type { Endpoint } from "./endpoint.ts";
import { FrameDecoder } from "./framing.ts";
import type { Inbound } from "./inbound.ts";
import { NetworkTransport, type NetworkTransportOptions } from "./network-transport.ts";
import type { PeerOptions } from "./peer.ts";
import { TcpPeer, type TcpStats } from "./tcp-peer.ts";

export const TCP_TOPIC = "transport.tcp";

export type TcpTransportOptions = NetworkTransportOptions;

interface Conn extends Inbound {
  readonly parser: FrameDecoder;
}

export class TcpTransport extends NetworkTransport<TCPSocketListener<Conn>> {
  /** Counters of the outbound pool, for tests and metrics (inbound ones are in `inbound.stats`). */
  readonly stats: TcpStats = { partialWrites: 0, reconnects: 0 };

  constructor(options: TcpTransportOptions = {}) {
    super({ scheme: "tcp", tlsScheme: "tls", name: "TCP", topics: [TCP_TOPIC], log: logger("transport.tcp") }, options);
  }

  /** A `transport.tcp` topic attribute set pointing at this transport, for replies. */
  get route(): { host: string; port: number } | null {
    return this.listening ? { host: this.host, port: this.port } : null;
  }

  protected listen(port: number): TCPSocketListener<Conn> {
    return this.listenSockets<Conn>(port, {
      accept: (s, remote, now) => this.#accept(s, remote, now),
      // The handshake is over: the frame deadline now waits for a frame's first byte.
      handshake: (c) => {
        c.frameStart = 0;
      },
      data: (s, chunk) => this.#received(s, chunk),
      close: (s) => this.#closed(s),
    });
  }

  protected override listenFailed(err: unknown, port: number): TransportError {
    const code = (err as { code?: string }).code;
    if (code === "EADDRNOTAVAIL")
      return new TransportError(`cannot listen on ${this.host}: no such local address`, { cause: err });
    if (code === "EACCES")
      return new TransportError(`not allowed to listen on port ${port} on ${this.host}`, { cause: err });
    return super.listenFailed(err, port);
  }

  #accept(s: Socket<Conn>, remote: string, now: number): Conn {
    return {
      remote,
      parser: new FrameDecoder((m) => this.deliver(m), {
        maxFrame: this.maxFrame,
        maxElements: this.inbound.limits.maxMessageElements,
        budget: this.inbound.budget,
        onRefused: (err) => this.inbound.refused(remote, err.message, this.address),
      }),
      close: () => s.terminate(),
      // A TLS handshake is held to the frame deadline too: it ends when the first data can flow.
      frameStart: this.listensTls ? now : 0,
      framesSeen: 0,
      lastActive: now,
    };
  }

  #received(s: Socket<Conn>, chunk: Uint8Array): void {
    const c = s.data;
    if (!c) return;
    try {
      c.parser.push(chunk);
    } catch (err) {
      const kind = err instanceof BufferBudgetError ? "overBudget" : "badFrames";
      this.inbound.reject(c, kind, (err as Error).message, this.address);
      return;
    }
    this.inbound.touched(c);
  }

  #closed(s: Socket<Conn>): void {
    const c = s.data;
    if (!c) return;
    const left = c.parser.buffered;
    if (!this.inbound.remove(c) || !this.started) return; // closed by us (bad frame, limit or stop)
    if (left > 0)
      this.inbound.warnings.write(
        `the connection from ${c.remote} closed in the middle of a frame; ${left} bytes discarded`,
        { listener: this.address },
      );
  }

  protected unlisten(listener: TCPSocketListener<Conn>): void {
    listener.stop(true);
    this.inbound.closeAll("the transport stopped");
  }

  protected newPeer(to: Endpoint, options: PeerOptions): TcpPeer {
    return new TcpPeer(to, { ...options, stats: this.stats });
  }
}

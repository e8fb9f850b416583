/**
 * TCP transport on Bun.listen / Bun.connect, with the Python original's frames (framing.ts).
 *
 * Connections are one-way: this transport receives on the connections peers open to its listener
 * and sends on its own pooled connections (one per peer address, tcp-peer.ts), so the order of
 * messages from one sender to one receiver is kept. A connection that breaks the framing rules
 * (oversized frame, zero length, garbage, undecodable body) is closed and logged at warn; the
 * listener keeps serving everyone else. Options, routing and the pool: network-transport.ts.
 */
import type { Socket, TCPSocketListener } from "bun";
import { TransportError } from "../core/errors.ts";
import { logger } from "../observability/log.ts";
import type { Endpoint } from "./endpoint.ts";
import { FrameDecoder } from "./framing.ts";
import { NetworkTransport, type NetworkTransportOptions } from "./network-transport.ts";
import type { PeerOptions } from "./peer.ts";
import { TcpPeer, type TcpStats } from "./tcp-peer.ts";

export const TCP_TOPIC = "transport.tcp";

export type TcpTransportOptions = NetworkTransportOptions;

interface Inbound {
  decoder: FrameDecoder;
  remote: string;
}

export class TcpTransport extends NetworkTransport<TCPSocketListener<Inbound>> {
  protected readonly log = logger("transport.tcp");
  readonly #inbound = new Set<Socket<Inbound>>();
  /** Counters for tests and metrics; `closedBadFrames` counts inbound connections closed for breaking the framing rules. */
  readonly stats: TcpStats & { closedBadFrames: number } = { partialWrites: 0, reconnects: 0, closedBadFrames: 0 };

  constructor(options: TcpTransportOptions = {}) {
    super({ scheme: "tcp", name: "TCP", topics: [TCP_TOPIC] }, options);
  }

  /** A `transport.tcp` topic attribute set pointing at this transport, for replies. */
  get route(): { host: string; port: number } | null {
    return this.listening ? { host: this.host, port: this.port } : null;
  }

  /** Open inbound connections (for tests and health). */
  get inboundConnections(): number {
    return this.#inbound.size;
  }

  protected listen(port: number): TCPSocketListener<Inbound> {
    return Bun.listen<Inbound>({
      hostname: this.host,
      port,
      socket: {
        binaryType: "uint8array",
        open: (s) => this.#accept(s),
        data: (s, chunk) => this.#received(s, chunk as Uint8Array),
        close: (s) => this.#closed(s),
        error: (s, err) => this.log.debug(`inbound socket error from ${s.data?.remote}: ${err.message}`),
      },
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

  #accept(s: Socket<Inbound>): void {
    s.data = {
      decoder: new FrameDecoder((m) => this.deliver(m), this.maxFrame),
      remote: `${s.remoteAddress}:${s.remotePort}`,
    };
    this.#inbound.add(s);
  }

  #received(s: Socket<Inbound>, chunk: Uint8Array): void {
    try {
      s.data.decoder.push(chunk);
    } catch (err) {
      this.stats.closedBadFrames++;
      this.log.warn(`closed the connection from ${s.data.remote}: ${(err as Error).message}`, {
        listener: this.address,
      });
      this.#inbound.delete(s);
      s.terminate();
    }
  }

  #closed(s: Socket<Inbound>): void {
    if (!this.#inbound.delete(s) || !this.started) return; // closed by us (bad frame or stop)
    const left = s.data?.decoder.buffered ?? 0;
    if (left > 0)
      this.log.warn(`the connection from ${s.data.remote} closed in the middle of a frame; ${left} bytes discarded`, {
        listener: this.address,
      });
  }

  protected unlisten(listener: TCPSocketListener<Inbound>): void {
    listener.stop(true);
    for (const s of this.#inbound) s.terminate();
    this.#inbound.clear();
  }

  protected newPeer(to: Endpoint, options: PeerOptions): TcpPeer {
    return new TcpPeer(to, { ...options, stats: this.stats });
  }
}

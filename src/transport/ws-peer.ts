/**
 * One pooled outbound WebSocket connection (the WebSocket client) to a peer's listener (ws-server.ts).
 * Each message is one binary WebSocket message carrying exactly the TCP frame's bytes.
 *
 * The client buffers what it cannot write yet (`bufferedAmount`); past HIGH_WATER bytes buffered,
 * frames wait in our queue instead, so a burst cannot grow memory without bound, and a send
 * resolves once the client has taken its frame. Unreachable peer → every waiting send rejects
 * with the address; a connection that died is re-established once for the frames waiting (peer.ts).
 */
import { TransportError } from "../core/errors.ts";
import { decodeFrame } from "./framing.ts";
import { PooledPeer, dialFailure } from "./peer.ts";
import { dialHandshakeFailure } from "./tls.ts";

const HIGH_WATER = 4 * 1024 * 1024;

export class WsPeer extends PooledPeer {
  #ws: WebSocket | null = null;
  #open = false;
  #waitTimer: ReturnType<typeof setTimeout> | undefined;

  get connected(): boolean {
    return this.#open;
  }

  /** Set from the moment of dialling, so also while the connection is being made. */
  protected get reachable(): boolean {
    return this.#ws !== null;
  }

  protected write(frame: Uint8Array): Promise<void> {
    // Fast path: connection open, nothing waiting, client not saturated.
    if (this.#open && this.pending === 0 && this.#ws!.bufferedAmount < HIGH_WATER) {
      this.#ws!.send(frame);
      this.reconnected = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ frame, resolve, reject });
      this.#pump();
    });
  }

  #pump(): void {
    if (this.pending === 0) return this.notifyIdle();
    if (!this.#ws) return this.#connect();
    if (!this.#open || this.#waitTimer) return;
    const ws = this.#ws;
    while (this.pending > 0 && ws.bufferedAmount < HIGH_WATER) {
      const p = this.queue.shift()!;
      ws.send(p.frame);
      this.reconnected = false;
      p.resolve();
    }
    if (this.pending === 0) {
      this.notifyIdle();
    } else {
      // The client has no drain event: look again shortly while saturated.
      this.#waitTimer = setTimeout(() => {
        this.#waitTimer = undefined;
        this.#pump();
      }, 1);
    }
  }

  #connect(): void {
    const { address, scheme } = this.endpoint;
    const tls = this.options.tls;
    const url = `${address}/`;
    // `tls` is given exactly for wss:// endpoints (network-transport.ts).
    const ws = tls ? new WebSocket(url, { tls: tls === true ? {} : tls }) : new WebSocket(url);
    ws.binaryType = "arraybuffer";
    this.#ws = ws;
    this.#open = false;
    let failure = "";
    const timer = setTimeout(() => {
      failure = `no connection after ${this.options.connectTimeoutMs} ms`;
      ws.close();
    }, this.options.connectTimeoutMs);
    ws.onopen = () => {
      clearTimeout(timer);
      if (this.#ws !== ws) return ws.close();
      this.#open = true;
      this.options.log.debug("connected", { peer: address });
      this.#pump();
    };
    ws.onerror = (ev) => {
      const e = ev as ErrorEvent & { error?: { code?: string; message?: string } };
      failure ||=
        scheme === "wss" && !this.#open && e.error?.code !== "ECONNREFUSED"
          ? dialHandshakeFailure(e.error ?? { message: e.message })
          : e.error?.code === "ECONNRESET" && !this.#open
            ? "the peer reset the connection (if it listens with TLS, dial wss://)"
            : dialFailure(e.error?.code, e.message ?? "connection error");
    };
    ws.onmessage = (ev) => {
      if (!(ev.data instanceof ArrayBuffer)) return;
      try {
        this.options.onMessage(decodeFrame(new Uint8Array(ev.data)));
      } catch (err) {
        this.options.log.warn(`closing connection to ${address}: ${(err as Error).message}`);
        ws.close(1007, "bad frame");
      }
    };
    ws.onclose = (ev) => {
      clearTimeout(timer);
      if (this.#ws !== ws) return;
      const wasOpen = this.#open;
      this.#ws = null;
      this.#open = false;
      if (this.#waitTimer) clearTimeout(this.#waitTimer);
      this.#waitTimer = undefined;
      if (this.closed || this.pending === 0) return;
      if (!wasOpen)
        return this.rejectAll(
          new TransportError(`cannot reach ${address}: ${failure || `closed with code ${ev.code}`}`),
        );
      if (this.retryOnce(`code ${ev.code}`, "the connection closed")) this.#connect();
    };
  }

  protected hangUp(): void {
    if (this.#waitTimer) clearTimeout(this.#waitTimer);
    const ws = this.#ws;
    this.#ws = null;
    // close() flushes what the client buffered, then sends the Close frame.
    ws?.close(1000, "transport stopped");
  }
}

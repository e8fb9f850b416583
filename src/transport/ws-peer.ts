/**
 * One pooled outbound WebSocket connection (the WebSocket client) to a peer's Bun.serve listener.
 * Each message is one binary WebSocket message carrying exactly the TCP frame's bytes.
 *
 * The client buffers what it cannot write yet (`bufferedAmount`); past HIGH_WATER bytes buffered,
 * frames wait in our queue instead, so a burst cannot grow memory without bound, and a send
 * resolves once the client has taken its frame. Unreachable peer → every waiting send rejects
 * with the address; a connection that died is re-established once for the frames waiting.
 */
import { TransportError } from "../core/errors.ts";
import type { Message } from "../core/message.ts";
import type { Logger } from "../observability/log.ts";
import type { Endpoint } from "./endpoint.ts";
import { decodeFrame } from "./framing.ts";

const HIGH_WATER = 4 * 1024 * 1024;

interface Pending {
  frame: Uint8Array;
  resolve: () => void;
  reject: (err: Error) => void;
}

export interface WsPeerOptions {
  connectTimeoutMs: number;
  log: Logger;
  onMessage: (m: Message) => void;
}

export class WsPeer {
  #ws: WebSocket | null = null;
  #open = false;
  #queue: Pending[] = [];
  #head = 0;
  #reconnected = false;
  #closed = false;
  #waitTimer: ReturnType<typeof setTimeout> | undefined;
  #idle: (() => void)[] = [];

  constructor(readonly endpoint: Endpoint, private readonly options: WsPeerOptions) {}

  get connected(): boolean {
    return this.#open;
  }

  get pending(): number {
    return this.#queue.length - this.#head;
  }

  send(frame: Uint8Array): Promise<void> {
    if (this.#closed) return Promise.reject(new TransportError(`cannot send to ${this.endpoint.address}: the transport is stopping`));
    // Fast path: connection open, nothing waiting, client not saturated.
    if (this.#open && this.pending === 0 && this.#ws!.bufferedAmount < HIGH_WATER) {
      this.#ws!.send(frame);
      this.#reconnected = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ frame, resolve, reject });
      this.#pump();
    });
  }

  #pump(): void {
    if (this.pending === 0) return this.#notifyIdle();
    if (!this.#ws) return this.#connect();
    if (!this.#open || this.#waitTimer) return;
    const ws = this.#ws;
    while (this.pending > 0 && ws.bufferedAmount < HIGH_WATER) {
      const p = this.#queue[this.#head]!;
      this.#queue[this.#head++] = undefined as unknown as Pending;
      ws.send(p.frame);
      this.#reconnected = false;
      p.resolve();
    }
    if (this.#head === this.#queue.length) {
      this.#queue = [];
      this.#head = 0;
      this.#notifyIdle();
    } else {
      // The client has no drain event: look again shortly while saturated.
      this.#waitTimer = setTimeout(() => {
        this.#waitTimer = undefined;
        this.#pump();
      }, 1);
    }
  }

  #connect(): void {
    const { address } = this.endpoint;
    const ws = new WebSocket(`ws://${address.slice("ws://".length)}/`);
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
      const e = ev as ErrorEvent & { error?: { code?: string } };
      failure ||= e.error?.code === "ECONNREFUSED" ? "connection refused (is the peer listening?)" : e.error?.code ?? e.message ?? "connection error";
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
      if (this.#closed || this.pending === 0) return;
      if (!wasOpen) return this.#rejectAll(new TransportError(`cannot reach ${address}: ${failure || `closed with code ${ev.code}`}`));
      if (this.#reconnected) return this.#rejectAll(new TransportError(`cannot send to ${address}: the connection closed again right after reconnecting`));
      this.#reconnected = true;
      this.options.log.info(`connection to ${address} lost (code ${ev.code}); reconnecting once for ${this.pending} waiting message(s)`);
      this.#connect();
    };
  }

  #rejectAll(err: TransportError): void {
    const waiting = this.#queue.slice(this.#head);
    this.#queue = [];
    this.#head = 0;
    this.#reconnected = false;
    for (const p of waiting) p.reject(err);
    this.#notifyIdle();
  }

  #notifyIdle(): void {
    const idle = this.#idle;
    this.#idle = [];
    for (const f of idle) f();
  }

  /** Waits up to `graceMs` for queued frames to be handed to the client, rejects the rest, and closes. */
  async close(graceMs: number): Promise<void> {
    if (this.pending > 0 && this.#ws) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([new Promise<void>((r) => this.#idle.push(r)), new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
      clearTimeout(timer);
    }
    this.#closed = true;
    if (this.#waitTimer) clearTimeout(this.#waitTimer);
    this.#rejectAll(new TransportError(`message to ${this.endpoint.address} not sent: the transport was stopped first`));
    const ws = this.#ws;
    this.#ws = null;
    // close() flushes what the client buffered, then sends the Close frame.
    ws?.close(1000, "transport stopped");
  }
}

/**
 * The server side of the WebSocket transport: RFC 6455 over a Bun.listen socket (TLS for wss://).
 *
 * Hand-written rather than Bun.serve because the listener limits must see every byte: uWebSockets
 * buffers a message until it is complete and tells us nothing before, so the shared buffer budget
 * and the frame deadline (inbound.ts) could not be enforced there. The protocol needed is small:
 * the HTTP upgrade (anything else gets 426), masked client frames, binary messages (fragmented or
 * not), ping, pong and close. Extensions are never negotiated, so frames are never compressed.
 *
 * WsConnection parses one connection's bytes; each complete binary message is handed on as a
 * converge frame (the TCP frame's bytes, length prefix included).
 */
import { createHash } from "node:crypto";
import type { Socket } from "bun";
import { TransportError } from "../core/errors.ts";
import type { BufferBudget } from "./budget.ts";

// Where it has always been importable from (src/index.ts); it lives with the budget that throws it.
export { BufferBudgetError } from "./budget.ts";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/** The HTTP upgrade request may be at most this long. */
const MAX_REQUEST = 8 * 1024;
const OP_CONTINUATION = 0x0;
const OP_TEXT = 0x1;
const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const OP_PONG = 0xa;

/**
 * A protocol violation: the connection is closed with `code` (1002 protocol, 1003 data type,
 * 1009 too big, 1007 bad data).
 */
export class WsProtocolError extends TransportError {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

export interface WsConnectionEvents {
  /** A complete binary message. */
  message(data: Uint8Array): void;
  /** The peer sent a close frame (we answer it and end). */
  closing(code: number, reason: string): void;
}

export class WsConnection {
  #state: "http" | "open" | "closing" = "http";
  /** Received bytes not yet consumed: `#buf[0, #filled)`. */
  #buf = new Uint8Array(0);
  #filled = 0;
  /** Payloads of a fragmented message so far. */
  #fragments: Uint8Array[] = [];
  #fragmentBytes = 0;
  #out: Uint8Array[] = [];
  #endAfterWrite = false;
  /** Messages and control frames completed, for the frame deadline. */
  frames = 0;

  constructor(
    readonly socket: Socket<unknown>,
    readonly maxMessage: number,
    readonly budget: BufferBudget,
    readonly events: WsConnectionEvents,
  ) {}

  get open(): boolean {
    return this.#state === "open";
  }

  get #closing(): boolean {
    return this.#state === "closing";
  }

  /** Bytes held for an unfinished request, frame or message. */
  get buffered(): number {
    return this.#filled + this.#fragmentBytes;
  }

  /** Feeds received bytes; throws WsProtocolError (close with its code) or, from the budget, BufferBudgetError. */
  push(chunk: Uint8Array): void {
    if (this.#state === "closing") return;
    let data = chunk;
    let start = 0;
    if (this.#filled > 0) {
      this.#append(chunk);
      data = this.#buf;
    }
    const end = data === chunk ? chunk.length : this.#filled;
    if (this.#state === "http") {
      if (data[0] === 0x16)
        throw new WsProtocolError(
          1002,
          "the peer opened a TLS handshake, but this listener is plain ws:// (use wss:// on both sides, or neither)",
        );
      start = this.#request(data, end);
      if (start < 0) {
        if (data === chunk) this.#append(chunk);
        if (this.#state === "http" && this.#filled > MAX_REQUEST)
          this.#reply(431, "Request Header Fields Too Large", "request too large\n");
        return;
      }
    }
    let pos = start;
    while (this.#state === "open") {
      const used = this.#frame(data, pos, end);
      if (used === 0) break;
      pos += used;
    }
    // Keep what is left of an unfinished frame (moved to the front of our buffer).
    const left = end - pos;
    if (data === chunk) {
      if (left > 0 && !this.#closing) this.#append(chunk.subarray(pos));
    } else if (pos > 0) {
      this.#buf.copyWithin(0, pos, end);
      this.#filled = left;
      if (left === 0 && this.#buf.length > 16 * 1024) this.#resize(0);
    }
  }

  /** Gives the buffers back to the budget (the connection closed). */
  dispose(): void {
    this.#resize(0);
    this.#filled = 0;
    this.budget.release(this.#fragmentBytes);
    this.#fragments = [];
    this.#fragmentBytes = 0;
  }

  /** Sends a close frame and ends the connection once it is written. */
  close(code: number, reason: string): void {
    if (this.#state === "closing") return;
    const wasOpen = this.#state === "open";
    this.#state = "closing";
    if (!wasOpen) {
      this.socket.end();
      return;
    }
    const text = new TextEncoder().encode(reason.slice(0, 120));
    const payload = new Uint8Array(2 + text.length);
    payload[0] = code >>> 8;
    payload[1] = code & 0xff;
    payload.set(text, 2);
    this.#send(OP_CLOSE, payload);
    this.#endAfterWrite = true;
    this.#flush();
  }

  /** @internal drain handler. */
  flushed(): void {
    this.#flush();
  }

  /** Parses the upgrade request if complete; returns where frames begin, or -1 when more is needed. */
  #request(data: Uint8Array, end: number): number {
    const at = indexOfCrlfCrlf(data, end);
    if (at < 0) return -1;
    const head = new TextDecoder().decode(data.subarray(0, at));
    const [requestLine = "", ...lines] = head.split("\r\n");
    const headers = new Map<string, string>();
    for (const l of lines) {
      const i = l.indexOf(":");
      if (i > 0) headers.set(l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim());
    }
    const key = headers.get("sec-websocket-key") ?? "";
    const upgrade =
      /^GET \S+ HTTP\/1\.1$/.test(requestLine) &&
      /\bwebsocket\b/i.test(headers.get("upgrade") ?? "") &&
      /\bupgrade\b/i.test(headers.get("connection") ?? "") &&
      Buffer.from(key, "base64").length === 16;
    if (!upgrade) {
      this.#reply(426, "Upgrade Required", "converge WebSocket transport: connect with a WebSocket client\n", [
        "Upgrade: websocket",
      ]);
      return -1;
    }
    if (headers.get("sec-websocket-version") !== "13") {
      this.#reply(426, "Upgrade Required", "WebSocket version 13 only\n", ["Sec-WebSocket-Version: 13"]);
      return -1;
    }
    const accept = createHash("sha1")
      .update(key + GUID)
      .digest("base64");
    this.#write(
      new TextEncoder().encode(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
          `Sec-WebSocket-Accept: ${accept}\r\n\r\n`,
      ),
    );
    this.#state = "open";
    this.frames++;
    return at + 4;
  }

  #reply(status: number, text: string, body: string, headers: string[] = []): void {
    const extra = headers.map((h) => `${h}\r\n`).join("");
    this.#write(
      new TextEncoder().encode(
        `HTTP/1.1 ${status} ${text}\r\n${extra}Content-Type: text/plain\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      ),
    );
    this.#state = "closing";
    this.#endAfterWrite = true;
    this.#flush();
  }

  /** Consumes one complete frame at `pos`; returns its size, or 0 when it has not fully arrived. */
  #frame(data: Uint8Array, pos: number, end: number): number {
    if (end - pos < 2) return 0;
    const b0 = data[pos]!;
    const b1 = data[pos + 1]!;
    const fin = (b0 & 0x80) !== 0;
    const opcode = b0 & 0x0f;
    if (b0 & 0x70) throw new WsProtocolError(1002, "a frame used reserved bits (no extension was negotiated)");
    if (!(b1 & 0x80)) throw new WsProtocolError(1002, "a client frame was not masked");
    let len = b1 & 0x7f;
    let at = pos + 2;
    if (len === 126) {
      if (end - at < 2) return 0;
      len = (data[at]! << 8) | data[at + 1]!;
      at += 2;
    } else if (len === 127) {
      if (end - at < 8) return 0;
      const hi = data[at]! * 0x100_0000 + ((data[at + 1]! << 16) | (data[at + 2]! << 8) | data[at + 3]!);
      const lo = data[at + 4]! * 0x100_0000 + ((data[at + 5]! << 16) | (data[at + 6]! << 8) | data[at + 7]!);
      len = hi >= 0x20_0000 ? Infinity : hi * 0x1_0000_0000 + lo;
      at += 8;
    }
    const control = opcode >= 0x8;
    if (control && (!fin || len > 125)) throw new WsProtocolError(1002, "a control frame was fragmented or too long");
    if (opcode === OP_TEXT) throw new WsProtocolError(1003, "it sent a text message (converge frames are binary)");
    if (!control && opcode !== OP_BINARY && opcode !== OP_CONTINUATION)
      throw new WsProtocolError(1002, `unknown opcode ${opcode}`);
    if (opcode === OP_CONTINUATION && this.#fragments.length === 0)
      throw new WsProtocolError(1002, "a continuation frame without a message to continue");
    if (opcode === OP_BINARY && this.#fragments.length > 0)
      throw new WsProtocolError(1002, "a new message began before the fragmented one ended");
    if (!control && this.#fragmentBytes + len > this.maxMessage)
      throw new WsProtocolError(1009, `a message exceeded the ${this.maxMessage - 4} byte frame limit`);
    if (end - at < 4 + len) return 0;
    const mask = data.subarray(at, at + 4);
    at += 4;
    unmask(data, at, len, mask);
    const payload = data.subarray(at, at + len);
    const size = at + len - pos;
    this.#handle(opcode, fin, payload);
    return size;
  }

  #handle(opcode: number, fin: boolean, payload: Uint8Array): void {
    switch (opcode) {
      case OP_PING:
        this.frames++;
        this.#send(OP_PONG, payload);
        this.#flush();
        return;
      case OP_PONG:
        this.frames++;
        return;
      case OP_CLOSE: {
        this.frames++;
        const code = payload.length >= 2 ? (payload[0]! << 8) | payload[1]! : 1000;
        const reason = new TextDecoder().decode(payload.subarray(2));
        this.events.closing(code, reason);
        this.close(code === 1005 || code === 1006 ? 1000 : code, "");
        return;
      }
    }
    if (!fin) {
      // Kept (a copy: the chunk's bytes are not ours past this call), counted in the budget.
      this.budget.take(payload.length);
      this.#fragments.push(payload.slice());
      this.#fragmentBytes += payload.length;
      return;
    }
    this.frames++;
    if (this.#fragments.length === 0) {
      this.events.message(payload);
      return;
    }
    const whole = new Uint8Array(this.#fragmentBytes + payload.length);
    let at = 0;
    for (const f of this.#fragments) {
      whole.set(f, at);
      at += f.length;
    }
    whole.set(payload, at);
    this.budget.release(this.#fragmentBytes);
    this.#fragments = [];
    this.#fragmentBytes = 0;
    this.events.message(whole);
  }

  /** Appends to our buffer, growing it (doubling) within the budget. */
  #append(chunk: Uint8Array): void {
    const want = this.#filled + chunk.length;
    if (want > this.#buf.length) {
      let size = Math.max(256, this.#buf.length * 2);
      while (size < want) size *= 2;
      this.#resize(size);
    }
    this.#buf.set(chunk, this.#filled);
    this.#filled += chunk.length;
  }

  #resize(size: number): void {
    const old = this.#buf;
    if (size > old.length) this.budget.take(size - old.length);
    if (size < old.length) this.budget.release(old.length - size);
    const next = new Uint8Array(size);
    if (this.#filled > 0 && size > 0) next.set(old.subarray(0, Math.min(this.#filled, size)));
    this.#buf = next;
  }

  /** Queues a server frame (never masked). */
  #send(opcode: number, payload: Uint8Array): void {
    const header = payload.length < 126 ? 2 : 4;
    const frame = new Uint8Array(header + payload.length);
    frame[0] = 0x80 | opcode;
    if (header === 2) frame[1] = payload.length;
    else {
      frame[1] = 126;
      frame[2] = payload.length >>> 8;
      frame[3] = payload.length & 0xff;
    }
    frame.set(payload, header);
    this.#out.push(frame);
  }

  #write(bytes: Uint8Array): void {
    this.#out.push(bytes);
    this.#flush();
  }

  #flush(): void {
    while (this.#out.length > 0) {
      const head = this.#out[0]!;
      const n = this.socket.write(head);
      if (n < 0) return;
      if (n < head.length) {
        this.#out[0] = head.subarray(n);
        return; // the rest goes on drain
      }
      this.#out.shift();
    }
    if (this.#endAfterWrite) this.socket.end();
  }
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * XORs `data[at, at + len)` with the 4-byte mask, in place; a word at a time where aligned (a 10 MiB
 * message stays cheap).
 */
function unmask(data: Uint8Array, at: number, len: number, mask: Uint8Array): void {
  let i = 0;
  const base = data.byteOffset + at;
  while (i < len && (base + i) & 3) {
    data[at + i]! ^= mask[i & 3]!;
    i++;
  }
  const words = (len - i) >>> 2;
  if (words > 0 && LITTLE_ENDIAN) {
    const k =
      (mask[i & 3]! | (mask[(i + 1) & 3]! << 8) | (mask[(i + 2) & 3]! << 16) | (mask[(i + 3) & 3]! << 24)) >>> 0;
    const w = new Uint32Array(data.buffer, base + i, words);
    for (let j = 0; j < words; j++) w[j]! ^= k;
    i += words * 4;
  }
  for (; i < len; i++) data[at + i]! ^= mask[i & 3]!;
}

function indexOfCrlfCrlf(data: Uint8Array, end: number): number {
  for (let i = 0; i + 3 < end; i++) {
    if (data[i] === 13 && data[i + 1] === 10 && data[i + 2] === 13 && data[i + 3] === 10) return i;
  }
  return -1;
}

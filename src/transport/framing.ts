/**
 * Frames on a stream: a 4-byte big-endian length, then the message's wire map (Message.encode()).
 * The same bytes travel as one binary WebSocket message.
 *
 * FrameDecoder is incremental: `data` events deliver arbitrary chunks, and a length prefix can
 * arrive split across two of them (the Python original loses whole connections exactly there).
 * Complete frames are decoded straight out of the chunk; only an unfinished frame is copied, into
 * a buffer that grows with what arrived and counts against the listener's BufferBudget.
 */
import { DecodeError, TransportError } from "../core/errors.ts";
import { InvalidMessageError, MAX_MESSAGE_ELEMENTS, Message, checkWireIds } from "../core/message.ts";
import type { BufferBudget } from "./budget.ts";

export const MAX_FRAME = 10 * 1024 * 1024;
const HEADER = 4;

/** A stream that broke the framing rules; the connection it came from must be closed. */
export class FrameError extends DecodeError {}

/**
 * The length prefix followed by the message's wire map. The message encodes it in place and keeps
 * it (Message.encodeFramed), so framing copies nothing: shared, do not modify.
 */
export function encodeFrame(message: Message): Uint8Array {
  const frame = message.encodeFramed();
  const body = frame.length - HEADER;
  if (body > MAX_FRAME)
    throw new TransportError(
      `message of ${body} bytes exceeds the ${MAX_FRAME} byte (10 MiB) frame limit; it cannot be sent`,
    );
  return frame;
}

/** Prefixes an already encoded wire map with its length. */
export function frameBody(body: Uint8Array): Uint8Array {
  if (body.length > MAX_FRAME)
    throw new TransportError(
      `message of ${body.length} bytes exceeds the ${MAX_FRAME} byte (10 MiB) frame limit; it cannot be sent`,
    );
  const out = new Uint8Array(HEADER + body.length);
  writeLength(out, 0, body.length);
  out.set(body, HEADER);
  return out;
}

function writeLength(buf: Uint8Array, at: number, n: number): void {
  buf[at] = n >>> 24;
  buf[at + 1] = (n >>> 16) & 0xff;
  buf[at + 2] = (n >>> 8) & 0xff;
  buf[at + 3] = n & 0xff;
}

function readLength(buf: Uint8Array, at: number): number {
  return ((buf[at]! << 24) >>> 0) + (buf[at + 1]! << 16) + (buf[at + 2]! << 8) + buf[at + 3]!;
}

/**
 * Checks a length prefix and, once known, the body's first byte. A wire map always starts with a
 * map header (fixmap, map16, map32), so a garbage stream is refused at once instead of waiting for
 * up to 10 MiB that will never come. The prefixes of a TLS handshake and of an HTTP request are
 * named, since they are what a peer speaking the wrong protocol sends first.
 */
function checkLength(len: number, max: number): void {
  if (len === 0) throw new FrameError("zero-length frame");
  if (len > max) throw new FrameError(oversizeWhy(len) ?? `frame of ${len} bytes exceeds the ${max} byte limit`);
}
function oversizeWhy(len: number): string | undefined {
  const b0 = len >>> 24;
  const b1 = (len >>> 16) & 0xff;
  // A TLS record: 0x16 handshake (a client's hello), 0x15 alert (a TLS listener refusing a plain client).
  if ((b0 === 0x16 || b0 === 0x15) && b1 === 0x03)
    return "these bytes are TLS, not converge frames: one side speaks TLS and the other plain TCP (use tls:// on both sides, or neither)";
  const text = String.fromCharCode(b0, b1, (len >>> 8) & 0xff, len & 0xff);
  if (/^(GET |POST|PUT |HEAD|PRI )$/.test(text)) return "the peer sent an HTTP request, not converge frames";
  return undefined;
}
function checkFirstByte(b: number): void {
  if ((b & 0xf0) !== 0x80 && b !== 0xde && b !== 0xdf) {
    throw new FrameError(
      `frame body does not start with a msgpack map (first byte 0x${b.toString(16).padStart(2, "0")})`,
    );
  }
}

/** Decodes one complete frame (prefix included), as a WebSocket message carries it. */
export function decodeFrame(frame: Uint8Array, max = MAX_FRAME, maxElements = MAX_MESSAGE_ELEMENTS): Message {
  if (frame.length < HEADER)
    throw new FrameError(`frame of ${frame.length} bytes is shorter than its 4-byte length prefix`);
  const len = readLength(frame, 0);
  checkLength(len, max);
  if (len !== frame.length - HEADER)
    throw new FrameError(`length prefix says ${len} bytes but the frame carries ${frame.length - HEADER}`);
  checkFirstByte(frame[HEADER]!);
  return decodeBody(frame, HEADER, frame.length, maxElements);
}

/**
 * The message in a whole frame, held to the wire rules for ids. InvalidMessageError passes
 * through (the frame was whole: the stream is intact); anything else is a FrameError.
 */
function decodeBody(buf: Uint8Array, start: number, end: number, maxElements: number): Message {
  try {
    const m = Message.decode(buf, start, end, maxElements);
    checkWireIds(m);
    return m;
  } catch (err) {
    if (err instanceof InvalidMessageError) throw err;
    throw new FrameError(`undecodable frame body: ${(err as Error).message}`, { cause: err });
  }
}

export interface FrameDecoderOptions {
  /** Largest accepted frame body. Default MAX_FRAME (10 MiB). */
  maxFrame?: number;
  /** Decode budget per message (array elements and map entries). Default MAX_MESSAGE_ELEMENTS. */
  maxElements?: number;
  /** Shared by a listener's connections: the bytes their unfinished frames may hold together. */
  budget?: BufferBudget;
  /**
   * A whole frame whose message was refused for its ids (InvalidMessageError): the stream goes on.
   * Without it such a frame fails the stream like any other bad frame.
   */
  onRefused?: (err: InvalidMessageError) => void;
}

/** An unfinished frame's buffer at most this big is kept for the next one. */
const KEEP_BUFFER = 16 * 1024;

/**
 * Feed it chunks; it calls `onMessage` for every complete frame, in order. On the first framing
 * error `push` throws a FrameError and the decoder refuses everything after (the stream position
 * is lost, so the connection must be closed). Messages decoded before the error were delivered.
 * `dispose()` gives the buffer back to the budget: call it when the connection closes.
 */
export class FrameDecoder {
  /** An unfinished frame, prefix included: `#buf[0, #filled)`; `#need` is its full size once the prefix is known. */
  #buf = new Uint8Array(0);
  #filled = 0;
  #need = -1;
  #failed: FrameError | null = null;
  readonly #onMessage: (message: Message) => void;
  readonly #maxFrame: number;
  readonly #maxElements: number;
  readonly #budget: BufferBudget | undefined;
  readonly #onRefused: ((err: InvalidMessageError) => void) | undefined;
  /** Whole frames seen (delivered or refused), for deadlines: a count that moved means a frame completed. */
  frames = 0;

  constructor(onMessage: (message: Message) => void, options: number | FrameDecoderOptions = {}) {
    const o = typeof options === "number" ? { maxFrame: options } : options;
    this.#onMessage = onMessage;
    this.#maxFrame = o.maxFrame ?? MAX_FRAME;
    this.#maxElements = o.maxElements ?? MAX_MESSAGE_ELEMENTS;
    this.#budget = o.budget;
    this.#onRefused = o.onRefused;
  }

  /** Bytes held for a frame that has not completed yet. */
  get buffered(): number {
    return this.#filled;
  }

  push(chunk: Uint8Array): void {
    if (this.#failed) throw this.#failed;
    try {
      this.#push(chunk);
    } catch (err) {
      this.#failed =
        err instanceof FrameError
          ? err
          : new FrameError(`frame decoding failed: ${(err as Error).message}`, { cause: err });
      this.dispose();
      throw this.#failed;
    }
  }

  /** Drops the unfinished frame and returns its buffer to the budget. Idempotent. */
  dispose(): void {
    this.#budget?.release(this.#buf.length);
    this.#buf = new Uint8Array(0);
    this.#filled = 0;
    this.#need = -1;
  }

  #push(chunk: Uint8Array): void {
    const end = chunk.length;
    let pos = this.#filled > 0 ? this.#continue(chunk, 0) : 0;
    // Whole frames straight out of the chunk, without copying.
    while (end - pos >= HEADER) {
      const len = readLength(chunk, pos);
      checkLength(len, this.#maxFrame);
      if (end - pos > HEADER) checkFirstByte(chunk[pos + HEADER]!);
      if (end - pos - HEADER < len) break;
      const from = pos + HEADER;
      pos = from + len;
      this.#frame(chunk, from, pos);
    }
    if (pos < end) this.#continue(chunk, pos); // an unfinished frame: keep it
  }

  #frame(buf: Uint8Array, start: number, end: number): void {
    this.frames++;
    let message: Message;
    try {
      message = decodeBody(buf, start, end, this.#maxElements);
    } catch (err) {
      if (!(err instanceof InvalidMessageError) || !this.#onRefused) throw err;
      this.#onRefused(err);
      return;
    }
    this.#onMessage(message);
  }

  /** Adds `chunk[from…]` to the unfinished frame (checking its prefix and first byte as they arrive); returns where it stopped. */
  #continue(chunk: Uint8Array, from: number): number {
    let at = from;
    if (this.#filled < HEADER) {
      at += this.#append(chunk, at, HEADER - this.#filled);
      if (this.#filled < HEADER) return at;
      const len = readLength(this.#buf, 0);
      checkLength(len, this.#maxFrame);
      this.#need = HEADER + len;
    }
    if (at === chunk.length) return at;
    if (this.#filled === HEADER) checkFirstByte(chunk[at]!);
    at += this.#append(chunk, at, this.#need - this.#filled);
    if (this.#filled === this.#need) {
      const frame = this.#buf;
      const need = this.#need;
      this.#filled = 0;
      this.#need = -1;
      if (frame.length > KEEP_BUFFER) this.#resize(0); // do not hold on to big buffers
      this.#frame(frame, HEADER, need);
    }
    return at;
  }

  /**
   * Copies up to `max` bytes; the buffer grows with what actually arrived (doubling), never to the
   * announced length at once, so a peer announcing 10 MiB and sending little costs little.
   */
  #append(chunk: Uint8Array, at: number, max: number): number {
    const n = Math.min(max, chunk.length - at);
    const want = this.#filled + n;
    if (want > this.#buf.length) {
      let size = Math.max(256, this.#buf.length * 2);
      while (size < want) size *= 2;
      if (this.#need > 0) size = Math.min(size, Math.max(want, this.#need));
      this.#resize(size);
    }
    this.#buf.set(chunk.subarray(at, at + n), this.#filled);
    this.#filled += n;
    return n;
  }

  /** A buffer of `size` bytes holding what was filled, accounted in the budget (throws FrameError past it). */
  #resize(size: number): void {
    const old = this.#buf;
    if (this.#budget && size > old.length && !this.#budget.reserve(size - old.length)) {
      throw new FrameError(
        `unfinished frames would hold more than ${this.#budget.limit} bytes across this listener's connections (its buffer limit)`,
      );
    }
    if (size < old.length) this.#budget?.release(old.length - size);
    const next = new Uint8Array(size);
    if (this.#filled > 0) next.set(old.subarray(0, this.#filled));
    this.#buf = next;
  }
}

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
import { announcesMoreThan } from "../core/codec.ts";
import { InvalidMessageError, MAX_MESSAGE_ELEMENTS, Message, checkWireIds } from "../core/message.ts";
import { type BufferBudget, BufferBudgetError } from "./budget.ts";

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
    return (
      "these bytes are TLS, not converge frames: one side speaks TLS and the other plain TCP " +
      "(use tls:// on both sides, or neither)"
    );
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

/** Pieces of an unfinished frame smaller than this are copied together; larger ones are kept as they came. */
const SMALL_PIECE = 16 * 1024;
/** Capacity of the buffer small pieces are copied into (a new one is started when it is full). */
const SMALL_BUFFER = 64 * 1024;

/**
 * Feed it chunks; it calls `onMessage` for every complete frame, in order. On the first framing
 * error `push` throws a FrameError (a BufferBudgetError when the shared budget is exhausted) and
 * the decoder refuses everything after (the stream position is lost, so the connection must be
 * closed). Messages decoded before the error were delivered.
 *
 * An unfinished frame is held as the pieces it arrived in: a large piece is kept as it came (no
 * copy: the decoder may keep a reference to a chunk, so do not change a chunk after pushing it),
 * small ones are copied together, so a peer sending one byte at a time costs one buffer, not one
 * object per byte. What is held is counted in the budget by the memory it really pins (a piece's
 * whole backing buffer), and is joined once, when the frame completes. `dispose()` gives it all
 * back: call it when the connection closes.
 */
export class FrameDecoder {
  /** The length prefix as it arrives (a prefix can be split across chunks). */
  readonly #prefix = new Uint8Array(HEADER);
  /** Bytes of the unfinished frame so far, prefix included; `#need` is its full size once the prefix is known. */
  #filled = 0;
  #need = -1;
  /** The body so far: kept pieces, then `#small[0, #smallFilled)`. */
  #pieces: Uint8Array[] = [];
  #small: Uint8Array | null = null;
  #smallFilled = 0;
  /** Budget bytes held for the pieces and the small buffer. */
  #reserved = 0;
  #failed: FrameError | BufferBudgetError | null = null;
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
      // The budget's own error passes unwrapped, so that a transport counts it by its type.
      this.#failed =
        err instanceof FrameError || err instanceof BufferBudgetError
          ? err
          : new FrameError(`frame decoding failed: ${(err as Error).message}`, { cause: err });
      this.dispose();
      throw this.#failed;
    }
  }

  /** Drops the unfinished frame and returns what it held to the budget. Idempotent. */
  dispose(): void {
    this.#budget?.release(this.#reserved);
    this.#reserved = 0;
    this.#pieces = [];
    this.#small = null;
    this.#smallFilled = 0;
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

  /**
   * Adds `chunk[from…]` to the unfinished frame (checking its prefix and first byte as they
   * arrive); returns where it stopped.
   */
  #continue(chunk: Uint8Array, from: number): number {
    let at = from;
    if (this.#filled < HEADER) {
      while (this.#filled < HEADER && at < chunk.length) this.#prefix[this.#filled++] = chunk[at++]!;
      if (this.#filled < HEADER) return at;
      const len = readLength(this.#prefix, 0);
      checkLength(len, this.#maxFrame);
      this.#need = HEADER + len;
    }
    if (at === chunk.length) return at;
    if (this.#filled === HEADER) checkFirstByte(chunk[at]!);
    const n = Math.min(this.#need - this.#filled, chunk.length - at);
    const piece = chunk.subarray(at, at + n);
    this.#filled += n;
    if (this.#filled < this.#need) {
      // A frame that will not fit the decode budget is refused on its first piece, not after 10 MiB.
      if (this.#filled === HEADER + n && announcesMoreThan(piece, 0, n, this.#maxElements))
        throw new FrameError(
          `undecodable frame body: msgpack value holds more than ${this.#maxElements} elements ` +
            "(array items and map entries), the decode limit",
        );
      this.#keep(piece);
      return at + n;
    }
    // Complete: decode from the piece itself when it is the whole body, else join the pieces once.
    let body: Uint8Array;
    if (this.#pieces.length === 0 && this.#smallFilled === 0) body = piece;
    else if (this.#pieces.length === 0 && this.#small!.length === this.#smallFilled + n) {
      this.#small!.set(piece, this.#smallFilled);
      body = this.#small!;
    } else body = this.#join(piece);
    this.dispose();
    this.#frame(body, 0, body.length);
    return at + n;
  }

  #keep(piece: Uint8Array): void {
    if (piece.length >= SMALL_PIECE) {
      this.#sealSmall();
      // A piece pins its whole backing buffer: that is what it costs.
      this.#reserve(piece.buffer.byteLength);
      this.#pieces.push(piece);
      return;
    }
    if (!this.#small || this.#smallFilled + piece.length > this.#small.length) {
      this.#sealSmall();
      // Sized to what is left of the body: a small frame gets exactly its size (and needs no join).
      const size = Math.min(SMALL_BUFFER, this.#need - this.#filled + piece.length);
      this.#reserve(size);
      this.#small = new Uint8Array(size);
    }
    this.#small.set(piece, this.#smallFilled);
    this.#smallFilled += piece.length;
  }

  /** The small buffer so far becomes a piece (its reservation stays with it). */
  #sealSmall(): void {
    if (this.#small && this.#smallFilled > 0) this.#pieces.push(this.#small.subarray(0, this.#smallFilled));
    this.#small = null;
    this.#smallFilled = 0;
  }

  #reserve(n: number): void {
    this.#budget?.take(n);
    this.#reserved += n;
  }

  #join(last: Uint8Array): Uint8Array {
    this.#sealSmall();
    const body = new Uint8Array(this.#need - HEADER);
    let at = 0;
    for (const p of this.#pieces) {
      body.set(p, at);
      at += p.length;
    }
    body.set(last, at);
    return body;
  }
}

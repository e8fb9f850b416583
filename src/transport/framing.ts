/**
 * Frames on a stream: a 4-byte big-endian length, then the message's wire map (Message.encode()).
 * The same bytes travel as one binary WebSocket message.
 *
 * FrameDecoder is incremental: `data` events deliver arbitrary chunks, and a length prefix can
 * arrive split across two of them (the Python original loses whole connections exactly there).
 * Complete frames are decoded straight out of the chunk; only an unfinished frame is copied.
 */
import { DecodeError, TransportError } from "../core/errors.ts";
import { Message } from "../core/message.ts";

export const MAX_FRAME = 10 * 1024 * 1024;
const HEADER = 4;

/** A stream that broke the framing rules; the connection it came from must be closed. */
export class FrameError extends DecodeError {}

/** The length prefix followed by the message's wire map. */
export function encodeFrame(message: Message): Uint8Array {
  return frameBody(message.encode());
}

/** Prefixes an already encoded wire map with its length. */
export function frameBody(body: Uint8Array): Uint8Array {
  if (body.length > MAX_FRAME) throw new TransportError(`message of ${body.length} bytes exceeds the ${MAX_FRAME} byte (10 MiB) frame limit; it cannot be sent`);
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
 * up to 10 MiB that will never come.
 */
function checkLength(len: number, max: number): void {
  if (len === 0) throw new FrameError("zero-length frame");
  if (len > max) throw new FrameError(`frame of ${len} bytes exceeds the ${max} byte limit`);
}
function checkFirstByte(b: number): void {
  if ((b & 0xf0) !== 0x80 && b !== 0xde && b !== 0xdf) {
    throw new FrameError(`frame body does not start with a msgpack map (first byte 0x${b.toString(16).padStart(2, "0")})`);
  }
}

/** Decodes one complete frame (prefix included), as a WebSocket message carries it. */
export function decodeFrame(frame: Uint8Array, max = MAX_FRAME): Message {
  if (frame.length < HEADER) throw new FrameError(`frame of ${frame.length} bytes is shorter than its 4-byte length prefix`);
  const len = readLength(frame, 0);
  checkLength(len, max);
  if (len !== frame.length - HEADER) throw new FrameError(`length prefix says ${len} bytes but the frame carries ${frame.length - HEADER}`);
  checkFirstByte(frame[HEADER]!);
  return decodeBody(frame, HEADER, frame.length);
}

function decodeBody(buf: Uint8Array, start: number, end: number): Message {
  try {
    return Message.decode(buf, start, end);
  } catch (err) {
    throw new FrameError(`undecodable frame body: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Feed it chunks; it calls `onMessage` for every complete frame, in order. On the first framing
 * error `push` throws a FrameError and the decoder refuses everything after (the stream position
 * is lost, so the connection must be closed). Messages decoded before the error were delivered.
 */
export class FrameDecoder {
  /** Bytes of an unfinished frame: `partial[0, filled)`; `partial` is sized to the whole frame once its length is known. */
  #partial: Uint8Array | null = null;
  #filled = 0;
  #header = new Uint8Array(HEADER);
  #failed: FrameError | null = null;

  constructor(
    private readonly onMessage: (message: Message) => void,
    private readonly maxFrame = MAX_FRAME,
  ) {}

  /** Bytes held for a frame that has not completed yet. */
  get buffered(): number {
    return this.#filled;
  }

  push(chunk: Uint8Array): void {
    if (this.#failed) throw this.#failed;
    try {
      this.#push(chunk);
    } catch (err) {
      this.#failed = err instanceof FrameError ? err : new FrameError(`frame decoding failed: ${(err as Error).message}`, { cause: err });
      this.#partial = null;
      throw this.#failed;
    }
  }

  #push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    let pos = 0;
    const end = chunk.length;
    if (this.#filled > 0) pos = this.#continue(chunk);
    // Whole frames straight out of the chunk, without copying.
    while (end - pos >= HEADER) {
      const len = readLength(chunk, pos);
      checkLength(len, this.maxFrame);
      if (end - pos > HEADER) checkFirstByte(chunk[pos + HEADER]!);
      if (end - pos - HEADER < len) break;
      const message = decodeBody(chunk, pos + HEADER, pos + HEADER + len);
      pos += HEADER + len;
      this.onMessage(message);
    }
    if (pos < end) this.#keep(chunk, pos, end);
  }

  /** Appends to an unfinished frame; returns how many bytes of `chunk` it took. */
  #continue(chunk: Uint8Array): number {
    let taken = 0;
    if (this.#partial === null) {
      // Still collecting the 4-byte prefix.
      taken = Math.min(HEADER - this.#filled, chunk.length);
      this.#header.set(chunk.subarray(0, taken), this.#filled);
      this.#filled += taken;
      if (this.#filled < HEADER) return taken;
      const len = readLength(this.#header, 0);
      checkLength(len, this.maxFrame);
      this.#partial = new Uint8Array(HEADER + len);
      this.#partial.set(this.#header, 0);
      if (taken === chunk.length) return taken;
    }
    const frame = this.#partial;
    if (this.#filled === HEADER) checkFirstByte(chunk[taken]!);
    const n = Math.min(frame.length - this.#filled, chunk.length - taken);
    frame.set(chunk.subarray(taken, taken + n), this.#filled);
    this.#filled += n;
    taken += n;
    if (this.#filled === frame.length) {
      this.#partial = null;
      this.#filled = 0;
      this.onMessage(decodeBody(frame, HEADER, frame.length));
    }
    return taken;
  }

  /** Keeps the tail of a chunk: a frame whose prefix or body is incomplete. */
  #keep(chunk: Uint8Array, pos: number, end: number): void {
    const rest = end - pos;
    if (rest < HEADER) {
      this.#header.set(chunk.subarray(pos, end), 0);
      this.#partial = null;
      this.#filled = rest;
      return;
    }
    const len = readLength(chunk, pos);
    this.#partial = new Uint8Array(HEADER + len);
    this.#partial.set(chunk.subarray(pos, end), 0);
    this.#filled = rest;
  }
}

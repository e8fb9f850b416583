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
 * up to 10 MiB that will never come.
 */
function checkLength(len: number, max: number): void {
  if (len === 0) throw new FrameError("zero-length frame");
  if (len > max) throw new FrameError(`frame of ${len} bytes exceeds the ${max} byte limit`);
}
function checkFirstByte(b: number): void {
  if ((b & 0xf0) !== 0x80 && b !== 0xde && b !== 0xdf) {
    throw new FrameError(
      `frame body does not start with a msgpack map (first byte 0x${b.toString(16).padStart(2, "0")})`,
    );
  }
}

/** Decodes one complete frame (prefix included), as a WebSocket message carries it. */
export function decodeFrame(frame: Uint8Array, max = MAX_FRAME): Message {
  if (frame.length < HEADER)
    throw new FrameError(`frame of ${frame.length} bytes is shorter than its 4-byte length prefix`);
  const len = readLength(frame, 0);
  checkLength(len, max);
  if (len !== frame.length - HEADER)
    throw new FrameError(`length prefix says ${len} bytes but the frame carries ${frame.length - HEADER}`);
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
  /** An unfinished frame, prefix included: `#buf[0, #filled)`; `#need` is its full size once the prefix is known. */
  #buf = new Uint8Array(0);
  #filled = 0;
  #need = -1;
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
      this.#failed =
        err instanceof FrameError
          ? err
          : new FrameError(`frame decoding failed: ${(err as Error).message}`, { cause: err });
      this.#buf = new Uint8Array(0);
      this.#filled = 0;
      throw this.#failed;
    }
  }

  #push(chunk: Uint8Array): void {
    const end = chunk.length;
    let pos = this.#filled > 0 ? this.#continue(chunk, 0) : 0;
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
    if (pos < end) this.#continue(chunk, pos); // an unfinished frame: keep it
  }

  /** Adds `chunk[from…]` to the unfinished frame (checking its prefix and first byte as they arrive); returns where it stopped. */
  #continue(chunk: Uint8Array, from: number): number {
    let at = from;
    if (this.#filled < HEADER) {
      at += this.#append(chunk, at, HEADER - this.#filled);
      if (this.#filled < HEADER) return at;
      const len = readLength(this.#buf, 0);
      checkLength(len, this.maxFrame);
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
      if (frame.length > 64 * 1024) this.#buf = new Uint8Array(0); // do not hold on to big buffers
      this.onMessage(decodeBody(frame, HEADER, need));
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
      const next = new Uint8Array(size);
      next.set(this.#buf.subarray(0, this.#filled));
      this.#buf = next;
    }
    this.#buf.set(chunk.subarray(at, at + n), this.#filled);
    this.#filled += n;
    return n;
  }
}

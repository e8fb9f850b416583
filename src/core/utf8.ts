/**
 * Fast UTF-8 for the msgpack codec, with the exact results of the strict TextEncoder/TextDecoder
 * pair it replaces.
 *
 * Buffer's raw `utf8Slice`/`utf8Write` work on any Uint8Array in Bun (oven-sh/bun#12491, as in
 * Node) and skip what makes TextDecoder slow on short strings: a subarray per call and a fatal
 * decoder. They are undocumented, so when missing we fall back to TextEncoder/TextDecoder.
 */

type RawSlice = (this: Uint8Array, start: number, end: number) => string;
type RawWrite = (this: Uint8Array, s: string, offset: number, max: number) => number;
const raw = Buffer.prototype as unknown as { utf8Slice?: RawSlice; utf8Write?: RawWrite };
const rawSlice = typeof raw.utf8Slice === "function" ? raw.utf8Slice : undefined;
const rawWrite = typeof raw.utf8Write === "function" ? raw.utf8Write : undefined;

const textEncoder = new TextEncoder();
/** The strict decoder. It keeps a leading U+FEFF, as Python does: a BOM in a string is data. */
const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Below this many bytes a JS loop over ASCII beats a native call. */
const SHORT = 16;

/**
 * Decodes `buf[start, end)` as UTF-8; undefined when the bytes are not valid UTF-8.
 * Lone surrogates in the input count as invalid, as TextDecoder's fatal mode says.
 */
export function readUtf8(buf: Uint8Array, start: number, end: number): string | undefined {
  if (end - start < SHORT) {
    const s = shortAscii(buf, start, end);
    if (s !== undefined) return s;
  }
  if (rawSlice) {
    const s = rawSlice.call(buf, start, end);
    // utf8Slice replaces bad sequences with U+FFFD where the strict decoder throws: any string
    // with one goes to the strict decoder to decide.
    if (s.indexOf("\uFFFD") === -1) return s;
  }
  try {
    return strictDecoder.decode(buf.subarray(start, end));
  } catch {
    return undefined;
  }
}

function shortAscii(buf: Uint8Array, start: number, end: number): string | undefined {
  let s = "";
  for (let i = start; i < end; i++) {
    const c = buf[i]!;
    if (c > 0x7f) return undefined;
    s += String.fromCharCode(c);
  }
  return s;
}

/**
 * Writes `s` as UTF-8 at `offset` (lone surrogates become U+FFFD, as TextEncoder does) and
 * returns the byte count. The caller guarantees room for `max` bytes, at least 3 per UTF-16 unit.
 */
export function utf8Write(buf: Uint8Array, s: string, offset: number, max: number): number {
  if (rawWrite) return rawWrite.call(buf, s, offset, max);
  return textEncoder.encodeInto(s, buf.subarray(offset, offset + max)).written;
}

/**
 * Canonical msgpack, byte-identical to Python's msgpack (use_bin_type=True): the smallest header
 * for every integer, string, array and map; uint64/int64 for wide integers (never float64);
 * float64 for every non-integer number; str for strings, bin for bytes, nil for null.
 * Maps keep insertion order. The decoder is strict: it throws DecodeError on anything it cannot
 * read completely, and never returns a partial value.
 *
 * Hand-written rather than msgpackr: signatures cover these exact bytes, and msgpackr's defaults
 * differ from Python's (map16 headers unless variableMapSize, float64 for integers above 2^32,
 * int64 for BigInt), so byte-equality would rest on configuration a release could change.
 *
 * Speed matters here (every message crosses this code twice per hop), so the hot paths write and
 * read bytes by hand instead of through a DataView (building one costs more than most of the
 * values it would read), and strings go through the native UTF-8 routines in ./utf8.ts.
 * test/core/equivalence.test.ts holds this file to the original, simpler implementation.
 */
import { DecodeError } from "./errors.ts";
import { BytesCache } from "./bytes-cache.ts";
import { readUtf8, utf8Write } from "./utf8.ts";

export type Packable =
  | null
  | undefined
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | readonly Packable[]
  | { readonly [key: string]: Packable };

const MAX_DEPTH = 256;
const TWO_32 = 0x1_0000_0000;
/** Upper 32 bits of a 64-bit integer whose value still fits a safe JS number (|v| < 2^53). */
const SAFE_HIGH = 0x20_0000;

/** Floats and bigints are rare: they go through one shared 8-byte DataView and are copied. */
const scratch8 = new Uint8Array(8);
const scratchView = new DataView(scratch8.buffer);

/** A growable byte buffer that writes canonical msgpack. */
export class MsgpackWriter {
  private buf: Uint8Array;
  pos = 0;

  constructor(initialSize = 256) {
    this.buf = new Uint8Array(initialSize);
  }

  /** The bytes written so far (a copy, safe to keep). */
  bytes(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }

  /** Forgets what was written, keeping the buffer for reuse. */
  reset(): void {
    this.pos = 0;
  }

  /** The buffer's size: the scratch writer drops a buffer that one huge value grew. */
  get capacity(): number {
    return this.buf.length;
  }

  private ensure(extra: number): void {
    const need = this.pos + extra;
    if (need <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }

  /** Skips `n` bytes (zeroed) for the caller to fill in once the rest is written, e.g. a length prefix. */
  reserve(n: number): void {
    this.ensure(n);
    const b = this.buf;
    for (let i = 0; i < n; i++) b[this.pos++] = 0;
  }

  u8(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }

  raw(bytes: Uint8Array): void {
    this.ensure(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  // Big-endian stores; the caller has ensured room. Uint8Array stores keep the low 8 bits.
  private be16(n: number): void {
    const b = this.buf;
    b[this.pos] = n >>> 8;
    b[this.pos + 1] = n;
    this.pos += 2;
  }

  private be32(n: number): void {
    const b = this.buf;
    b[this.pos] = n >>> 24;
    b[this.pos + 1] = n >>> 16;
    b[this.pos + 2] = n >>> 8;
    b[this.pos + 3] = n;
    this.pos += 4;
  }

  /** A 64-bit integer from a safe JS integer: high word by division, low word by ToUint32 (exact below 2^53). */
  private be64(n: number): void {
    this.be32(Math.floor(n / TWO_32));
    this.be32(n >>> 0);
  }

  private head(small: number, u8code: number, len: number, smallLimit: number): void {
    // small == -1: no fix form (bin); u8code == -1: no 8-bit form (array, map)
    this.ensure(5);
    if (small >= 0 && len < smallLimit) {
      this.buf[this.pos++] = small | len;
    } else if (u8code >= 0 && len < 0x100) {
      this.buf[this.pos++] = u8code;
      this.buf[this.pos++] = len;
    } else if (len < 0x10000) {
      this.buf[this.pos++] = u8code >= 0 ? u8code + 1 : small === 0x90 ? 0xdc : 0xde;
      this.be16(len);
    } else {
      this.buf[this.pos++] = u8code >= 0 ? u8code + 2 : small === 0x90 ? 0xdd : 0xdf;
      this.be32(len);
    }
  }

  mapHeader(len: number): void {
    this.head(0x80, -1, len, 16);
  }

  arrayHeader(len: number): void {
    this.head(0x90, -1, len, 16);
  }

  nil(): void {
    this.u8(0xc0);
  }

  str(s: string): void {
    const n = s.length;
    if (n < 16 && this.shortAscii(s)) return;
    // UTF-8 straight into the buffer. Each UTF-16 unit takes 1 to 3 bytes, so the header is sized
    // for n bytes first and the text moved along in the rare case the real length needs a longer one.
    this.ensure(5 + 3 * n);
    const guess = strHeaderSize(n);
    const len = utf8Write(this.buf, s, this.pos + guess, 3 * n);
    const size = strHeaderSize(len);
    if (size !== guess) this.buf.copyWithin(this.pos + size, this.pos + guess, this.pos + guess + len);
    this.head(0xa0, 0xd9, len, 32);
    this.pos += len;
  }

  /** Keys and short ids are mostly ASCII, and a JS loop beats a native call on a few bytes. */
  private shortAscii(s: string): boolean {
    const n = s.length;
    this.ensure(1 + n);
    const b = this.buf;
    const at = this.pos + 1;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c > 0x7f) return false;
      b[at + i] = c;
    }
    b[this.pos] = 0xa0 | n;
    this.pos = at + n;
    return true;
  }

  bin(b: Uint8Array): void {
    this.head(-1, 0xc4, b.length, 0);
    this.raw(b);
  }

  int(n: number): void {
    this.ensure(9);
    const b = this.buf;
    if (n >= 0) {
      if (n < 0x80) b[this.pos++] = n;
      else if (n < 0x100) {
        b[this.pos++] = 0xcc;
        b[this.pos++] = n;
      } else if (n < 0x10000) {
        b[this.pos++] = 0xcd;
        this.be16(n);
      } else if (n < TWO_32) {
        b[this.pos++] = 0xce;
        this.be32(n);
      } else {
        b[this.pos++] = 0xcf;
        this.be64(n);
      }
    } else {
      if (n >= -32) b[this.pos++] = n & 0xff;
      else if (n >= -0x80) {
        b[this.pos++] = 0xd0;
        b[this.pos++] = n;
      } else if (n >= -0x8000) {
        b[this.pos++] = 0xd1;
        this.be16(n);
      } else if (n >= -0x80000000) {
        b[this.pos++] = 0xd2;
        this.be32(n);
      } else {
        b[this.pos++] = 0xd3;
        this.be64(n);
      }
    }
  }

  bigint(n: bigint): void {
    if (n >= -(2n ** 63n) && n < 2n ** 64n) {
      if (n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER)) return this.int(Number(n));
      if (n >= 0n) {
        this.u8(0xcf);
        scratchView.setBigUint64(0, n);
      } else {
        this.u8(0xd3);
        scratchView.setBigInt64(0, n);
      }
      this.raw(scratch8);
      return;
    }
    throw new RangeError(`integer ${n} does not fit in 64 bits`);
  }

  float(n: number): void {
    this.u8(0xcb);
    scratchView.setFloat64(0, n);
    this.raw(scratch8);
  }

  value(v: Packable, depth = 0): void {
    if (depth > MAX_DEPTH) throw new RangeError(`value nests deeper than ${MAX_DEPTH} levels`);
    switch (typeof v) {
      case "string":
        return this.str(v);
      case "number":
        return Number.isSafeInteger(v) ? this.int(v) : this.float(v);
      case "boolean":
        return this.u8(v ? 0xc3 : 0xc2);
      case "bigint":
        return this.bigint(v);
      case "undefined":
        return this.nil();
      case "object": {
        if (v === null) return this.nil();
        if (v instanceof Uint8Array) return this.bin(v);
        if (Array.isArray(v)) {
          this.arrayHeader(v.length);
          for (const item of v) this.value(item, depth + 1);
          return;
        }
        const keys = Object.keys(v);
        this.mapHeader(keys.length);
        for (const k of keys) {
          this.str(k);
          this.value((v as Record<string, Packable>)[k], depth + 1);
        }
        return;
      }
      default:
        throw new TypeError(`cannot encode a ${typeof v} as msgpack`);
    }
  }
}

/** Header bytes of a str of `len` bytes. */
function strHeaderSize(len: number): number {
  return len < 32 ? 1 : len < 0x100 ? 2 : len < 0x10000 ? 3 : 5;
}

/**
 * One writer reused by every encode: a typical message then never grows a buffer, and only the
 * result is allocated. A getter or Proxy in a value could re-enter encoding; that inner call
 * gets a writer of its own instead of overwriting the outer one.
 */
const SCRATCH_SIZE = 4096;
const SCRATCH_KEEP = 64 * 1024;
let scratch = new MsgpackWriter(SCRATCH_SIZE);
let scratchBusy = false;

/** Runs `write` on a reset writer and returns a copy of what it wrote. */
export function encodeWith(write: (w: MsgpackWriter) => void): Uint8Array {
  if (scratchBusy) {
    const w = new MsgpackWriter();
    write(w);
    return w.bytes();
  }
  scratchBusy = true;
  const w = scratch;
  try {
    w.reset();
    write(w);
    return w.bytes();
  } finally {
    // Do not hold on to one huge value's buffer.
    if (w.capacity > SCRATCH_KEEP) scratch = new MsgpackWriter(SCRATCH_SIZE);
    scratchBusy = false;
  }
}

export function encode(value: Packable): Uint8Array {
  return encodeWith((w) => w.value(value));
}

/**
 * A strict msgpack reader over one buffer; `pos` may be read to slice out raw sub-values.
 *
 * `maxElements` is a decode budget: array elements and map entries, counted over everything this
 * reader decodes. A header announcing more than what is left is refused before anything is built,
 * so a small frame cannot make the decoder spend seconds on hundreds of thousands of keys.
 */
export class MsgpackReader {
  pos: number;
  /** What is left of the decode budget. */
  elementsLeft: number;

  constructor(
    readonly buf: Uint8Array,
    start = 0,
    readonly end = buf.length,
    readonly maxElements = Infinity,
  ) {
    this.pos = start;
    this.elementsLeft = maxElements;
  }

  /** Spends `n` of the decode budget, or throws DecodeError saying the limit. */
  private spend(n: number): void {
    this.elementsLeft -= n;
    if (this.elementsLeft < 0)
      throw new DecodeError(
        `msgpack value holds more than ${this.maxElements} elements (array items and map entries), the decode limit`,
      );
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  private need(n: number, what: string): void {
    if (this.pos + n > this.end) {
      throw new DecodeError(
        `truncated msgpack: ${what} needs ${n} bytes at offset ${this.pos}, ${this.end - this.pos} left`,
      );
    }
  }

  private byte(): number {
    this.need(1, "a type byte");
    return this.buf[this.pos++]!;
  }

  // Big-endian loads at p; the caller has checked the bounds.
  private u16(p: number): number {
    return (this.buf[p]! << 8) | this.buf[p + 1]!;
  }

  private u32(p: number): number {
    const b = this.buf;
    return b[p]! * 0x100_0000 + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!);
  }

  private i32(p: number): number {
    const b = this.buf;
    return (b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!;
  }

  /** Reads `size` bytes as an unsigned big-endian integer (a length) and moves past them. */
  private lenOf(size: 1 | 2 | 4, what: string): number {
    this.need(size, `the length of ${what}`);
    const p = this.pos;
    this.pos += size;
    return size === 1 ? this.buf[p]! : size === 2 ? this.u16(p) : this.u32(p);
  }

  /** Moves past `size` bytes that must be there and returns where they start. */
  private take(size: number, what: string): number {
    this.need(size, what);
    const p = this.pos;
    this.pos += size;
    return p;
  }

  /** Reads a map header and returns its entry count; throws if the next value is not a map. */
  mapLength(what: string): number {
    const b = this.byte();
    const n = (b & 0xf0) === 0x80 ? b & 0x0f : b === 0xde ? this.lenOf(2, what) : b === 0xdf ? this.lenOf(4, what) : -1;
    if (n < 0) {
      this.pos--;
      throw new DecodeError(`${what} must be a map, found ${typeName(b)}`);
    }
    this.spend(n);
    return n;
  }

  string(what: string): string {
    const v = this.value();
    if (typeof v !== "string") throw new DecodeError(`${what} must be a string, found ${describe(v)}`);
    return v;
  }

  /**
   * Consumes the next value if its encoding is exactly `encoded` (e.g. a known map key, header
   * included) and returns true; otherwise leaves the position alone. Saves building a string
   * only to compare it.
   */
  takeIfEqual(encoded: Uint8Array): boolean {
    const n = encoded.length;
    if (this.pos + n > this.end) return false;
    const b = this.buf;
    const p = this.pos;
    for (let i = 0; i < n; i++) if (b[p + i] !== encoded[i]) return false;
    this.pos = p + n;
    return true;
  }

  /** Skips one value without building it; returns its [start, end) byte range. */
  skip(): [number, number] {
    const start = this.pos;
    this.value();
    return [start, this.pos];
  }

  value(depth = 0): unknown {
    if (depth > MAX_DEPTH) throw new DecodeError(`msgpack nests deeper than ${MAX_DEPTH} levels`);
    const b = this.byte();
    if (b < 0x80) return b;
    if (b >= 0xe0) return b - 0x100;
    if ((b & 0xe0) === 0xa0) return this.utf8(b & 0x1f);
    if ((b & 0xf0) === 0x90) return this.array(b & 0x0f, depth);
    if ((b & 0xf0) === 0x80) return this.map(b & 0x0f, depth);
    switch (b) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
        return this.binary(this.lenOf(1, "bin"));
      case 0xc5:
        return this.binary(this.lenOf(2, "bin"));
      case 0xc6:
        return this.binary(this.lenOf(4, "bin"));
      case 0xca:
        return this.float(this.take(4, "float32"), 4);
      case 0xcb:
        return this.float(this.take(8, "float64"), 8);
      case 0xcc:
        return this.buf[this.take(1, "uint8")]!;
      case 0xcd:
        return this.u16(this.take(2, "uint16"));
      case 0xce:
        return this.u32(this.take(4, "uint32"));
      case 0xcf:
        return this.uint64(this.take(8, "uint64"));
      case 0xd0:
        return (this.buf[this.take(1, "int8")]! << 24) >> 24;
      case 0xd1:
        return (this.u16(this.take(2, "int16")) << 16) >> 16;
      case 0xd2:
        return this.i32(this.take(4, "int32"));
      case 0xd3:
        return this.int64(this.take(8, "int64"));
      case 0xd9:
        return this.utf8(this.lenOf(1, "str"));
      case 0xda:
        return this.utf8(this.lenOf(2, "str"));
      case 0xdb:
        return this.utf8(this.lenOf(4, "str"));
      case 0xdc:
        return this.array(this.lenOf(2, "array"), depth);
      case 0xdd:
        return this.array(this.lenOf(4, "array"), depth);
      case 0xde:
        return this.map(this.lenOf(2, "map"), depth);
      case 0xdf:
        return this.map(this.lenOf(4, "map"), depth);
      default:
        this.pos--;
        throw new DecodeError(`unsupported msgpack type 0x${b.toString(16)} at offset ${this.pos}`);
    }
  }

  // 64-bit integers come back as numbers when exact (safe integers), as bigint otherwise.
  private uint64(p: number): number | bigint {
    const hi = this.u32(p);
    const lo = this.u32(p + 4);
    return hi < SAFE_HIGH ? hi * TWO_32 + lo : (BigInt(hi) << 32n) | BigInt(lo);
  }

  private int64(p: number): number | bigint {
    const hi = this.i32(p);
    const lo = this.u32(p + 4);
    if (hi >= -SAFE_HIGH && hi < SAFE_HIGH) {
      const v = hi * TWO_32 + lo; // exact: |v| <= 2^53
      if (Number.isSafeInteger(v)) return v;
    }
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  private float(p: number, size: 4 | 8): number {
    for (let i = 0; i < size; i++) scratch8[i] = this.buf[p + i]!;
    return size === 4 ? scratchView.getFloat32(0) : scratchView.getFloat64(0);
  }

  private utf8(len: number): string {
    const start = this.take(len, "a string");
    const s = readUtf8(this.buf, start, start + len);
    if (s === undefined) throw new DecodeError(`invalid UTF-8 in a string at offset ${start}`);
    return s;
  }

  private binary(len: number): Uint8Array {
    const start = this.take(len, "bin data");
    return this.buf.slice(start, start + len);
  }

  private array(len: number, depth: number): unknown[] {
    // Each element takes at least one byte: refuse lengths the input cannot hold before allocating.
    this.need(len, "array elements");
    this.spend(len);
    const out = new Array(len);
    for (let i = 0; i < len; i++) out[i] = this.value(depth + 1);
    return out;
  }

  /** A short fixstr key through the key cache; undefined (nothing read) for any other key. */
  private shortKey(): string | undefined {
    if (this.pos >= this.end) return undefined;
    const len = this.buf[this.pos]! - 0xa0;
    if (len < 0 || len > KEY_MAX || this.pos + 1 + len > this.end) return undefined;
    const key = cachedKey(this.buf, this.pos + 1, len);
    if (key === undefined) return undefined; // invalid UTF-8: let the general path say so
    this.pos += 1 + len;
    return key;
  }

  /** Any other key: a long or non-fixstr string, or a number, boolean or nil turned into a string as JS would. */
  private otherKey(depth: number): string {
    const k = this.value(depth + 1);
    if (typeof k === "string") return k;
    if (typeof k === "number" || typeof k === "bigint" || typeof k === "boolean" || k === null) return String(k);
    throw new DecodeError(`map key at offset ${this.pos} must be a string or number, found ${describe(k)}`);
  }

  private map(len: number, depth: number): Record<string, unknown> {
    this.need(len * 2, "map entries");
    this.spend(len);
    const out: Record<string, unknown> = {};
    for (let i = 0; i < len; i++) {
      const key = this.shortKey() ?? this.otherKey(depth);
      const val = this.value(depth + 1);
      if (key === "__proto__")
        Object.defineProperty(out, key, { value: val, enumerable: true, writable: true, configurable: true });
      else out[key] = val;
    }
    return out;
  }
}

/**
 * Map keys repeat from message to message. Turning their bytes back into the very same string
 * is cheaper than building a new one, and much cheaper to use as a property name (JSC has
 * interned it already): a small payload map decodes about twice as fast. Short fixstr keys only.
 */
const KEY_MAX = 24;
const keyCache = new BytesCache<string>(1024);

function cachedKey(buf: Uint8Array, start: number, len: number): string | undefined {
  const end = start + len;
  const hit = keyCache.get(buf, start, end);
  if (hit !== undefined) return hit;
  const key = readUtf8(buf, start, end);
  if (key !== undefined) keyCache.set(buf, start, end, key);
  return key;
}

/**
 * Where the msgpack value at `buf[pos]` ends, found from its headers without building it (nor
 * checking its UTF-8 or depth); -1 when it is incomplete before `end` or holds an unsupported
 * type. For cache lookups: decode the value with MsgpackReader to get it, or its exact error.
 */
export function valueEnd(buf: Uint8Array, pos: number, end: number): number {
  const at = walk(buf, pos, end, Infinity);
  return at === OVER ? -1 : at;
}

/**
 * True when the container headers in `buf[pos, end)` (the start of a value, possibly cut short)
 * already announce more than `max` elements (array items and map entries) in all: the decode
 * budget would refuse the value, so a stream reader can refuse it before the rest arrives. Only
 * what is there is read; a value cut short is judged on its headers so far.
 */
export function announcesMoreThan(buf: Uint8Array, pos: number, end: number, max: number): boolean {
  return walk(buf, pos, end, max) === OVER;
}

const OVER = -2;

/**
 * The one walk over msgpack headers behind valueEnd and announcesMoreThan: the end of the value at
 * `pos`; -1 when it is cut short before `end` or holds an unsupported type; OVER as soon as its
 * containers announce more than `max` elements in all.
 */
function walk(buf: Uint8Array, pos: number, end: number, max: number): number {
  let pending = 1; // values still to pass, container elements included
  let announced = 0;
  while (pending > 0) {
    if (pos >= end) return -1;
    const b = buf[pos++]!;
    pending--;
    if (b < 0x80 || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) continue;
    if ((b & 0xe0) === 0xa0) {
      pos += b & 0x1f;
      continue;
    }
    let len: number;
    let map: boolean;
    if ((b & 0xf0) === 0x90 || (b & 0xf0) === 0x80) {
      len = b & 0x0f;
      map = (b & 0xf0) === 0x80;
    } else {
      const size = FIXED_SIZE[b - 0xc0] ?? 0;
      if (size > 0) {
        pos += size;
        continue;
      }
      const lenSize = LENGTH_SIZE[b - 0xc0] ?? 0;
      if (lenSize === 0 || pos + lenSize > end) return -1;
      len =
        lenSize === 1
          ? buf[pos]!
          : lenSize === 2
            ? (buf[pos]! << 8) | buf[pos + 1]!
            : buf[pos]! * 0x100_0000 + ((buf[pos + 1]! << 16) | (buf[pos + 2]! << 8) | buf[pos + 3]!);
      pos += lenSize;
      if (b < 0xdc) {
        pos += len; // bin, str
        continue;
      }
      map = b >= 0xde;
    }
    announced += len;
    if (announced > max) return OVER;
    pending += map ? 2 * len : len;
  }
  return pos <= end ? pos : -1;
}

// Indexed by type byte - 0xc0: bytes after the type byte of fixed-size values, and the length
// field's size for bin, str, array and map. 0: not that kind (or unsupported).
const FIXED_SIZE = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 8, 1, 2, 4, 8, 1, 2, 4, 8];
const LENGTH_SIZE = [0, 0, 0, 0, 1, 2, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 4, 2, 4, 2, 4];

function typeName(b: number): string {
  if (b < 0x80 || b >= 0xe0 || (b >= 0xcc && b <= 0xd3)) return "an integer";
  if ((b & 0xe0) === 0xa0 || (b >= 0xd9 && b <= 0xdb)) return "a string";
  if ((b & 0xf0) === 0x90 || b === 0xdc || b === 0xdd) return "an array";
  if ((b & 0xf0) === 0x80 || b === 0xde || b === 0xdf) return "a map";
  if (b === 0xc0) return "nil";
  if (b === 0xc2 || b === 0xc3) return "a boolean";
  if (b >= 0xc4 && b <= 0xc6) return "bin data";
  if (b === 0xca || b === 0xcb) return "a float";
  return `type 0x${b.toString(16)}`;
}

export function describe(v: unknown): string {
  if (v === null) return "nil";
  if (v instanceof Uint8Array) return "bin data";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object") return "a map";
  return `a ${typeof v}`;
}

/** Decodes exactly one value that must fill the whole buffer. */
export function decode(bytes: Uint8Array): unknown {
  const r = new MsgpackReader(bytes);
  const v = r.value();
  if (!r.done) throw new DecodeError(`${bytes.length - r.pos} trailing bytes after the msgpack value`);
  return v;
}

/**
 * FROZEN REFERENCE, not used at run time: src/core/codec.ts as of commit c801235, before the codec
 * was optimised. test/core/equivalence.test.ts checks the optimised code against it byte for byte
 * and value for value. Do not edit; delete it together with that test if it ever gets in the way.
 */
/**
 * Canonical msgpack, byte-identical to Python's msgpack (use_bin_type=True): the smallest header
 * for every integer, string, array and map; uint64/int64 for wide integers (never float64);
 * float64 for every non-integer number; str for strings, bin for bytes, nil for null.
 * Maps keep insertion order. The decoder is strict: it throws DecodeError on anything it cannot
 * read completely, and never returns a partial value.
 */
import { DecodeError } from "../../../src/core/errors.ts";

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

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** A growable byte buffer that writes canonical msgpack. */
export class MsgpackWriter {
  private buf: Uint8Array;
  private view: DataView;
  pos = 0;

  constructor(initialSize = 256) {
    this.buf = new Uint8Array(initialSize);
    this.view = new DataView(this.buf.buffer);
  }

  /** The bytes written so far (a copy, safe to keep). */
  bytes(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }

  private ensure(extra: number): void {
    const need = this.pos + extra;
    if (need <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
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
      this.view.setUint16(this.pos, len);
      this.pos += 2;
    } else {
      this.buf[this.pos++] = u8code >= 0 ? u8code + 2 : small === 0x90 ? 0xdd : 0xdf;
      this.view.setUint32(this.pos, len);
      this.pos += 4;
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
    // ASCII fast path: most keys and ids are ASCII, and encodeInto is costly for short strings.
    const n = s.length;
    if (n < 32) {
      let ascii = true;
      for (let i = 0; i < n; i++)
        if (s.charCodeAt(i) > 0x7f) {
          ascii = false;
          break;
        }
      if (ascii) {
        this.ensure(1 + n);
        this.buf[this.pos++] = 0xa0 | n;
        for (let i = 0; i < n; i++) this.buf[this.pos++] = s.charCodeAt(i);
        return;
      }
    }
    const bytes = textEncoder.encode(s);
    this.head(0xa0, 0xd9, bytes.length, 32);
    this.raw(bytes);
  }

  bin(b: Uint8Array): void {
    this.head(-1, 0xc4, b.length, 0);
    this.raw(b);
  }

  int(n: number): void {
    this.ensure(9);
    const v = this.view;
    if (n >= 0) {
      if (n < 0x80) this.buf[this.pos++] = n;
      else if (n < 0x100) {
        this.buf[this.pos++] = 0xcc;
        this.buf[this.pos++] = n;
      } else if (n < 0x10000) {
        this.buf[this.pos++] = 0xcd;
        v.setUint16(this.pos, n);
        this.pos += 2;
      } else if (n < 0x100000000) {
        this.buf[this.pos++] = 0xce;
        v.setUint32(this.pos, n);
        this.pos += 4;
      } else {
        this.buf[this.pos++] = 0xcf;
        v.setBigUint64(this.pos, BigInt(n));
        this.pos += 8;
      }
    } else {
      if (n >= -32) this.buf[this.pos++] = n & 0xff;
      else if (n >= -0x80) {
        this.buf[this.pos++] = 0xd0;
        v.setInt8(this.pos, n);
        this.pos += 1;
      } else if (n >= -0x8000) {
        this.buf[this.pos++] = 0xd1;
        v.setInt16(this.pos, n);
        this.pos += 2;
      } else if (n >= -0x80000000) {
        this.buf[this.pos++] = 0xd2;
        v.setInt32(this.pos, n);
        this.pos += 4;
      } else {
        this.buf[this.pos++] = 0xd3;
        v.setBigInt64(this.pos, BigInt(n));
        this.pos += 8;
      }
    }
  }

  bigint(n: bigint): void {
    if (n >= -(2n ** 63n) && n < 2n ** 64n) {
      if (n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER)) return this.int(Number(n));
      this.ensure(9);
      if (n >= 0n) {
        this.buf[this.pos++] = 0xcf;
        this.view.setBigUint64(this.pos, n);
      } else {
        this.buf[this.pos++] = 0xd3;
        this.view.setBigInt64(this.pos, n);
      }
      this.pos += 8;
      return;
    }
    throw new RangeError(`integer ${n} does not fit in 64 bits`);
  }

  float(n: number): void {
    this.ensure(9);
    this.buf[this.pos++] = 0xcb;
    this.view.setFloat64(this.pos, n);
    this.pos += 8;
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

const MAX_DEPTH = 256;

export function encode(value: Packable): Uint8Array {
  const w = new MsgpackWriter();
  w.value(value);
  return w.bytes();
}

/** A strict msgpack reader over one buffer; `pos` may be read to slice out raw sub-values. */
export class MsgpackReader {
  pos: number;
  private readonly view: DataView;

  constructor(
    readonly buf: Uint8Array,
    start = 0,
    readonly end = buf.length,
  ) {
    this.pos = start;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
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

  private lenOf(size: 1 | 2 | 4, what: string): number {
    this.need(size, `the length of ${what}`);
    const p = this.pos;
    this.pos += size;
    return size === 1 ? this.view.getUint8(p) : size === 2 ? this.view.getUint16(p) : this.view.getUint32(p);
  }

  /** Reads a map header and returns its entry count; throws if the next value is not a map. */
  mapLength(what: string): number {
    const b = this.byte();
    if ((b & 0xf0) === 0x80) return b & 0x0f;
    if (b === 0xde) return this.lenOf(2, what);
    if (b === 0xdf) return this.lenOf(4, what);
    this.pos--;
    throw new DecodeError(`${what} must be a map, found ${typeName(b)}`);
  }

  arrayLength(what: string): number {
    const b = this.byte();
    if ((b & 0xf0) === 0x90) return b & 0x0f;
    if (b === 0xdc) return this.lenOf(2, what);
    if (b === 0xdd) return this.lenOf(4, what);
    this.pos--;
    throw new DecodeError(`${what} must be an array, found ${typeName(b)}`);
  }

  string(what: string): string {
    const v = this.value();
    if (typeof v !== "string") throw new DecodeError(`${what} must be a string, found ${describe(v)}`);
    return v;
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
    const v = this.view;
    let p: number;
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
        this.need(4, "float32");
        p = this.pos;
        this.pos += 4;
        return v.getFloat32(p);
      case 0xcb:
        this.need(8, "float64");
        p = this.pos;
        this.pos += 8;
        return v.getFloat64(p);
      case 0xcc:
        this.need(1, "uint8");
        return this.buf[this.pos++]!;
      case 0xcd:
        this.need(2, "uint16");
        p = this.pos;
        this.pos += 2;
        return v.getUint16(p);
      case 0xce:
        this.need(4, "uint32");
        p = this.pos;
        this.pos += 4;
        return v.getUint32(p);
      case 0xcf:
        this.need(8, "uint64");
        p = this.pos;
        this.pos += 8;
        return wide(v.getBigUint64(p));
      case 0xd0:
        this.need(1, "int8");
        p = this.pos;
        this.pos += 1;
        return v.getInt8(p);
      case 0xd1:
        this.need(2, "int16");
        p = this.pos;
        this.pos += 2;
        return v.getInt16(p);
      case 0xd2:
        this.need(4, "int32");
        p = this.pos;
        this.pos += 4;
        return v.getInt32(p);
      case 0xd3:
        this.need(8, "int64");
        p = this.pos;
        this.pos += 8;
        return wide(v.getBigInt64(p));
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

  private utf8(len: number): string {
    this.need(len, "a string");
    const start = this.pos;
    this.pos += len;
    if (len < 48) {
      let s = "";
      for (let i = start; i < start + len; i++) {
        const c = this.buf[i]!;
        if (c > 0x7f) return this.utf8Slow(start, len);
        s += String.fromCharCode(c);
      }
      return s;
    }
    return this.utf8Slow(start, len);
  }

  private utf8Slow(start: number, len: number): string {
    try {
      return textDecoder.decode(this.buf.subarray(start, start + len));
    } catch {
      throw new DecodeError(`invalid UTF-8 in a string at offset ${start}`);
    }
  }

  private binary(len: number): Uint8Array {
    this.need(len, "bin data");
    const out = this.buf.slice(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }

  private array(len: number, depth: number): unknown[] {
    // Each element takes at least one byte: refuse lengths the input cannot hold before allocating.
    this.need(len, "array elements");
    const out = new Array(len);
    for (let i = 0; i < len; i++) out[i] = this.value(depth + 1);
    return out;
  }

  private map(len: number, depth: number): Record<string, unknown> {
    this.need(len * 2, "map entries");
    const out: Record<string, unknown> = {};
    for (let i = 0; i < len; i++) {
      const k = this.value(depth + 1);
      let key: string;
      if (typeof k === "string") key = k;
      else if (typeof k === "number" || typeof k === "bigint" || typeof k === "boolean" || k === null) key = String(k);
      else throw new DecodeError(`map key at offset ${this.pos} must be a string or number, found ${describe(k)}`);
      const val = this.value(depth + 1);
      if (key === "__proto__")
        Object.defineProperty(out, key, { value: val, enumerable: true, writable: true, configurable: true });
      else out[key] = val;
    }
    return out;
  }
}

/** 64-bit integers come back as numbers when exact, as bigint otherwise. */
function wide(n: bigint): number | bigint {
  return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
}

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

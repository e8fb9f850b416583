import { describe, expect, test } from "bun:test";
import { MsgpackReader, decode, encode } from "../../src/core/codec.ts";
import { Message } from "../../src/core/message.ts";
import { DecodeError } from "../../src/core/errors.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("canonical msgpack", () => {
  test("integers use the smallest form Python's msgpack uses", () => {
    const cases: [number | bigint, string][] = [
      [0, "00"],
      [127, "7f"],
      [128, "cc80"],
      [255, "ccff"],
      [256, "cd0100"],
      [65535, "cdffff"],
      [65536, "ce00010000"],
      [2 ** 32 - 1, "ceffffffff"],
      [2 ** 32, "cf0000000100000000"],
      [1700000000000, "cf0000018bcfe56800"],
      [-1, "ff"],
      [-32, "e0"],
      [-33, "d0df"],
      [-128, "d080"],
      [-129, "d1ff7f"],
      [-32768, "d18000"],
      [-32769, "d2ffff7fff"],
      [-(2 ** 31), "d280000000"],
      [-(2 ** 31) - 1, "d3ffffffff7fffffff"],
      [2n ** 64n - 1n, "cfffffffffffffffff"],
      [-(2n ** 63n), "d38000000000000000"],
    ];
    for (const [n, want] of cases) expect(`${n}:${hex(encode(n))}`).toBe(`${n}:${want}`);
  });

  test("non-integers are float64, never float32", () => {
    expect(hex(encode(0.5))).toBe("cb3fe0000000000000");
  });

  test("strings, bins, arrays and maps take their smallest headers", () => {
    expect(hex(encode("a".repeat(31))).slice(0, 2)).toBe("bf");
    expect(hex(encode("a".repeat(32))).slice(0, 4)).toBe("d920");
    expect(hex(encode("a".repeat(256))).slice(0, 6)).toBe("da0100");
    expect(hex(encode(new Uint8Array(3)))).toBe("c403000000");
    expect(hex(encode(new Array(15).fill(0))).slice(0, 2)).toBe("9f");
    expect(hex(encode(new Array(16).fill(0))).slice(0, 6)).toBe("dc0010");
    const wide = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`k${i}`, i]));
    expect(hex(encode(wide)).slice(0, 6)).toBe("de0010");
    expect(hex(encode({ b: 1, a: 2 }))).toBe("82a16201a16102");
  });

  test("round-trips nested data including unicode and wide integers", () => {
    const v = {
      s: "héllo ✓ 日本 😀",
      n: [1, -1, 2 ** 40, -(2 ** 40), 0.25],
      m: { x: null, t: true, f: false },
      b: new Uint8Array([1, 2]),
    };
    expect(decode(encode(v))).toEqual(v);
  });

  test("a map key named __proto__ is kept as data and does not change the prototype", () => {
    const bytes = new Uint8Array([0x81, 0xa9, ...Buffer.from("__proto__"), 0x81, 0xa1, 0x78, 0x01]);
    const v = decode(bytes) as Record<string, unknown>;
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
    expect(Object.keys(v)).toEqual(["__proto__"]);
    expect((v as { x?: unknown }).x).toBeUndefined();
  });

  test("truncated input, unknown types, bad UTF-8 and trailing bytes throw DecodeError", () => {
    const bad = ["", "92", "a5616263", "cd01", "c1", "d9ffab", "a2c328", "0101", "dd7fffffff"];
    for (const h of bad) expect(() => decode(new Uint8Array(Buffer.from(h, "hex")))).toThrow(DecodeError);
  });

  test("a value whose getter encodes while it is being encoded still encodes correctly", () => {
    const inner = { s: "inner", n: [1, 2, 3] };
    const outer = {
      a: "x".repeat(40),
      get b() {
        return decode(encode(inner));
      },
      c: 7,
    };
    expect(hex(encode(outer as never))).toBe(hex(encode({ a: "x".repeat(40), b: inner, c: 7 })));
  });

  test("absurd nesting is refused rather than overflowing the stack", () => {
    expect(() => decode(new Uint8Array(100_000).fill(0x91))).toThrow(/deeper/);
  });
});

describe("strings keep every character", () => {
  test("a leading U+FEFF (byte order mark) is data and survives decoding, as in Python", () => {
    for (const s of ["\uFEFFx", `\uFEFF${"long ".repeat(20)}`, "\uFEFF"]) expect(decode(encode(s))).toBe(s);
  });
});

describe("the decode budget", () => {
  test("when a value holds more array elements and map entries than the budget, it is refused before being built", () => {
    const wide = encode(Object.fromEntries(Array.from({ length: 1001 }, (_, i) => [`k${i}`, i])));
    const r = new MsgpackReader(wide, 0, wide.length, 1000);
    expect(() => r.value()).toThrow(/more than 1000 elements .* the decode limit/);
    // Nested containers count together: 10 arrays of 100 plus the outer 10 is 1010.
    const nested = encode(Array.from({ length: 10 }, () => Array.from({ length: 100 }, () => 0)));
    expect(() => new MsgpackReader(nested, 0, nested.length, 1009).value()).toThrow(DecodeError);
    expect((new MsgpackReader(nested, 0, nested.length, 1010).value() as unknown[]).length).toBe(10);
  });

  test("a message with 600,000 payload keys is refused at its map header under the default budget", () => {
    // The payload as a map32 of 600,000 one-character keys, spliced into a real message's wire map.
    const wide = new Uint8Array(5 + 600_000 * 3);
    wide.set([0xdf, 0x00, 0x09, 0x27, 0xc0]);
    for (let i = 5; i < wide.length; i += 3) wide.set([0xa1, 0x6b, 0x00], i);
    const wire = Buffer.from(new Message({ payload: { a: 0 } }).encode());
    const at = wire.indexOf(Buffer.from("81a16100", "hex"));
    const bytes = new Uint8Array(Buffer.concat([wire.subarray(0, at), wide, wire.subarray(at + 4)]));
    expect(() => Message.decode(bytes)).toThrow(/more than 100000 elements/);
    // The same bytes with a budget for all of it (600,000 entries and the wire map's 8 fields) decode (the last key wins).
    expect(Message.decode(bytes, 0, bytes.length, 600_008).payload).toEqual({ k: 0 });
  });
});

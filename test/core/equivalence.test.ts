/**
 * The optimised codec and Message against the original implementation (test/core/reference/):
 * the same bytes for every value and message, the same decoded values (types, key order,
 * prototypes, frozenness) and the same errors, word for word, for broken input. Seeded random
 * values cover what hand-picked cases miss; a failure prints its seed and case number.
 */
import { describe, expect, test } from "bun:test";
import { decode, encode, valueEnd, type Packable } from "../../src/core/codec.ts";
import { Identity } from "../../src/core/identity.ts";
import { Message } from "../../src/core/message.ts";
import { topic } from "../../src/core/topic.ts";
import * as ref from "./reference/codec.ts";
import { Message as RefMessage } from "./reference/message.ts";
import { vectors } from "../support/vectors.ts";

/** Thousands of cases per test: allow for a busy machine. */
const SLOW = 60_000;
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const bytes = (h: string) => new Uint8Array(Buffer.from(h, "hex"));

/** A deterministic PRNG (mulberry32), so a failing case can be replayed from its seed. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  return { next, int, pick };
}
type Rng = ReturnType<typeof rng>;

/** Everything observable about a decoded value, as a string: types, -0, key order, descriptors, prototypes, frozenness. */
function show(v: unknown): string {
  if (v === null) return "nil";
  if (v === undefined) return "undef";
  switch (typeof v) {
    case "number":
      return Object.is(v, -0) ? "n:-0" : `n:${v}`;
    case "bigint":
      return `b:${v}`;
    case "string":
      return JSON.stringify(v);
    case "boolean":
      return String(v);
    case "object":
      break;
    default:
      return `?${typeof v}`;
  }
  const frozen = Object.isFrozen(v) ? "F" : "";
  if (v instanceof Uint8Array) return `${v.constructor.name}(${hex(v)},off=${v.byteOffset},buf=${v.buffer.byteLength})`;
  if (Array.isArray(v)) return `${frozen}[${v.map(show).join(",")}]`;
  const proto = Object.getPrototypeOf(v) === Object.prototype ? "" : "PROTO!";
  const entries = Reflect.ownKeys(v).map((k) => {
    const d = Object.getOwnPropertyDescriptor(v, k)!;
    const flags = `${d.enumerable ? "e" : ""}${d.writable ? "w" : ""}${d.configurable ? "c" : ""}${"get" in d ? "G" : ""}`;
    return `${String(k)}/${flags}:${show(d.value)}`;
  });
  return `${proto}${frozen}{${entries.join(",")}}`;
}

/** Outcome of a call: its value shown, or its error's class and message. */
function outcome(fn: () => unknown): string {
  try {
    return `ok ${show(fn())}`;
  } catch (err) {
    return `throws ${(err as Error).constructor.name}: ${(err as Error).message}`;
  }
}

const INTS = [
  0,
  1,
  31,
  127,
  128,
  255,
  256,
  65535,
  65536,
  2 ** 31 - 1,
  2 ** 31,
  2 ** 32 - 1,
  2 ** 32,
  2 ** 32 + 1,
  1700000000000,
  2 ** 52,
  2 ** 53 - 1,
  -1,
  -31,
  -32,
  -33,
  -127,
  -128,
  -129,
  -32767,
  -32768,
  -32769,
  -(2 ** 31),
  -(2 ** 31) - 1,
  -(2 ** 32),
  -(2 ** 32) - 1,
  -(2 ** 53) + 1,
];
const FLOATS = [0.5, -0.5, -0, 1e300, -1e-300, 2 ** 53, -(2 ** 53), 2 ** 64, 1.5e19, NaN, Infinity, -Infinity, Math.PI];
const BIGINTS = [
  0n,
  5n,
  -5n,
  2n ** 53n,
  2n ** 53n - 1n,
  -(2n ** 53n),
  2n ** 63n,
  2n ** 64n - 1n,
  -(2n ** 63n),
  2n ** 32n,
];
const CHARS = [
  "a",
  "Z",
  "0",
  " ",
  "~",
  "\x00",
  "\x7f",
  "é",
  "ß",
  "✓",
  "日",
  "😀",
  "\ud800",
  "\udc00",
  "\ufeff",
  "\ufffd",
  "\u0080",
  "\u07ff",
  "\u0800",
];
const STR_LENGTHS = [0, 1, 2, 15, 16, 17, 31, 32, 33, 47, 48, 64, 85, 86, 255, 256, 1000, 21845, 21846, 65535, 65536];
const KEYS = ["id", "sender", "__proto__", "1", "0", "-1", "constructor", "toString", "k", "ключ", "", "a b"];

function randomString(r: Rng): string {
  const len = r.next() < 0.97 ? r.pick(STR_LENGTHS.slice(0, 14)) : r.pick(STR_LENGTHS); // big ones rarely: they are slow to compare
  const mode = r.int(4); // pure ASCII, mostly ASCII, any, one repeated char
  if (mode === 3)
    return r
      .pick(CHARS)
      .repeat(Math.ceil(len / 2))
      .slice(0, len);
  let s = "";
  for (let i = 0; i < len && s.length < len; i++) {
    if (mode === 0 || (mode === 1 && r.next() < 0.95)) s += String.fromCharCode(0x20 + r.int(95));
    else s += r.pick(CHARS);
  }
  return s.slice(0, len);
}

function randomValue(r: Rng, depth = 0): Packable {
  const kind = r.int(depth > 3 ? 7 : 10);
  switch (kind) {
    case 0:
      return r.pick([null, undefined, true, false]);
    case 1:
      return r.pick(INTS);
    case 2:
      return r.next() < 0.5 ? r.pick(INTS) + r.int(3) - 1 : r.int(2 ** 20) - 2 ** 19;
    case 3:
      return r.pick(FLOATS);
    case 4:
      return r.pick(BIGINTS);
    case 5:
    case 6:
      return randomString(r);
    case 7:
      return crypto.getRandomValues(
        new Uint8Array(r.next() < 0.97 ? r.pick([0, 1, 3, 64, 255, 256]) : r.pick([4096, 65535, 65536])),
      );
    case 8:
      return Array.from({ length: r.pick([0, 1, 2, 15, 16, 17]) }, () => randomValue(r, depth + 1));
    default: {
      const m: Record<string, Packable> = {};
      const n = r.pick([0, 1, 2, 3, 15, 16, 17]);
      for (let i = 0; i < n; i++) {
        const k = r.next() < 0.5 ? r.pick(KEYS) : randomString(r).slice(0, 12);
        Object.defineProperty(m, k, {
          value: randomValue(r, depth + 1),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return m;
    }
  }
}

/** Random damage to valid bytes: flipped and random bytes, truncation, insertion. */
function mutate(r: Rng, b: Uint8Array): Uint8Array {
  const out = Array.from(b);
  const edits = 1 + r.int(3);
  for (let e = 0; e < edits; e++) {
    const at = r.int(out.length + 1);
    switch (r.int(4)) {
      case 0:
        if (out.length) out[Math.min(at, out.length - 1)]! ^= 1 << r.int(8);
        break;
      case 1:
        if (out.length) out[Math.min(at, out.length - 1)] = r.int(256);
        break;
      case 2:
        out.length = at;
        break;
      default:
        out.splice(at, 0, r.pick([0xc1, 0xd9, 0xdc, 0xde, 0xcf, 0xd3, 0xff, 0x80, 0xc3, 0xa5, r.int(256)]));
    }
  }
  return new Uint8Array(out);
}

describe("the optimised codec equals the original", () => {
  test(
    "encode: the same bytes for random values (seeded)",
    () => {
      for (let seed = 1; seed <= 25; seed++) {
        const r = rng(seed);
        for (let i = 0; i < 100; i++) {
          const v = randomValue(r);
          const want = outcome(() => hex(ref.encode(v)));
          expect(`seed ${seed} case ${i}: ${outcome(() => hex(encode(v)))}`).toBe(`seed ${seed} case ${i}: ${want}`);
        }
      }
    },
    SLOW,
  );

  test(
    "encode: every string length and character class at the header boundaries",
    () => {
      for (const len of STR_LENGTHS) {
        for (const c of CHARS) {
          for (const s of [c.repeat(len), "a".repeat(Math.max(0, len - 1)) + c, c + "a".repeat(Math.max(0, len - 1))]) {
            expect(hex(encode(s))).toBe(hex(ref.encode(s)));
          }
        }
      }
    },
    SLOW,
  );

  test(
    "decode: the same values for valid input, the same errors for damaged input (seeded)",
    () => {
      for (let seed = 1; seed <= 25; seed++) {
        const r = rng(1000 + seed);
        for (let i = 0; i < 100; i++) {
          const good = ref.encode(randomValue(r));
          for (const b of [good, mutate(r, good), mutate(r, good)]) {
            expect(`seed ${seed} case ${i}: ${outcome(() => decode(b))}`).toBe(
              `seed ${seed} case ${i}: ${outcome(() => ref.decode(b))}`,
            );
          }
        }
      }
    },
    SLOW,
  );

  test(
    "valueEnd finds the end of every value, and refuses every incomplete one",
    () => {
      const r = rng(99);
      for (let i = 0; i < 300; i++) {
        const b = ref.encode(randomValue(r));
        const padded = new Uint8Array([...b, 0xc0, 0x01]);
        expect(`${i}: ${valueEnd(padded, 0, padded.length)}`).toBe(`${i}: ${b.length}`);
        for (const cut of new Set([0, 1, 2, b.length >> 1, b.length - 1]))
          if (cut < b.length) expect(`${i}/${cut}: ${valueEnd(b, 0, cut)}`).toBe(`${i}/${cut}: -1`);
      }
      expect(valueEnd(bytes("c1"), 0, 1)).toBe(-1);
      expect(valueEnd(bytes("d40100"), 0, 3)).toBe(-1); // ext types are not supported
    },
    SLOW,
  );

  test(
    "decode: random bytes fail or succeed alike",
    () => {
      const r = rng(7);
      for (let i = 0; i < 5000; i++) {
        const b = new Uint8Array(Array.from({ length: 1 + r.int(24) }, () => r.int(256)));
        expect(`case ${i} ${hex(b)}: ${outcome(() => decode(b))}`).toBe(
          `case ${i} ${hex(b)}: ${outcome(() => ref.decode(b))}`,
        );
      }
    },
    SLOW,
  );

  test(
    "decode: 64-bit integers at the safe-integer edges, non-canonical headers, floats",
    () => {
      const cases = [
        "cf001fffffffffffff",
        "cf0020000000000000",
        "cf0020000000000001",
        "cfffffffffffffffff",
        "cf0000000100000000",
        "d3ffe0000000000000",
        "d3ffe0000000000001",
        "d3ffdfffffffffffff",
        "d38000000000000000",
        "d37fffffffffffffff",
        "d3ffffffffffffffff",
        "d30000000000000000",
        "d3001fffffffffffff",
        "d30020000000000000",
        "cf0000000000000005",
        "cc05",
        "cd0005",
        "ce00000005",
        "d0ff",
        "d180",
        "d2ffffffff",
        "d9026869",
        "da00026869",
        "db000000026869",
        "c50003010203",
        "c600000003010203",
        "ca3f800000",
        "ca7fc00000",
        "cb7ff8000000000000",
        "cb8000000000000000",
        "de0001a161c0",
        "df00000001a161c0",
        "dc0001c0",
        "dd00000001c0",
        "81c0c0",
        "8101c0",
        "81cf0020000000000000c0",
        "81c3c0",
        "a3efbbbf",
        "a6efbbbf41efbb",
        "a3eda080",
        "a2c0af",
        "a4f4908080",
        "c4",
        "c5",
        "d9",
        "81",
        "9101",
      ];
      for (const h of cases)
        expect(`${h}: ${outcome(() => decode(bytes(h)))}`).toBe(`${h}: ${outcome(() => ref.decode(bytes(h)))}`);
    },
    SLOW,
  );
});

describe("the optimised Message equals the original", () => {
  const signers = [Identity.generate(), Identity.fromSeed(bytes(vectors.identities[0]!.seed_hex))];

  function randomInit(r: Rng) {
    const topics = Array.from({ length: r.pick([0, 1, 2, 3]) }, () => {
      const attrs: Record<string, unknown> = {};
      for (let i = r.int(4); i > 0; i--)
        attrs[r.pick(["host", "port", "kind", "b", "ü"])] = r.pick<unknown>([
          1,
          "x",
          true,
          null,
          9000,
          "127.0.0.1",
          2 ** 40,
        ]);
      return topic(r.pick(["jobs", "transport.tcp", "日本"]), attrs, r.pick(["1.0", "2"]));
    });
    const payload = randomValue(r);
    return {
      id: r.next() < 0.5 ? crypto.randomUUID() : randomString(r),
      recipient: r.pick([null, signers[0]!.fingerprint, "x"]),
      topics,
      payload: (payload && typeof payload === "object" && !Array.isArray(payload) && !(payload instanceof Uint8Array)
        ? payload
        : { v: payload }) as Record<string, unknown>,
      taskId: r.pick([null, "task-1", ""]),
      timestamp: r.pick([0, 1, 1700000000000, Date.now(), 2 ** 53 - 1, -5]),
    };
  }

  test(
    "signed bytes, signature, wire bytes and payload bytes match for random messages (seeded)",
    () => {
      for (let seed = 1; seed <= 10; seed++) {
        const r = rng(2000 + seed);
        for (let i = 0; i < 40; i++) {
          const init = randomInit(r);
          const signer = r.pick(signers);
          const sign = r.next() < 0.7;
          const ours = sign ? new Message(init).sign(signer) : new Message(init);
          const theirs = sign ? new RefMessage(init).sign(signer) : new RefMessage(init);
          const at = `seed ${seed} case ${i}`;
          expect(`${at}: ${hex(ours.signedBytes())}`).toBe(`${at}: ${hex(theirs.signedBytes())}`);
          expect(`${at}: ${hex(ours.encode())}`).toBe(`${at}: ${hex(theirs.encode())}`);
          expect(`${at}: ${hex(ours.encode())}`).toBe(`${at}: ${hex(theirs.encode())}`); // memoised
          expect(`${at}: ${hex(ours.payloadBytes())}`).toBe(`${at}: ${hex(theirs.payloadBytes())}`);
          expect(show(ours)).toBe(show(theirs));
        }
      }
    },
    SLOW,
  );

  /** A decoded message as observable: its fields (frozenness included), its encodings, verification. */
  function decoded(m: Message | RefMessage, key: Identity): string {
    const fields = {
      id: m.id,
      sender: m.sender,
      recipient: m.recipient,
      topics: m.topics,
      payload: m.payload,
      taskId: m.taskId,
      timestamp: m.timestamp,
      signature: m.signature,
    };
    return [
      show(fields),
      hex(m.payloadBytes()),
      hex(m.signedBytes()),
      hex(m.encode()),
      m.verify(key),
      Object.isFrozen(m),
    ].join(" | ");
  }

  test(
    "decoding valid and damaged wire maps gives the same message or the same error (seeded)",
    () => {
      for (let seed = 1; seed <= 10; seed++) {
        const r = rng(3000 + seed);
        for (let i = 0; i < 60; i++) {
          const signer = r.pick(signers);
          const wire = new RefMessage(randomInit(r)).sign(signer).encode();
          const framed = new Uint8Array(wire.length + 10);
          framed.set(wire, 3);
          for (const [b, s, e] of [
            [wire, 0, wire.length],
            [framed, 3, 3 + wire.length],
            ...Array.from({ length: 4 }, () => [mutate(r, wire), 0, undefined] as const),
          ] as const) {
            const at = `seed ${seed} case ${i}`;
            const ours = outcome(() => decoded(Message.decode(b, s, e), signer));
            expect(`${at}: ${ours}`).toBe(`${at}: ${outcome(() => decoded(RefMessage.decode(b, s, e), signer))}`);
          }
        }
      }
    },
    SLOW,
  );

  test(
    "hand-made wire maps: field order, unknown and repeated fields, odd topics",
    () => {
      const f = { id: "x", sender: "y", recipient: null, topics: [], payload: { a: 1 }, task_id: null, timestamp: 1 };
      const key = signers[0]!;
      const maps: Record<string, Packable>[] = [
        f,
        { ...f, signature: new Uint8Array(64) },
        Object.fromEntries(Object.entries(f).reverse()) as Record<string, Packable>,
        { extra: 1, ...f },
        { ...f, extra: [1, 2] },
        { ...f, topics: [{ namespace: "n" }] },
        { ...f, topics: [{ namespace: "n", attributes: null, version: null }] },
        { ...f, topics: [{ namespace: "n", attributes: new Uint8Array([7, 8]) }] },
        { ...f, topics: [{ namespace: "n", attributes: [] }] },
        { ...f, topics: [{ namespace: "n", attributes: { p: 1 }, version: "2", more: 1 }] },
        { ...f, topics: "no" },
        { ...f, timestamp: 1.5 },
        { ...f, timestamp: 2 ** 60 },
        { ...f, timestamp: 2n ** 60n },
        { ...f, timestamp: NaN },
        { ...f, payload: {} },
        { ...f, payload: { __proto__x: 1, "1": 2, b: 3 } },
        { ...f, recipient: 5 },
        { ...f, task_id: "t" },
        { id: "x" },
        {},
        { ...f, id: 1 },
        { ...f, sender: null },
      ];
      const cases = maps.map((m) => ref.encode(m));
      // Repeated keys, a non-string key, and a __proto__ payload key cannot be written as JS objects: splice them in.
      const w = new ref.MsgpackWriter();
      w.mapHeader(8);
      for (const [k, v] of Object.entries(f)) w.str(k), w.value(v as Packable);
      w.str("extra");
      w.nil();
      cases.push(new Uint8Array([0x89, ...ref.encode(f).subarray(1), 0xa2, 0x69, 0x64, 0xa1, 0x7a])); // id twice
      cases.push(new Uint8Array([0x8a, ...w.bytes().subarray(1), 0xa5, ...Buffer.from("extra"), 0xc0])); // unknown field twice
      cases.push(new Uint8Array([0x88, ...ref.encode(f).subarray(1), 0x07, 0xc0])); // integer key
      cases.push(bytes(hex(ref.encode(f)).replace("81a16101", "81a95f5f70726f746f5f5f81a17801")));
      for (const c of cases) {
        const ours = outcome(() => decoded(Message.decode(c), key));
        expect(`${hex(c)}: ${ours}`).toBe(`${hex(c)}: ${outcome(() => decoded(RefMessage.decode(c), key))}`);
      }
    },
    SLOW,
  );

  test(
    "the Python vectors decode alike",
    () => {
      for (const v of vectors.messages) {
        const signer = Identity.fromSeed(bytes(vectors.identities[v.signer]!.seed_hex));
        const frame = bytes(v.frame_hex);
        expect(decoded(Message.decode(frame, 4), signer)).toBe(decoded(RefMessage.decode(frame, 4), signer));
      }
    },
    SLOW,
  );
});

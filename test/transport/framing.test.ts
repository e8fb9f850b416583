import { describe, expect, test } from "bun:test";
import { TransportError } from "../../src/core/errors.ts";
import { Identity } from "../../src/core/identity.ts";
import { Message } from "../../src/core/message.ts";
import { topic } from "../../src/core/topic.ts";
import {
  FrameDecoder,
  FrameError,
  MAX_FRAME,
  decodeFrame,
  encodeFrame,
  frameBody,
} from "../../src/transport/framing.ts";
import { BufferBudget } from "../../src/transport/budget.ts";
import { lengthPrefix as prefix } from "../support/transport-util.ts";
import { fromHex, vectors } from "../support/vectors.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const id = Identity.generate();
const msg = (i: number) =>
  new Message({ topics: [topic("jobs", { n: i })], payload: { i, text: "x".repeat(i % 40) } }).sign(id);
const concat = (parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, at), (at += p.length);
  return out;
};

function collect(maxFrame?: number) {
  const got: Message[] = [];
  return { got, decoder: new FrameDecoder((m) => got.push(m), maxFrame) };
}

describe("frames", () => {
  test("a frame is the 4-byte big-endian body length followed by the wire map", () => {
    const m = msg(3);
    const f = encodeFrame(m);
    expect(new DataView(f.buffer).getUint32(0)).toBe(f.length - 4);
    expect(hex(f.subarray(4))).toBe(hex(m.encode()));
  });

  test("our frames for the Python vectors are byte-identical to the Python frames", () => {
    for (const v of vectors.messages) {
      const decoded = Message.decode(fromHex(v.frame_hex), 4);
      expect(hex(encodeFrame(decoded))).toBe(v.frame_hex);
    }
  });

  test("a message above 10 MiB cannot be framed for sending", () => {
    expect(() => frameBody(new Uint8Array(MAX_FRAME + 1))).toThrow(TransportError);
  });

  test("decodeFrame reads a whole frame and refuses a prefix that disagrees with the length", () => {
    const f = encodeFrame(msg(1));
    expect(decodeFrame(f).payload.i).toBe(1);
    expect(() => decodeFrame(f.subarray(0, f.length - 1))).toThrow(/length prefix says/);
    expect(() => decodeFrame(f.subarray(0, 3))).toThrow(FrameError);
  });
});

describe("FrameDecoder", () => {
  test("decodes every frame whatever the chunk boundaries, including a length prefix split across chunks", () => {
    const frames = [msg(1), msg(2), msg(3)].map(encodeFrame);
    const stream = concat(frames);
    // Every split point into two chunks, and every chunk size from 1 to 9 bytes.
    for (let cut = 0; cut <= stream.length; cut++) {
      const { got, decoder } = collect();
      decoder.push(stream.subarray(0, cut));
      decoder.push(stream.subarray(cut));
      expect(got.map((m) => m.payload.i)).toEqual([1, 2, 3]);
    }
    for (let size = 1; size < 10; size++) {
      const { got, decoder } = collect();
      for (let at = 0; at < stream.length; at += size) decoder.push(stream.subarray(at, at + size));
      expect(got.map((m) => m.payload.i)).toEqual([1, 2, 3]);
      expect(decoder.buffered).toBe(0);
    }
  });

  test("decoded messages keep their signatures valid", () => {
    const { got, decoder } = collect();
    decoder.push(encodeFrame(msg(7)));
    expect(got[0]!.verify(id.publicKey)).toBe(true);
  });

  test("holds an incomplete frame until the rest arrives", () => {
    const f = encodeFrame(msg(5));
    const { got, decoder } = collect();
    decoder.push(f.subarray(0, 10));
    expect(got).toHaveLength(0);
    expect(decoder.buffered).toBe(10);
    decoder.push(f.subarray(10));
    expect(got).toHaveLength(1);
  });

  test("refuses a length above the limit as soon as the prefix is read", () => {
    const { decoder } = collect();
    expect(() => decoder.push(prefix(MAX_FRAME + 1))).toThrow(/exceeds the 10485760 byte limit/);
  });

  test("refuses an oversized length whose prefix arrives split", () => {
    const { decoder } = collect();
    const p = prefix(0xffffffff);
    decoder.push(p.subarray(0, 2));
    expect(() => decoder.push(p.subarray(2))).toThrow(FrameError);
  });

  test("refuses a zero length", () => {
    const { decoder } = collect();
    expect(() => decoder.push(prefix(0))).toThrow(/zero-length/);
  });

  test("refuses a body that does not start with a msgpack map without waiting for it", () => {
    const { decoder } = collect();
    expect(() => decoder.push(concat([prefix(1000), new Uint8Array([0x01])]))).toThrow(
      /does not start with a msgpack map/,
    );
  });

  test("checks the body's first byte even when it arrives in a later chunk than the prefix", () => {
    const { decoder } = collect();
    decoder.push(prefix(1000));
    expect(decoder.buffered).toBe(4);
    expect(() => decoder.push(new Uint8Array([0x01, 0x02]))).toThrow(/does not start with a msgpack map/);
  });

  test("reports an undecodable body and refuses everything after it", () => {
    const { got, decoder } = collect();
    const bad = concat([prefix(3), new Uint8Array([0x81, 0xa1, 0x78])]); // {"x": <missing>}
    expect(() => decoder.push(concat([encodeFrame(msg(1)), bad, encodeFrame(msg(2))]))).toThrow(
      /undecodable frame body/,
    );
    expect(got.map((m) => m.payload.i)).toEqual([1]); // delivered before the bad frame
    expect(() => decoder.push(encodeFrame(msg(3)))).toThrow(FrameError);
    expect(got).toHaveLength(1);
  });

  test("a lower limit applies to frames that are otherwise valid", () => {
    const { decoder } = collect(100);
    expect(() => decoder.push(encodeFrame(msg(1)))).toThrow(/exceeds the 100 byte limit/);
  });
});

describe("FrameDecoder under hostile input", () => {
  const big = (n: number) => new Message({ payload: { blob: "b".repeat(n) } }).sign(id);

  test("a frame arriving in many pieces, large and small, decodes whole and gives its memory back", () => {
    const budget = new BufferBudget(64 * 1024 * 1024);
    const got: Message[] = [];
    const decoder = new FrameDecoder((m) => got.push(m), { budget });
    const frame = encodeFrame(big(3 * 1024 * 1024));
    const sizes = [1, 2, 3, 100, 70_000, 5, 1_000_000, 17, 40_000];
    let at = 0;
    for (let i = 0; at < frame.length; i++) {
      const n = sizes[i % sizes.length]!;
      decoder.push(frame.slice(at, at + n)); // each piece its own buffer, as a socket delivers them
      at += n;
      if (at < frame.length) expect(budget.used).toBeGreaterThanOrEqual(decoder.buffered - 4);
    }
    expect(got).toHaveLength(1);
    expect(got[0]!.payload.blob).toHaveLength(3 * 1024 * 1024);
    expect({ used: budget.used, buffered: decoder.buffered }).toEqual({ used: 0, buffered: 0 });
  });

  test("one byte at a time costs one small buffer, not one object per byte", () => {
    const budget = new BufferBudget(1024 * 1024);
    const decoder = new FrameDecoder(() => {}, { budget });
    const frame = encodeFrame(big(500_000));
    for (let i = 0; i < 200_000; i++) decoder.push(frame.subarray(i, i + 1));
    // 200,000 bytes held in 64 KiB buffers: four of them.
    expect(budget.used).toBe(4 * 64 * 1024);
    decoder.dispose();
    expect(budget.used).toBe(0);
  });

  test("when connections sharing a budget hold too much, the one that would exceed it fails and the others go on", () => {
    const budget = new BufferBudget(3 * 1024 * 1024);
    const frame = encodeFrame(big(2 * 1024 * 1024));
    const half = (d: FrameDecoder) => d.push(frame.slice(0, 1024 * 1024 + 4));
    const [a, b, c] = [0, 1, 2].map(() => new FrameDecoder(() => {}, { budget }));
    half(a!);
    half(b!);
    expect(() => half(c!)).toThrow(/would hold more than 3145728 bytes across this listener's connections/);
    expect(budget.used).toBe(2 * (1024 * 1024 + 4)); // each piece pins the buffer it came in
    a!.dispose(); // a connection closes: its bytes come back, and a new one fits
    const d = new FrameDecoder(() => {}, { budget });
    half(d);
    expect(budget.used).toBe(2 * (1024 * 1024 + 4)); // each piece pins the buffer it came in
  });

  test("a whole frame whose ids break the wire rules is refused and the stream goes on", () => {
    const got: Message[] = [];
    const refused: string[] = [];
    const decoder = new FrameDecoder((m) => got.push(m), { onRefused: (e) => refused.push(e.message) });
    const bad = encodeFrame(new Message({ id: "", payload: { i: 0 } }));
    decoder.push(concat([encodeFrame(msg(1)), bad, encodeFrame(msg(2))]));
    expect(got.map((m) => m.payload.i)).toEqual([1, 2]);
    expect(refused).toEqual(["message id is empty"]);
    // Without onRefused such a frame fails the stream like any other bad frame.
    expect(() => new FrameDecoder(() => {}).push(bad)).toThrow(FrameError);
  });

  test("a frame whose first piece announces more elements than the decode budget is refused before the rest arrives", () => {
    const budget = new BufferBudget(64 * 1024 * 1024);
    const decoder = new FrameDecoder(() => {}, { budget, maxElements: 1000 });
    const wide = encodeFrame(
      new Message({ payload: { list: Array.from({ length: 5000 }, (_, i) => i), pad: "p".repeat(50_000) } }),
    );
    expect(() => decoder.push(wide.slice(0, 200))).toThrow(/more than 1000 elements/);
    expect(budget.used).toBe(0);
    // Under the budget, the same frame in pieces decodes.
    const got: Message[] = [];
    const ok = new FrameDecoder((m) => got.push(m), { budget, maxElements: 5010 }); // the list, its map of two, the wire map of 8
    ok.push(wide.slice(0, 200));
    ok.push(wide.slice(200));
    expect(got[0]!.payload.list).toHaveLength(5000);
  });

  test("the decode budget applies per message", () => {
    const m = new Message({ payload: Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${i}`, i])) });
    // 50 payload entries and the wire map's 8 fields.
    expect(() => new FrameDecoder(() => {}, { maxElements: 57 }).push(encodeFrame(m))).toThrow(/more than 57 elements/);
    const got: Message[] = [];
    new FrameDecoder((x) => got.push(x), { maxElements: 58 }).push(concat([encodeFrame(m), encodeFrame(m)]));
    expect(got).toHaveLength(2);
  });

  test("a TLS handshake or an HTTP request on a plain stream is named as such", () => {
    const hello = new Uint8Array([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]);
    expect(() => new FrameDecoder(() => {}).push(hello)).toThrow(/these bytes are TLS, not converge frames/);
    const alert = new Uint8Array([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]);
    expect(() => new FrameDecoder(() => {}).push(alert)).toThrow(/one side speaks TLS and the other plain TCP/);
    const http = new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n");
    expect(() => new FrameDecoder(() => {}).push(http)).toThrow(/an HTTP request, not converge frames/);
  });
});

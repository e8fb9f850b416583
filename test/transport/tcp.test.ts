import { describe, expect, test } from "bun:test";
import type { Socket } from "bun";
import { Message } from "../../src/core/message.ts";
import { topic } from "../../src/core/topic.ts";
import { FrameDecoder, MAX_FRAME, encodeFrame } from "../../src/transport/framing.ts";
import { TcpTransport } from "../../src/transport/tcp.ts";
import { expectVectorMessage, fromHex, vectors } from "../support/vectors.ts";
import {
  captureLogs,
  collect,
  eventually,
  expectBurstTail,
  lengthPrefix as prefix,
  listeningServer,
} from "../support/transport-util.ts";
import { networkTransportContract } from "./network-contract.ts";

networkTransportContract({
  name: "TcpTransport",
  scheme: "tcp",
  topics: ["transport.tcp"],
  make: (o) => new TcpTransport(o),
});

/** A raw client socket that records whether the server closed it. */
async function raw(port: number): Promise<{ socket: Socket<undefined>; closed: Promise<void> }> {
  let onClose!: () => void;
  const closed = new Promise<void>((r) => (onClose = r));
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: { data() {}, close: () => onClose(), error() {} },
  });
  return { socket, closed };
}

/** Mulberry32: reproducible random bytes, so a failure can be replayed from its seed. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const listening = listeningServer(() => new TcpTransport());

describe("TcpTransport on the wire", () => {
  test("the Python original's frames sent over a real socket arrive as the expected messages and verify", async () => {
    const t = await listening();
    const arrived = collect(t, vectors.messages.length);
    const { socket } = await raw(t.port);
    // All frames in one stream, written in 7-byte pieces so that prefixes straddle writes.
    const stream = Buffer.concat(vectors.messages.map((v) => fromHex(v.frame_hex)));
    for (let at = 0; at < stream.length; at += 7) socket.write(stream.subarray(at, at + 7));
    socket.end();
    const got = await arrived;
    vectors.messages.forEach((v, i) => expectVectorMessage(got[i]!, v));
  });

  test("a burst large enough to fill the socket buffer goes through partial writes and drain", async () => {
    const t = await listening();
    const a = new TcpTransport({ listen: false });
    await a.start();
    try {
      const N = 20_000;
      const route = [topic("transport.tcp", { host: "127.0.0.1", port: t.port })];
      const pad = "p".repeat(1000);
      const arrived = collect(t, N, 20_000);
      await Promise.all(
        Array.from({ length: N }, (_, i) => a.send(new Message({ topics: route, payload: { i, pad } }))),
      );
      const got = await arrived;
      expect(got.every((m, i) => m.payload.i === i)).toBe(true);
      expect(a.stats.partialWrites).toBeGreaterThan(0);
    } finally {
      await a.stop();
    }
  });
});

describe("TcpTransport pooled connections", () => {
  test("a connection that dies with frames waiting is re-established once and the waiting frames go out on it", async () => {
    // A server that resets the first connection as soon as data arrives and serves the next one.
    let connections = 0;
    const survivors: Message[] = [];
    let resetFirst!: () => void;
    const firstReset = new Promise<void>((r) => (resetFirst = r));
    const l = Bun.listen<{ n: number; decoder: FrameDecoder }>({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        binaryType: "uint8array",
        open(s) {
          s.data = { n: ++connections, decoder: new FrameDecoder((m) => survivors.push(m)) };
        },
        data(s, chunk) {
          if (s.data.n === 1) {
            s.terminate();
            resetFirst();
          } else s.data.decoder.push(chunk as Uint8Array);
        },
      },
    });
    const a = new TcpTransport({ listen: false });
    await a.start();
    try {
      const N = 5000;
      const route = [topic("transport.tcp", { host: "127.0.0.1", port: l.port })];
      const pad = "p".repeat(4000); // ~20 MB: far more than the kernel takes before the reset
      const sends = Array.from({ length: N }, (_, i) => a.send(new Message({ topics: route, payload: { i, pad } })));
      const outcomes = await Promise.allSettled(sends);
      await firstReset;
      expect(outcomes.every((o) => o.status === "fulfilled")).toBe(true);
      expect(a.stats.reconnects).toBe(1);
      expect(connections).toBe(2);
      await expectBurstTail(survivors, N);
    } finally {
      await a.stop();
      l.stop(true);
    }
  }, 20_000);
});

describe("TcpTransport robustness", () => {
  test("1,000 random byte strings, truncated and oversized frames never crash the listener, a good message still arrives, and the warnings are a few lines and a count", async () => {
    const t = await listening();
    // The one good frame among the attacks (sent before garbage on its connection), then ours after.
    const arrived = collect(t, 2);
    const logs = captureLogs("warn");
    try {
      const random = rng(20260401);
      const good = encodeFrame(new Message({ payload: { ok: true } }));
      const attacks: Uint8Array[] = [];
      for (let i = 0; i < 1000; i++)
        attacks.push(Uint8Array.from({ length: 1 + Math.floor(random() * 600) }, () => Math.floor(random() * 256)));
      attacks.push(good.subarray(0, 2)); // prefix cut short
      attacks.push(good.subarray(0, good.length - 1)); // body cut short
      attacks.push(prefix(MAX_FRAME + 1)); // oversized
      attacks.push(prefix(0xffffffff));
      attacks.push(prefix(0));
      attacks.push(Buffer.concat([prefix(3), new Uint8Array([0x81, 0xa1, 0x78])])); // undecodable map
      attacks.push(Buffer.concat([good, prefix(40), new Uint8Array(40).fill(0x80)])); // good frame then garbage: the good one is delivered
      for (let i = 0; i < attacks.length; i += 100) {
        await Promise.all(
          attacks.slice(i, i + 100).map(async (bytes) => {
            const { socket, closed } = await raw(t.port);
            socket.write(bytes);
            socket.end();
            await closed;
          }),
        );
      }
      // The listener still serves: a well-formed message from a real transport arrives.
      const a = new TcpTransport({ listen: false });
      await a.start();
      await a.send(
        new Message({
          topics: [topic("transport.tcp", { host: "127.0.0.1", port: t.port })],
          payload: { after: "attacks" },
        }),
      );
      await a.stop();
      expect((await arrived).map((m) => m.payload)).toEqual([{ ok: true }, { after: "attacks" }]);
      expect(t.inbound.stats.badFrames).toBeGreaterThan(900);
      await eventually(() => t.inboundConnections === 0, 5000, "attack connections to close");
      const warnings = logs.lines.filter((l) => l.includes("WARN"));
      expect(warnings.length).toBeLessThanOrEqual(3);
      expect(warnings[0]).toContain("closed the connection from 127.0.0.1:");
      await t.stop(); // writes the count of what was held back
    } finally {
      logs.restore();
    }
    const summary = logs.lines.find((l) => / more like this in the last [\d.]+ s: /.test(l));
    expect(Number(summary?.match(/(\d+) more like this/)?.[1])).toBeGreaterThan(900);
  }, 30_000);

  test("an oversized frame closes that connection only; the sender on another connection is unaffected", async () => {
    const t = await listening();
    const logs = captureLogs("warn");
    try {
      const bad = await raw(t.port);
      const okay = await raw(t.port);
      const arrived = collect(t, 2);
      okay.socket.write(encodeFrame(new Message({ payload: { n: 1 } })));
      bad.socket.write(prefix(MAX_FRAME + 1));
      await bad.closed; // closed by the server, not by us
      okay.socket.write(encodeFrame(new Message({ payload: { n: 2 } })));
      expect((await arrived).map((m) => m.payload.n)).toEqual([1, 2]);
      okay.socket.end();
    } finally {
      logs.restore();
    }
    expect(logs.lines.join("")).toMatch(
      /WARN .*closed the connection from 127\.0\.0\.1:\d+: frame of 10485761 bytes exceeds/,
    );
  });

  test("a connection that ends in the middle of a frame is logged with the bytes discarded", async () => {
    const t = await listening();
    const logs = captureLogs("warn");
    try {
      const { socket } = await raw(t.port);
      socket.write(encodeFrame(new Message()).subarray(0, 30));
      socket.end();
      await eventually(
        () => logs.lines.some((l) => l.includes("closed in the middle of a frame; 30 bytes discarded")),
        2000,
        "the warning",
      );
    } finally {
      logs.restore();
    }
  });

  test("a frame exactly at the 10 MiB limit is accepted", async () => {
    const t = await listening();
    const a = new TcpTransport({ listen: false });
    await a.start();
    try {
      const base = new Message({
        topics: [topic("transport.tcp", { host: "127.0.0.1", port: t.port })],
        payload: { blob: "" },
      });
      const overhead = base.encode().length;
      const big = base.with({ payload: { blob: "b".repeat(MAX_FRAME - overhead - 4) } }); // str32 header is 4 bytes longer than fixstr
      expect(big.encode().length).toBe(MAX_FRAME);
      const arrived = collect(t, 1);
      await a.send(big);
      expect(((await arrived)[0]!.payload.blob as string).length).toBe(MAX_FRAME - overhead - 4);
      const tooBig = base.with({ payload: { blob: "b".repeat(MAX_FRAME) } });
      await expect(a.send(tooBig)).rejects.toThrow(/exceeds the 10485760 byte \(10 MiB\) frame limit/);
    } finally {
      await a.stop();
    }
  });

  test("stop closes every inbound connection", async () => {
    const t = await listening();
    const clients = await Promise.all([raw(t.port), raw(t.port), raw(t.port)]);
    await eventually(() => t.inboundConnections === 3, 2000, "3 connections");
    await t.stop();
    await Promise.all(clients.map((c) => c.closed));
    expect(t.inboundConnections).toBe(0);
  });
});

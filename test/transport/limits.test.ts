/**
 * The listener limits (transport/inbound.ts), the same for TCP and WebSocket: the connection limit,
 * the frame deadline, the idle timeout, the buffer budget shared by every connection, and the
 * decode budget. Raw sockets play the hostile peers (for WebSocket, after a real upgrade).
 */
import { afterEach, describe, expect, test } from "bun:test";
import type { Socket } from "bun";
import { Identity } from "../../src/core/identity.ts";
import { Message } from "../../src/core/message.ts";
import { topic } from "../../src/core/topic.ts";
import { encodeFrame } from "../../src/transport/framing.ts";
import type { ListenerLimits } from "../../src/transport/inbound.ts";
import { TcpTransport } from "../../src/transport/tcp.ts";
import { WebSocketTransport } from "../../src/transport/websocket.ts";
import { captureLogs, collect, eventually } from "../support/transport-util.ts";

type Listener = TcpTransport | WebSocketTransport;

interface Raw {
  socket: Socket<undefined>;
  closed: Promise<void>;
  isClosed: () => boolean;
}

interface Kind {
  name: string;
  make(limits: ListenerLimits): Listener;
  /** A connection ready for frames (for WebSocket: upgraded). */
  open(port: number): Promise<Raw>;
  /** The bytes that carry one converge frame on this kind of connection. */
  wire(frame: Uint8Array): Uint8Array;
  /** A message sent by the real transport. */
  topic: string;
}

async function rawSocket(port: number, onData?: (d: Uint8Array) => void): Promise<Raw> {
  let closed = false;
  let onClose!: () => void;
  const done = new Promise<void>((r) => (onClose = r));
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      binaryType: "uint8array",
      data: (_s, d) => onData?.(d as Uint8Array),
      close: () => {
        closed = true;
        onClose();
      },
      error() {},
    },
  });
  return { socket, closed: done, isClosed: () => closed };
}

/** A client frame with a zero mask key, so the payload goes as it is. */
function wsFrame(payload: Uint8Array): Uint8Array {
  const n = payload.length;
  const head = n < 126 ? [0x82, 0x80 | n] : n < 65536 ? [0x82, 0xfe, n >> 8, n & 0xff] : [0x82, 0xff, 0, 0, 0, 0];
  if (n >= 65536) head.push(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
  const out = new Uint8Array(head.length + 4 + n);
  out.set(head);
  out.set(payload, head.length + 4);
  return out;
}

const kinds: Kind[] = [
  {
    name: "TCP",
    make: (limits) => new TcpTransport({ limits }),
    open: (port) => rawSocket(port),
    wire: (frame) => frame,
    topic: "transport.tcp",
  },
  {
    name: "WebSocket",
    make: (limits) => new WebSocketTransport({ limits }),
    async open(port) {
      let text = "";
      let upgraded!: () => void;
      const ready = new Promise<void>((r) => (upgraded = r));
      const raw = await rawSocket(port, (d) => {
        text += new TextDecoder().decode(d);
        if (text.includes("\r\n\r\n")) upgraded();
      });
      raw.socket.write(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
      );
      await Promise.race([ready, raw.closed]);
      expect(text).toStartWith("HTTP/1.1 101 ");
      return raw;
    },
    wire: wsFrame,
    topic: "transport.ws",
  },
];

const signer = Identity.generate();
const good = (n: number) => new Message({ payload: { n } }).sign(signer);
const big = (bytes: number) => encodeFrame(new Message({ payload: { blob: "b".repeat(bytes) } }));

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function listening(kind: Kind, limits: ListenerLimits): Promise<Listener> {
  const t = kind.make(limits);
  await t.start();
  cleanups.push(() => t.stop());
  return t;
}

/** Sends `m` through a real transport of the same kind. */
async function sendGood(kind: Kind, to: Listener, m: Message): Promise<void> {
  const from = kind.name === "TCP" ? new TcpTransport({ listen: false }) : new WebSocketTransport({ listen: false });
  await from.start();
  try {
    await from.send(m.with({ topics: [topic(kind.topic, { host: "127.0.0.1", port: to.port })] }).sign(signer));
  } finally {
    await from.stop();
  }
}

function warnings(): string[] {
  const logs = captureLogs("warn");
  cleanups.push(logs.restore);
  return logs.lines;
}

for (const kind of kinds) {
  describe(`${kind.name} listener limits`, () => {
    test("when the connection limit is reached, a new connection is closed at once; one closing makes room", async () => {
      const logs = warnings();
      const t = await listening(kind, { maxConnections: 3 });
      const first = await Promise.all([0, 1, 2].map(() => kind.open(t.port)));
      await eventually(() => t.inbound.size === 3, 2000, "three connections");
      const fourth = await rawSocket(t.port);
      await fourth.closed;
      expect(t.inbound.stats.overLimit).toBe(1);
      expect(logs.some((l) => l.includes("3 connections are open (the limit)"))).toBe(true);
      first[0]!.socket.end();
      await eventually(() => t.inbound.size === 2, 2000, "the closed connection to be forgotten");
      const arrived = collect(t, 1);
      await sendGood(kind, t, good(1));
      expect((await arrived)[0]!.payload.n).toBe(1);
      for (const r of first) r.socket.end();
    });

    test("a connection trickling a frame one byte at a time is closed by the frame deadline", async () => {
      const logs = warnings();
      const t = await listening(kind, { frameDeadlineMs: 300 });
      const r = await kind.open(t.port);
      const bytes = kind.wire(big(1000));
      let at = 0;
      const trickle = setInterval(() => r.socket.write(bytes.subarray(at, ++at)), 50);
      cleanups.push(() => clearInterval(trickle));
      await r.closed;
      clearInterval(trickle);
      expect(t.inbound.stats.frameDeadline).toBe(1);
      expect(at).toBeLessThan(bytes.length);
      expect(logs.some((l) => /a frame did not complete within 0\.3 s of its first byte/.test(l))).toBe(true);
      expect(t.inbound.budget.used).toBe(0);
    });

    test("a connection that sends nothing is closed by the idle timeout; one that keeps sending frames is not", async () => {
      const t = await listening(kind, { idleTimeoutMs: 300, frameDeadlineMs: 60_000 });
      const silent = await kind.open(t.port);
      const busy = await kind.open(t.port);
      const keepAlive = setInterval(() => busy.socket.write(kind.wire(encodeFrame(good(0)))), 50);
      cleanups.push(() => clearInterval(keepAlive));
      await silent.closed;
      expect(t.inbound.stats.idle).toBe(1);
      expect(busy.isClosed()).toBe(false);
      clearInterval(keepAlive);
      busy.socket.end();
    });

    test("connections holding unfinished frames past the shared buffer limit are closed; closing gives the bytes back", async () => {
      const logs = warnings();
      const limit = 4 * 1024 * 1024;
      const t = await listening(kind, { maxBufferedBytes: limit });
      const frame = kind.wire(big(2 * 1024 * 1024));
      const holders = await Promise.all([0, 1, 2, 3].map(() => kind.open(t.port)));
      // Each sends three quarters of its frame and holds.
      for (const r of holders) r.socket.write(frame.subarray(0, (frame.length * 3) >> 2));
      await eventually(() => t.inbound.stats.overBudget >= 1, 5000, "a connection over the buffer limit");
      expect(t.inbound.budget.peak).toBeLessThanOrEqual(limit);
      expect(
        logs.some((l) => l.includes(`would hold more than ${limit} bytes across this listener's connections`)),
      ).toBe(true);
      for (const r of holders) r.socket.end();
      await eventually(() => t.inbound.budget.used === 0 && t.inbound.size === 0, 5000, "the budget to come back");
      const arrived = collect(t, 1);
      await sendGood(kind, t, good(2));
      expect((await arrived)[0]!.payload.n).toBe(2);
    });

    test("a message over the decode budget closes its connection; the listener keeps serving", async () => {
      const logs = warnings();
      const t = await listening(kind, { maxMessageElements: 1000 });
      const wide = new Message({ payload: Object.fromEntries(Array.from({ length: 1001 }, (_, i) => [`k${i}`, i])) });
      const r = await kind.open(t.port);
      r.socket.write(kind.wire(encodeFrame(wide)));
      await r.closed;
      expect(t.inbound.stats.badFrames).toBe(1);
      expect(logs.some((l) => l.includes("more than 1000 elements"))).toBe(true);
      const arrived = collect(t, 1);
      await sendGood(kind, t, good(3));
      expect((await arrived)[0]!.payload.n).toBe(3);
    });

    test("a whole frame whose ids break the wire rules is refused, and the next frame on that connection arrives", async () => {
      const logs = warnings();
      const t = await listening(kind, {});
      const arrived = collect(t, 1);
      const r = await kind.open(t.port);
      r.socket.write(kind.wire(encodeFrame(new Message({ sender: "not-an-id", payload: { bad: true } }))));
      r.socket.write(kind.wire(encodeFrame(good(4))));
      expect((await arrived)[0]!.payload.n).toBe(4);
      expect(t.inbound.stats.refusedMessages).toBe(1);
      expect(r.isClosed()).toBe(false);
      expect(logs.some((l) => l.includes('has sender "not-an-id", which is not an agent id'))).toBe(true);
      r.socket.end();
    });
  });
}

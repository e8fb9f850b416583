/** Our RFC 6455 server (transport/ws-server.ts) against a raw client: fragments, masks, ping, close, bad upgrades. */
import { afterEach, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { Message } from "../../src/core/message.ts";
import { encodeFrame } from "../../src/transport/framing.ts";
import { WebSocketTransport } from "../../src/transport/websocket.ts";
import { collect, eventually } from "../support/transport-util.ts";

const UPGRADE =
  "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

let server: WebSocketTransport | undefined;
afterEach(async () => {
  await server?.stop();
  server = undefined;
});

async function listening(): Promise<WebSocketTransport> {
  server = new WebSocketTransport();
  await server.start();
  return server;
}

/** A raw connection: everything the server sends, and when it closed. */
async function raw(port: number) {
  const received: number[] = [];
  let onClose!: () => void;
  const closed = new Promise<void>((r) => (onClose = r));
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: { data: (_s, d) => void received.push(...d), close: () => onClose(), error() {} },
  });
  const text = () => Buffer.from(received).toString("latin1");
  return { socket, received, closed, text };
}

/** A masked client frame with a random mask key. */
function frame(opcode: number, payload: Uint8Array, fin = true): Uint8Array {
  const n = payload.length;
  const head =
    n < 126
      ? [n]
      : n < 65536
        ? [126, n >> 8, n & 0xff]
        : [127, 0, 0, 0, 0, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
  const mask = randomBytes(4);
  const out = new Uint8Array(2 + head.length - 1 + 4 + n);
  out[0] = (fin ? 0x80 : 0) | opcode;
  out[1] = 0x80 | head[0]!;
  out.set(head.slice(1), 2);
  out.set(mask, 1 + head.length);
  const at = 1 + head.length + 4;
  for (let i = 0; i < n; i++) out[at + i] = payload[i]! ^ mask[i & 3]!;
  return out;
}

async function upgraded(port: number) {
  const c = await raw(port);
  c.socket.write(`${UPGRADE}Sec-WebSocket-Version: 13\r\n\r\n`);
  while (!c.text().includes("\r\n\r\n")) await Bun.sleep(1);
  expect(c.text()).toStartWith("HTTP/1.1 101 Switching Protocols\r\n");
  expect(c.text()).toContain("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"); // RFC 6455's example
  c.received.length = 0;
  return c;
}

describe("the WebSocket server", () => {
  test("a message in three fragments, with a ping between them, arrives whole; the ping is answered with its payload", async () => {
    const t = await listening();
    const arrived = collect(t, 1);
    const c = await upgraded(t.port);
    const bytes = encodeFrame(new Message({ payload: { blob: "z".repeat(100_000) } }));
    const parts = [bytes.subarray(0, 10), bytes.subarray(10, 70_000), bytes.subarray(70_000)];
    c.socket.write(frame(0x2, parts[0]!, false));
    c.socket.write(frame(0x9, new TextEncoder().encode("are you there")));
    c.socket.write(frame(0x0, parts[1]!, false));
    c.socket.write(frame(0x0, parts[2]!, true));
    expect((await arrived)[0]!.payload.blob).toHaveLength(100_000);
    await eventually(() => c.received.length >= 15, 2000, "the pong");
    expect(Buffer.from(c.received).toString("latin1")).toBe("\x8a\x0dare you there");
  });

  test("a close frame is answered with a close frame, and the connection ends", async () => {
    const t = await listening();
    const c = await upgraded(t.port);
    c.socket.write(frame(0x8, new Uint8Array([0x03, 0xe8])));
    await c.closed;
    expect(c.received.slice(0, 4)).toEqual([0x88, 0x02, 0x03, 0xe8]);
  });

  test("an unmasked client frame, and reserved bits (an extension never negotiated), close with 1002", async () => {
    const t = await listening();
    for (const bad of [new Uint8Array([0x82, 0x01, 0x00]), new Uint8Array([0xc2, 0x80, 0, 0, 0, 0])]) {
      const c = await upgraded(t.port);
      c.socket.write(bad);
      await c.closed;
      expect(c.received.slice(0, 4)).toEqual([0x88, c.received[1]!, 0x03, 0xea]);
    }
  });

  test("an upgrade with another protocol version is refused with 426 naming version 13", async () => {
    const t = await listening();
    const c = await raw(t.port);
    c.socket.write(`${UPGRADE}Sec-WebSocket-Version: 8\r\n\r\n`);
    await c.closed;
    expect(c.text()).toStartWith("HTTP/1.1 426 Upgrade Required\r\n");
    expect(c.text()).toContain("Sec-WebSocket-Version: 13\r\n");
  });

  test("an upgrade request larger than 8 KiB is refused with 431", async () => {
    const t = await listening();
    const c = await raw(t.port);
    c.socket.write(`GET / HTTP/1.1\r\nX-Big: ${"b".repeat(9000)}`);
    await c.closed;
    expect(c.text()).toStartWith("HTTP/1.1 431 ");
  });
});

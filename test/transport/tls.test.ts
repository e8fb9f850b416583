/**
 * TLS on the TCP transport (tls://) and the WebSocket transport (wss://), with the certificates in
 * test/fixtures/tls: the frames inside are the Python original's bytes both ways; mutual TLS;
 * untrusted and expired certificates; plaintext against TLS either way. Every refusal is one clear
 * line and the listener stays up.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { TransportError } from "../../src/core/errors.ts";
import { Message } from "../../src/core/message.ts";
import { topic } from "../../src/core/topic.ts";
import { endpoint } from "../../src/transport/endpoint.ts";
import { encodeFrame } from "../../src/transport/framing.ts";
import { sendFrameOnce } from "../../src/transport/send-once.ts";
import { TcpTransport } from "../../src/transport/tcp.ts";
import type { TlsOptions } from "../../src/transport/tls.ts";
import { WebSocketTransport } from "../../src/transport/websocket.ts";
import { captureLogs, collect, eventually } from "../support/transport-util.ts";
import { expectVectorMessage, fromHex, vectors } from "../support/vectors.ts";

const pem = (name: string) => readFileSync(join(import.meta.dir, "..", "fixtures", "tls", name), "utf8");
const ca = pem("ca.pem");
const server: TlsOptions = { cert: pem("server.pem"), key: pem("server.key"), ca };
const client: TlsOptions = { ca, cert: pem("client.pem"), key: pem("client.key") };
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function started<T extends TcpTransport | WebSocketTransport>(t: T): Promise<T> {
  await t.start();
  cleanups.push(() => t.stop());
  return t;
}

function warnings(): string[] {
  const logs = captureLogs("warn");
  cleanups.push(logs.restore);
  return logs.lines;
}

/** A raw TLS client that writes `bytes` once the handshake is done. */
async function tlsClientWrites(port: number, bytes: Uint8Array, tls: TlsOptions = { ca }): Promise<void> {
  const s = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    tls,
    socket: {
      data() {},
      handshake: (sock, ok) => {
        if (ok) sock.write(bytes);
      },
    },
  });
  cleanups.push(() => s.end());
}

/** The Python frames, one stream, in vector order. */
const pythonStream = () => new Uint8Array(Buffer.concat(vectors.messages.map((v) => fromHex(v.frame_hex))));

describe("TLS carries the same frames", () => {
  test("the Python original's frames sent through a TLS client socket arrive at a tls:// listener and verify", async () => {
    const t = await started(new TcpTransport({ tls: server }));
    expect(t.address).toBe(`tls://127.0.0.1:${t.port}`);
    const arrived = collect(t, vectors.messages.length);
    await tlsClientWrites(t.port, pythonStream());
    const got = await arrived;
    vectors.messages.forEach((v, i) => expectVectorMessage(got[i]!, v));
  });

  test("what the TCP transport sends over TLS is, byte for byte, the Python original's frames", async () => {
    const received: Uint8Array[] = [];
    const raw = Bun.listen({
      hostname: "127.0.0.1",
      port: 0,
      tls: { cert: server.cert!, key: server.key! },
      socket: { data: (_s, d) => void received.push(new Uint8Array(d)) },
    });
    cleanups.push(() => raw.stop(true));
    const at = `tls://127.0.0.1:${raw.port}`;
    const t = await started(new TcpTransport({ listen: false, tls: { ca }, resolve: () => at }));
    const decoded = vectors.messages.map((v) => Message.decode(fromHex(v.frame_hex), 4));
    // Framed and written as they are, then two sent by recipient through the resolver (tls://).
    for (const m of decoded) await t.sendFrame(endpoint("tls", "127.0.0.1", raw.port), encodeFrame(m));
    const direct = vectors.messages.filter(
      (v) => v.message.recipient && !v.message.topics.some((x) => x.namespace === "transport.tcp"),
    );
    for (const v of direct) await t.send(Message.decode(fromHex(v.frame_hex), 4));
    const expected = [...vectors.messages, ...direct].map((v) => v.frame_hex).join("");
    await eventually(() => received.reduce((n, c) => n + c.length, 0) >= expected.length / 2, 5000, "the bytes");
    expect(hex(new Uint8Array(Buffer.concat(received)))).toBe(expected);
  });

  test("the Python original's frames over wss:// arrive and verify, and a WebSocket transport's messages carry them unchanged", async () => {
    const t = await started(new WebSocketTransport({ tls: server }));
    expect(t.address).toBe(`wss://127.0.0.1:${t.port}`);
    const arrived = collect(t, vectors.messages.length * 2);
    const ws = new WebSocket(`wss://127.0.0.1:${t.port}/`, { tls: { ca } });
    await new Promise<void>((resolve, reject) => {
      ws.onopen = () => resolve();
      ws.onerror = () => reject(new Error("cannot connect"));
    });
    for (const v of vectors.messages) ws.send(fromHex(v.frame_hex));
    const from = await started(new WebSocketTransport({ listen: false, tls: { ca } }));
    for (const v of vectors.messages)
      await from.sendFrame(endpoint("wss", "127.0.0.1", t.port), encodeFrame(Message.decode(fromHex(v.frame_hex), 4)));
    const got = await arrived;
    ws.close();
    vectors.messages.forEach((v, i) => {
      expectVectorMessage(got[i]!, v);
      expectVectorMessage(got[i + vectors.messages.length]!, v);
      expect(hex(encodeFrame(got[i + vectors.messages.length]!))).toBe(v.frame_hex);
    });
  });
});

describe("mutual TLS", () => {
  for (const make of [
    (o: ConstructorParameters<typeof TcpTransport>[0]) => new TcpTransport(o),
    (o: ConstructorParameters<typeof WebSocketTransport>[0]) => new WebSocketTransport(o),
  ]) {
    test(`${make({ listen: false }).constructor.name}: a client certificate from the CA gets in; none, or one from another CA, is refused in one line and the listener stays up`, async () => {
      const logs = warnings();
      const t = await started(make({ tls: { ...server, requireClientCert: true } }));
      const ns = t instanceof TcpTransport ? "transport.tcp" : "transport.ws";
      const route = [topic(ns, { host: "127.0.0.1", port: t.port })];
      const arrived = collect(t, 1);
      for (const tls of [{ ca }, { ca, cert: pem("untrusted-client.pem"), key: pem("untrusted-client.key") }]) {
        const stranger = await started(make({ listen: false, tls }));
        // Over TLS 1.3 the client's side of the handshake completes before the listener checks its certificate.
        await stranger.send(new Message({ topics: route, payload: { from: "stranger" } })).catch(() => {});
      }
      await eventually(() => t.inbound.stats.tlsFailures === 2, 5000, "two refused handshakes");
      const refusals = logs.filter((l) => l.includes("TLS handshake failed"));
      expect(refusals).toHaveLength(2);
      expect(refusals[0]).toContain("presented no client certificate");
      expect(refusals[1]).toContain("the peer's client certificate is not signed by our CA");
      const friend = await started(make({ listen: false, tls: client }));
      await friend.send(new Message({ topics: route, payload: { from: "friend" } }));
      expect((await arrived).map((m) => m.payload.from)).toEqual(["friend"]);
    });
  }

  test("a one-shot send without a client certificate is told the listener requires one", async () => {
    const t = await started(new TcpTransport({ tls: { ...server, requireClientCert: true } }));
    const frame = encodeFrame(new Message());
    await expect(sendFrameOnce(endpoint("tls", "127.0.0.1", t.port), frame, { tls: { ca } })).rejects.toThrow(
      /TLS handshake failed: the peer requires a client certificate/,
    );
    const arrived = collect(t, 1);
    await sendFrameOnce(endpoint("tls", "127.0.0.1", t.port), encodeFrame(new Message({ payload: { ok: 1 } })), {
      tls: client,
    });
    expect((await arrived)[0]!.payload.ok).toBe(1);
  });
});

describe("bad certificates and the wrong protocol", () => {
  const once = (port: number, scheme: string, tls?: TlsOptions) =>
    sendFrameOnce(endpoint(scheme, "127.0.0.1", port), encodeFrame(new Message({ payload: { n: 1 } })), { tls });

  test("a listener whose certificate no trusted CA signed, or that has expired, is refused saying so", async () => {
    const untrusted = await started(
      new TcpTransport({ tls: { cert: pem("untrusted-server.pem"), key: pem("untrusted-server.key") } }),
    );
    const expired = await started(
      new TcpTransport({ tls: { cert: pem("expired-server.pem"), key: pem("expired-server.key") } }),
    );
    await expect(once(untrusted.port, "tls", { ca })).rejects.toThrow(
      /TLS handshake failed: the peer's certificate is not signed by a trusted CA/,
    );
    await expect(once(expired.port, "tls", { ca })).rejects.toThrow(
      /TLS handshake failed: the peer's certificate has expired/,
    );
    // The pooled transport says the same, naming the address.
    const t = await started(new TcpTransport({ listen: false, tls: { ca } }));
    const route = [topic("transport.tcp", { host: "127.0.0.1", port: expired.port })];
    await expect(t.send(new Message({ topics: route }))).rejects.toThrow(
      `cannot reach tls://127.0.0.1:${expired.port}: TLS handshake failed: the peer's certificate has expired`,
    );
  });

  test("a plaintext client against a TLS listener, and a TLS client against a plaintext one: one clear line each, and both listeners stay up", async () => {
    const logs = warnings();
    const secure = await started(new TcpTransport({ tls: server }));
    const plain = await started(new TcpTransport());
    const plainClient = once(secure.port, "tcp").catch((e: Error) => e);
    const tlsClient = once(plain.port, "tls", { ca }).catch((e: Error) => e);
    const [a, b] = await Promise.all([plainClient, tlsClient]);
    expect(a).toBeInstanceOf(TransportError);
    expect((a as Error).message).toMatch(/reset the connection .*if it listens with TLS, use tls:\/\//);
    expect((b as Error).message).toMatch(/TLS handshake failed: the peer does not speak TLS on this port/);
    await eventually(() => logs.length >= 2, 5000, "the two listeners' warnings");
    expect(logs.filter((l) => l.includes(secure.address!))).toEqual([
      expect.stringContaining("TLS handshake failed: the peer is not speaking TLS (a plaintext client?)"),
    ]);
    expect(logs.filter((l) => l.includes(plain.address!))).toEqual([
      expect.stringContaining("these bytes are TLS, not converge frames"),
    ]);
    const both = [collect(secure, 1), collect(plain, 1)];
    await once(secure.port, "tls", { ca });
    await once(plain.port, "tcp");
    for (const p of both) expect((await p)[0]!.payload.n).toBe(1);
  });

  test("a wss:// client against a plain ws:// listener, and the reverse, are refused clearly", async () => {
    const logs = warnings();
    const plain = await started(new WebSocketTransport());
    const secure = await started(new WebSocketTransport({ tls: server }));
    const tlsClient = await started(new WebSocketTransport({ listen: false, tls: { ca } }));
    const plainClient = await started(new WebSocketTransport({ listen: false }));
    const m = encodeFrame(new Message());
    await expect(tlsClient.sendFrame(endpoint("wss", "127.0.0.1", plain.port), m)).rejects.toThrow(
      /TLS handshake failed: the peer does not speak TLS on this port/,
    );
    await expect(plainClient.sendFrame(endpoint("ws", "127.0.0.1", secure.port), m)).rejects.toThrow(
      /cannot reach ws:\/\/127\.0\.0\.1:\d+: the peer reset the connection \(if it listens with TLS, dial wss:\/\/\)/,
    );
    await eventually(() => logs.length >= 2, 5000, "the listeners' warnings");
    expect(logs.some((l) => l.includes("the peer opened a TLS handshake, but this listener is plain ws://"))).toBe(
      true,
    );
  });

  test("a TLS listener without its key is refused when the transport is made", () => {
    expect(() => new TcpTransport({ tls: { cert: server.cert! } })).toThrow(
      /invalid TCP transport options: a TLS listener needs both a certificate \(cert\) and its key \(key\)/,
    );
    expect(() => new TcpTransport({ tls: { ...server, ca: undefined, requireClientCert: true } })).toThrow(
      /requiring client certificates needs the CA bundle/,
    );
  });
});

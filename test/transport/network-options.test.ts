/**
 * The options and state both network transports take from one place (network-transport.ts): port
 * checks, port and address before and after start, refusals to bind, the frame limit, and stop
 * letting frames that were sent but not awaited go out.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { Message } from "../../src/core/message.ts";
import { topic } from "../../src/core/topic.ts";
import { MAX_FRAME, encodeFrame } from "../../src/transport/framing.ts";
import { TcpTransport } from "../../src/transport/tcp.ts";
import type { Transport } from "../../src/transport/transport.ts";
import { WebSocketTransport } from "../../src/transport/websocket.ts";
import { captureLogs, collect, eventually } from "../support/transport-util.ts";

const kinds = [
  {
    name: "TcpTransport",
    label: "TCP",
    scheme: "tcp",
    ns: "transport.tcp",
    make: (o: ConstructorParameters<typeof TcpTransport>[0] = {}) => new TcpTransport(o),
  },
  {
    name: "WebSocketTransport",
    label: "WebSocket",
    scheme: "ws",
    ns: "transport.ws",
    make: (o: ConstructorParameters<typeof WebSocketTransport>[0] = {}) => new WebSocketTransport(o),
  },
];

let open: Transport[] = [];
afterEach(async () => {
  await Promise.all(open.map((t) => t.stop()));
  open = [];
});

for (const kind of kinds) {
  describe(`${kind.name} options and state`, () => {
    async function started(o: Parameters<typeof kind.make>[0] = {}) {
      const t = kind.make(o);
      open.push(t);
      await t.start();
      return t;
    }

    test("a port outside 0-65535, or not a whole number, is refused at construction, naming the transport", () => {
      for (const port of [-1, 65536, 1.5])
        expect(() => kind.make({ port })).toThrow(`invalid ${kind.label} port ${port} (expected 0-65535)`);
    });

    test("port and address: the configured port before start, the bound one while started, kept after stop", async () => {
      const t = kind.make();
      expect(t.port).toBe(0);
      expect(t.address).toBeNull();
      expect(t.started).toBe(false);
      await t.start();
      expect(t.started).toBe(true);
      const port = t.port;
      expect(port).toBeGreaterThan(0);
      expect(t.address).toBe(`${kind.scheme}://127.0.0.1:${port}`);
      await t.stop();
      expect(t.started).toBe(false);
      expect(t.port).toBe(port);
      expect(t.address).toBe(`${kind.scheme}://127.0.0.1:${port}`);
    });

    test("start is idempotent and a stopped transport starts again", async () => {
      const t = await started();
      await t.start();
      await t.stop();
      await t.start();
      expect(t.started).toBe(true);
      const b = await started();
      const arrived = collect(t, 1);
      await b.send(new Message({ topics: [topic(kind.ns, { host: "127.0.0.1", port: t.port })] }));
      expect(await arrived).toHaveLength(1);
    });

    test("a transport that only dials keeps its configured port and has no address", async () => {
      const t = await started({ listen: false, port: 4321 });
      expect(t.port).toBe(4321);
      expect(t.address).toBeNull();
    });

    test("sendFrame before start is refused, naming the transport", async () => {
      const t = kind.make();
      const to = { scheme: kind.scheme, host: "127.0.0.1", port: 1, address: `${kind.scheme}://127.0.0.1:1` };
      await expect(t.sendFrame(to, encodeFrame(new Message()))).rejects.toThrow(
        `the ${kind.label} transport is not started`,
      );
    });

    test("sends that were not awaited still go out when the sender stops", async () => {
      const b = await started();
      const a = kind.make();
      await a.start();
      const N = 1000;
      const arrived = collect(b, N);
      const route = [topic(kind.ns, { host: "127.0.0.1", port: b.port })];
      await a.send(new Message({ topics: route, payload: { i: 0 } })); // the pooled connection is up
      const sends = Array.from({ length: N - 1 }, (_, i) =>
        a.send(new Message({ topics: route, payload: { i: i + 1 } })),
      );
      await a.stop();
      expect((await Promise.allSettled(sends)).every((o) => o.status === "fulfilled")).toBe(true);
      expect((await arrived).map((m) => m.payload.i)).toEqual(Array.from({ length: N }, (_, i) => i));
      await expect(a.send(new Message({ topics: route }))).rejects.toThrow(/not started/);
    });

    test("maxFrame lowers the largest frame the listener accepts", async () => {
      const t = await started({ maxFrame: 1000 });
      const a = await started({ listen: false });
      const route = [topic(kind.ns, { host: "127.0.0.1", port: t.port })];
      const logs = captureLogs("warn");
      try {
        const arrived = collect(t, 1);
        await a.send(new Message({ topics: route, payload: { small: true } }));
        expect((await arrived)[0]!.payload.small).toBe(true);
        await a.send(new Message({ topics: route, payload: { big: "b".repeat(2000) } })).catch(() => {});
        await eventually(
          () => logs.lines.some((l) => l.includes("WARN") && l.includes("1000 byte")),
          2000,
          "a warning naming the 1000 byte limit",
        );
      } finally {
        logs.restore();
      }
      expect(MAX_FRAME).toBeGreaterThan(1000);
    });
  });
}

describe("binding refusals", () => {
  // 192.0.2.1 is TEST-NET-1: documentation only, never a local address.
  test("TCP: an address that is not local is named as such", async () => {
    const t = new TcpTransport({ host: "192.0.2.1" });
    await expect(t.start()).rejects.toThrow("cannot listen on 192.0.2.1: no such local address");
    expect(t.started).toBe(false);
  });

  test("WebSocket: an address that is not local is refused with the address it tried", async () => {
    const t = new WebSocketTransport({ host: "192.0.2.1" });
    await expect(t.start()).rejects.toThrow("cannot listen on ws://192.0.2.1:0: ");
    expect(t.started).toBe(false);
  });
});

describe("TcpTransport route", () => {
  test("is the host and port to reply to while listening, and null otherwise", async () => {
    const t = new TcpTransport();
    expect(t.route).toBeNull();
    await t.start();
    expect(t.route).toEqual({ host: "127.0.0.1", port: t.port });
    await t.stop();
    expect(t.route).toBeNull();
    const dialOnly = new TcpTransport({ listen: false });
    await dialOnly.start();
    expect(dialOnly.route).toBeNull();
    await dialOnly.stop();
  });
});

import { describe, expect, test } from "bun:test";
import { Message } from "../../src/core/message.ts";
import { topic } from "../../src/core/topic.ts";
import { MAX_FRAME, decodeFrame, encodeFrame } from "../../src/transport/framing.ts";
import { WebSocketTransport } from "../../src/transport/websocket.ts";
import { expectVectorMessage, fromHex, vectors } from "../support/vectors.ts";
import { captureLogs, collect, eventually, expectBurstTail, listeningServer } from "../support/transport-util.ts";
import { networkTransportContract } from "./network-contract.ts";

networkTransportContract({
  name: "WebSocketTransport",
  scheme: "ws",
  topics: ["transport.websocket", "transport.ws"],
  make: (o) => new WebSocketTransport(o),
});

const listening = listeningServer(() => new WebSocketTransport());

/** A raw WebSocket client; `closed` resolves with the close code the server chose. */
async function raw(port: number): Promise<{ ws: WebSocket; closed: Promise<number> }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
  const closed = new Promise<number>((r) => (ws.onclose = (ev) => r(ev.code)));
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error("cannot connect"));
  });
  return { ws, closed };
}

describe("WebSocketTransport on the wire", () => {
  test("each Python frame sent as one binary message arrives as the expected message and verifies", async () => {
    const t = await listening();
    const arrived = collect(t, vectors.messages.length);
    const { ws } = await raw(t.port);
    for (const v of vectors.messages) ws.send(fromHex(v.frame_hex));
    const got = await arrived;
    ws.close();
    vectors.messages.forEach((v, i) => expectVectorMessage(got[i]!, v));
  });
});

describe("WebSocketTransport refusals", () => {
  /** Sends something bad on a raw connection; returns the close code once the warning naming `why` is logged. */
  async function refused(send: (ws: WebSocket) => void, why: string): Promise<number> {
    const t = await listening();
    const logs = captureLogs("warn");
    let code: number;
    try {
      const { ws, closed } = await raw(t.port);
      send(ws);
      code = await closed;
      await eventually(
        () => logs.lines.some((l) => l.includes("WARN") && l.includes(why)),
        2000,
        `a warning saying "${why}"`,
      );
    } finally {
      logs.restore();
    }
    // The server keeps serving: a good frame on a new connection arrives.
    const arrived = collect(t, 1);
    const { ws } = await raw(t.port);
    ws.send(encodeFrame(new Message({ payload: { still: "serving" } })));
    expect((await arrived)[0]!.payload.still).toBe("serving");
    ws.close();
    return code;
  }

  test("garbage bytes close that connection (1007) with a warning", async () => {
    expect(
      await refused((ws) => ws.send(new Uint8Array([0, 0, 0, 3, 1, 2, 3])), "does not start with a msgpack map"),
    ).toBe(1007);
  });

  test("a frame whose length prefix disagrees with the message size closes that connection", async () => {
    const frame = encodeFrame(new Message());
    expect(await refused((ws) => ws.send(frame.subarray(0, frame.length - 2)), "length prefix says")).toBe(1007);
  });

  test("a text message closes that connection (1003)", async () => {
    expect(await refused((ws) => ws.send("hello"), "text message")).toBe(1003);
  });

  test("a message above the 10 MiB frame limit closes that connection (1009) with a warning", async () => {
    expect(
      await refused((ws) => ws.send(new Uint8Array(MAX_FRAME + 5)), "exceeded the 10485760 byte frame limit"),
    ).toBe(1009);
  });

  test("plain HTTP requests get 426 Upgrade Required", async () => {
    const t = await listening();
    const res = await fetch(`http://127.0.0.1:${t.port}/`);
    expect(res.status).toBe(426);
  });
});

describe("WebSocketTransport pooled connections", () => {
  test("a connection that dies with frames waiting is re-established once and the waiting frames go out on it", async () => {
    // A server that drops the first connection at its first message and serves the next one.
    let connections = 0;
    const survivors: Message[] = [];
    const peer = Bun.serve<{ n: number }>({
      hostname: "127.0.0.1",
      port: 0,
      fetch: (req, s) =>
        s.upgrade(req, { data: { n: ++connections } }) ? undefined : new Response("WebSocket only", { status: 426 }),
      websocket: {
        maxPayloadLength: MAX_FRAME + 4,
        message(ws, data) {
          if (ws.data.n === 1) ws.terminate();
          else survivors.push(decodeFrame(data as Uint8Array));
        },
      },
    });
    const a = new WebSocketTransport({ listen: false });
    await a.start();
    try {
      const N = 5000;
      const route = [topic("transport.ws", { host: "127.0.0.1", port: peer.port })];
      const pad = "p".repeat(4000); // ~20 MB: past the client's 4 MiB high-water mark, so frames wait in our queue
      const outcomes = await Promise.allSettled(
        Array.from({ length: N }, (_, i) => a.send(new Message({ topics: route, payload: { i, pad } }))),
      );
      expect(outcomes.every((o) => o.status === "fulfilled")).toBe(true);
      expect(connections).toBe(2);
      await expectBurstTail(survivors, N);
    } finally {
      await a.stop();
      peer.stop(true);
    }
  }, 20_000);

  test("frames waiting for a peer that is gone when the connection is re-established are all rejected, naming the address", async () => {
    // The peer drops the connection at its first message and stops listening: the reconnect is refused.
    const peer = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: (req, s) =>
        s.upgrade(req, { data: undefined }) ? undefined : new Response("WebSocket only", { status: 426 }),
      websocket: {
        maxPayloadLength: MAX_FRAME + 4,
        message: (ws) => {
          ws.terminate();
          void peer.stop(true);
        },
      },
    });
    const a = new WebSocketTransport({ listen: false });
    await a.start();
    try {
      const port = peer.port!; // read before the peer stops
      const route = [topic("transport.ws", { host: "127.0.0.1", port })];
      const pad = "p".repeat(4000);
      const outcomes = await Promise.allSettled(
        Array.from({ length: 5000 }, (_, i) => a.send(new Message({ topics: route, payload: { i, pad } }))),
      );
      const rejected = outcomes.filter((o): o is PromiseRejectedResult => o.status === "rejected");
      expect(rejected.length).toBeGreaterThan(0);
      // The frames handed to the client before the drop resolved; every one still waiting was rejected, after them.
      expect(outcomes.slice(outcomes.length - rejected.length).every((o) => o.status === "rejected")).toBe(true);
      expect(rejected.every((r) => r.reason.message.startsWith(`cannot reach ws://127.0.0.1:${port}: `))).toBe(true);
    } finally {
      await a.stop();
    }
  }, 20_000);
});

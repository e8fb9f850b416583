/** Two OS processes exchange signed messages over a real transport: none lost, all verify, order kept. */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { Identity } from "../../src/core/identity.ts";
import { Message } from "../../src/core/message.ts";
import { topic } from "../../src/core/topic.ts";
import { TcpTransport } from "../../src/transport/tcp.ts";
import type { Transport } from "../../src/transport/transport.ts";
import { WebSocketTransport } from "../../src/transport/websocket.ts";
import { collect, lineReader } from "../support/transport-util.ts";

const PEER = join(import.meta.dir, "..", "support", "transport-peer.ts");
const N = 20_000;

const kinds: { name: string; arg: "tcp" | "ws"; topic: string; make: () => Transport & { port: number } }[] = [
  { name: "TCP", arg: "tcp", topic: "transport.tcp", make: () => new TcpTransport() },
  { name: "WebSocket", arg: "ws", topic: "transport.ws", make: () => new WebSocketTransport() },
];

describe("two processes", () => {
  for (const kind of kinds) {
    test(`exchange ${N.toLocaleString("en-US")} signed messages over ${kind.name}: all arrive, all verify, order kept`, async () => {
      const me = Identity.generate();
      const local = kind.make();
      await local.start();
      const peer = Bun.spawn(
        [process.execPath, PEER, kind.arg, String(N), String(local.port), Buffer.from(me.publicKey).toString("hex")],
        {
          stdout: "pipe",
          stderr: "inherit",
        },
      );
      try {
        const line = lineReader(peer.stdout);
        const hello = JSON.parse(await line()) as { port: number; publicKey: string };
        const peerKey = Identity.fromPublicKey(new Uint8Array(Buffer.from(hello.publicKey, "hex")));
        const route = [topic(kind.topic, { host: "127.0.0.1", port: hello.port })];
        const outgoing = Array.from({ length: N }, (_, seq) =>
          new Message({ topics: route, payload: { seq } }).sign(me),
        );

        const replies = collect(local, N, 40_000);
        await Promise.all(outgoing.map((m) => local.send(m)));
        const got = await replies;

        expect(got.every((m, i) => m.payload.seq === i)).toBe(true);
        expect(got.every((m) => m.sender === peerKey.fingerprint && m.verify(peerKey))).toBe(true);
        expect(JSON.parse(await line())).toEqual({ received: N, verified: N, inOrder: true });
        expect(await peer.exited).toBe(0);
      } finally {
        peer.kill();
        await local.stop();
      }
    }, 50_000);
  }
});

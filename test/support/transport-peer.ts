/**
 * A peer process for cross-process transport tests. Usage:
 *   bun test/support/transport-peer.ts <tcp|ws> <count> <replyPort> <senderPublicKeyHex>
 * Listens on a free port and prints `{"address","port","publicKey"}` as its first line; then, for
 * each of `count` messages, checks its signature against the sender's key and its sequence number,
 * and replies with a message of its own (signed, same `seq`) to 127.0.0.1:<replyPort>. When done it
 * prints `{"received","verified","inOrder"}` and exits; exit code 1 if it gave up after 60 s.
 */
import { Identity } from "../../src/core/identity.ts";
import { Message } from "../../src/core/message.ts";
import { topic } from "../../src/core/topic.ts";
import { TcpTransport } from "../../src/transport/tcp.ts";
import { WebSocketTransport } from "../../src/transport/websocket.ts";

const [kind, countArg, replyPortArg, senderKeyHex] = process.argv.slice(2);
if ((kind !== "tcp" && kind !== "ws") || !countArg || !replyPortArg || !senderKeyHex) {
  console.error("usage: transport-peer.ts <tcp|ws> <count> <replyPort> <senderPublicKeyHex>");
  process.exit(2);
}
const count = Number(countArg);
const sender = Identity.fromPublicKey(new Uint8Array(Buffer.from(senderKeyHex, "hex")));
const me = Identity.generate();
const transport = kind === "tcp" ? new TcpTransport() : new WebSocketTransport();
const replyTo = [
  topic(kind === "tcp" ? "transport.tcp" : "transport.ws", { host: "127.0.0.1", port: Number(replyPortArg) }),
];
await transport.start();
console.log(
  JSON.stringify({
    address: transport.address,
    port: transport.port,
    publicKey: Buffer.from(me.publicKey).toString("hex"),
  }),
);

let received = 0;
let verified = 0;
let inOrder = true;
const replies: Promise<void>[] = [];
const finished = Promise.withResolvers<void>();
transport.onMessage((m) => {
  if (m.verify(sender)) verified++;
  if (m.payload.seq !== received) inOrder = false;
  received++;
  replies.push(transport.send(new Message({ topics: replyTo, payload: { seq: m.payload.seq } }).sign(me)));
  if (received === count) finished.resolve();
});

const gaveUp = setTimeout(() => finished.reject(new Error("timed out")), 60_000);
let code = 0;
try {
  await finished.promise;
  await Promise.all(replies);
} catch (err) {
  console.error(`transport-peer: ${(err as Error).message}`);
  code = 1;
}
clearTimeout(gaveUp);
console.log(JSON.stringify({ received, verified, inOrder }));
await transport.stop();
process.exit(code);

/** Ed25519, codec and the whole sign+encode+decode+verify path for a typical message. */
import { Identity } from "../../src/core/identity.ts";
import { Message } from "../../src/core/message.ts";
import { topic } from "../../src/core/topic.ts";
import { opsPerSecSync, report } from "./harness.ts";

const id = Identity.generate();
const data = new Uint8Array(200).fill(7);
const sig = id.sign(data);
const typical = () =>
  new Message({ recipient: id.fingerprint, topics: [topic("jobs", { kind: "resize", prio: 3 })], payload: { text: "hello world", n: 42, ratio: 0.5, tags: ["a", "b"] }, taskId: "task-1" });
const signed = typical().sign(id);
const wire = signed.encode();
const cond = `1 thread, typical message ${wire.length} B on the wire`;

const N = 20_000;
report("ed25519 sign", opsPerSecSync(N, () => id.sign(data)), "ops/s", `N=${N}, 200 B input, node:crypto`);
report("ed25519 verify", opsPerSecSync(N, () => id.verify(data, sig)), "ops/s", `N=${N}, 200 B input, node:crypto`);
const M = 200_000;
report("message encode (wire map)", opsPerSecSync(M, () => typical().encode()), "msg/s", `N=${M}, ${cond}, includes building the message`);
report("message decode (wire map)", opsPerSecSync(M, () => Message.decode(wire)), "msg/s", `N=${M}, ${cond}`);
report("sign+encode+decode+verify", opsPerSecSync(N, () => Message.decode(typical().sign(id).encode()).verify(id.publicKey)), "msg/s", `N=${N}, ${cond}`);

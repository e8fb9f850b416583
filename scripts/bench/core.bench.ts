/**
 * Ed25519, codec and the whole sign+encode+decode+verify path.
 *
 * Message.encode() memoises its bytes (a Message is immutable), so encoding the same message in a
 * loop measures the cache, not the encoder: "first encode" runs over freshly built messages, each
 * encoded once, with building kept outside the timed part; "repeat encode" shows the cache.
 */
import { Identity } from "../../src/core/identity.ts";
import { Message } from "../../src/core/message.ts";
import { topic } from "../../src/core/topic.ts";
import { opsPerSecSync, report } from "./harness.ts";

const id = Identity.generate();
const data = new Uint8Array(200).fill(7);
const sig = id.sign(data);

/** The core bench's long-standing typical message: a topic with attributes, a mixed payload. */
const typical = () =>
  new Message({
    recipient: id.fingerprint,
    topics: [topic("jobs", { kind: "resize", prio: 3 })],
    payload: { text: "hello world", n: 42, ratio: 0.5, tags: ["a", "b"] },
    taskId: "task-1",
  });
/** The transport bench's one-way message (the colleague's "typical 352-byte message"). */
const transportTypical = (i: number) =>
  new Message({
    topics: [topic("transport.tcp", { host: "127.0.0.1", port: 9000 })],
    payload: { k: "one", i, n: 100_000, text: "hello world" },
  });
const text4k = () =>
  new Message({ topics: [topic("jobs")], payload: { k: "doc", text: "lorem ipsum ".repeat(342).slice(0, 4096) } });
const bin4k = () =>
  new Message({ topics: [topic("jobs")], payload: { k: "blob", data: new Uint8Array(4096).fill(0xab) } });

/**
 * Operations per second of `fn` over messages built beforehand in batches (building not timed),
 * each message used once: what a transport sees when it sends or receives a new message.
 */
function perFreshMessage(n: number, build: (i: number) => Message, fn: (m: Message) => unknown): number {
  const batch = Math.min(n, 10_000);
  const run = (count: number): number => {
    let ns = 0;
    for (let done = 0; done < count; done += batch) {
      const msgs = Array.from({ length: Math.min(batch, count - done) }, (_, i) => build(done + i));
      const t0 = Bun.nanoseconds();
      for (const m of msgs) fn(m);
      ns += Bun.nanoseconds() - t0;
    }
    return ns;
  };
  run(batch); // warm-up
  return n / (run(n) / 1e9);
}

const N = 20_000;
const M = 200_000;
report(
  "ed25519 sign",
  opsPerSecSync(N, () => id.sign(data)),
  "ops/s",
  `N=${N}, 200 B input, node:crypto`,
);
report(
  "ed25519 verify",
  opsPerSecSync(N, () => id.verify(data, sig)),
  "ops/s",
  `N=${N}, 200 B input, node:crypto`,
);

const cases: [string, (i: number) => Message, number][] = [
  ["typical", () => typical().sign(id), M],
  ["transport-typical", (i) => transportTypical(i).sign(id), M],
  ["4 KiB text payload", () => text4k().sign(id), M / 4],
  ["4 KiB bin payload", () => bin4k().sign(id), M / 4],
];
for (const [name, build, n] of cases) {
  const sample = build(1);
  const wire = sample.encode();
  const cond = `N=${n}, 1 thread, signed, ${wire.length} B on the wire`;
  // Signing is slow (Ed25519); sign one message and vary only what signing does not cover.
  const fresh = (i: number) =>
    sample.with({ id: crypto.randomUUID(), signature: sample.signature, timestamp: sample.timestamp + i });
  report(
    `${name}: first encode`,
    perFreshMessage(n, fresh, (m) => m.encode()),
    "msg/s",
    `${cond}, each message encoded once, building not timed`,
  );
  report(
    `${name}: repeat encode`,
    opsPerSecSync(n, () => sample.encode()),
    "msg/s",
    `${cond}, the same message again`,
  );
  report(
    `${name}: decode`,
    opsPerSecSync(n, () => Message.decode(wire)),
    "msg/s",
    cond,
  );
}
report(
  "typical: build + encode",
  opsPerSecSync(M, () => typical().encode()),
  "msg/s",
  `N=${M}, 1 thread, unsigned, includes building the message (randomUUID, freezes)`,
);
report(
  "sign+encode+decode+verify",
  opsPerSecSync(N, () => Message.decode(typical().sign(id).encode()).verify(id.publicKey)),
  "msg/s",
  `N=${N}, 1 thread, typical message`,
);

/**
 * The rules every network transport (TCP, WebSocket) keeps, run once per transport from its test
 * file: routing by transport topic and by resolved recipient, refusals that name the address,
 * ports, bursts without loss or reordering, peers that restart, stop.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { TransportError } from "../../src/core/errors.ts";
import { Identity } from "../../src/core/identity.ts";
import { Message } from "../../src/core/message.ts";
import { topic } from "../../src/core/topic.ts";
import { IdentityRegistry } from "../../src/network/identity-registry.ts";
import type { EndpointResolver, Transport } from "../../src/transport/transport.ts";
import { collect, eventually } from "../support/transport-util.ts";

export interface NetworkTransport extends Transport {
  readonly port: number;
  readonly host: string;
  readonly outboundConnections: number;
}

export interface TransportKind {
  name: string;
  scheme: string;
  /** The topic namespaces that route to a host and port. */
  topics: string[];
  make(options: { host?: string; port?: number; listen?: boolean; resolve?: EndpointResolver }): NetworkTransport;
}

export function networkTransportContract(kind: TransportKind): void {
  let open: Transport[] = [];
  afterEach(async () => {
    await Promise.all(open.map((t) => t.stop()));
    open = [];
  });

  async function started(options: Parameters<TransportKind["make"]>[0] = {}): Promise<NetworkTransport> {
    const t = kind.make(options);
    open.push(t);
    await t.start();
    return t;
  }

  /** A port nothing listens on: bound, read, released. */
  async function deadPort(): Promise<number> {
    const t = kind.make({});
    await t.start();
    const port = t.port;
    await t.stop();
    return port;
  }

  const to = (t: NetworkTransport, ns = kind.topics[0]!) => topic(ns, { host: t.host, port: t.port });

  describe(`${kind.name} routing`, () => {
    for (const ns of kind.topics) {
      test(`a message with a ${ns} topic (host, port) reaches the transport listening there`, async () => {
        const [a, b] = [await started(), await started()];
        const arrived = collect(b, 1);
        await a.send(new Message({ topics: [to(b, ns)], payload: { hello: ns } }));
        expect((await arrived)[0]!.payload).toEqual({ hello: ns });
      });
    }

    test("a message with a recipient reaches the endpoint the resolver gives for that agent", async () => {
      const b = await started();
      const bob = Identity.generate().fingerprint;
      const a = await started({ resolve: (id) => (id === bob ? b.address : null) });
      const arrived = collect(b, 1);
      await a.send(new Message({ recipient: bob, payload: { n: 1 } }));
      expect((await arrived)[0]!.recipient).toBe(bob);
    });

    test("the transport topic wins over the recipient's resolved endpoint", async () => {
      const [b, c] = [await started(), await started()];
      const a = await started({ resolve: () => c.address });
      const arrived = collect(b, 1);
      await a.send(new Message({ recipient: "someone", topics: [to(b)] }));
      expect((await arrived)[0]!.recipient).toBe("someone");
    });

    test("a message with neither a transport topic nor a recipient is refused, saying so", async () => {
      const a = await started();
      await expect(a.send(new Message({ topics: [topic("jobs")] }))).rejects.toThrow(/no recipient and no transport\./);
    });

    test("a recipient without a resolver, or unknown to it, or listening on another scheme, is refused", async () => {
      const plain = await started();
      await expect(plain.send(new Message({ recipient: "bob" }))).rejects.toThrow(/no endpoint resolver/);
      const a = await started({ resolve: (id) => (id === "carol" ? "other://127.0.0.1:1" : null) });
      await expect(a.send(new Message({ recipient: "bob" }))).rejects.toThrow(/recipient bob has no known endpoint/);
      await expect(a.send(new Message({ recipient: "carol" }))).rejects.toThrow(/other:\/\/127.0.0.1:1/);
    });

    test("a transport that only dials has no address and still sends", async () => {
      const b = await started();
      const a = await started({ listen: false });
      expect(a.address).toBeNull();
      const arrived = collect(b, 1);
      await a.send(new Message({ topics: [to(b)] }));
      expect(await arrived).toHaveLength(1);
    });
  });

  describe(`${kind.name} errors`, () => {
    test("sending to a peer that is not listening rejects with an error naming its address", async () => {
      const port = await deadPort();
      const a = await started();
      const err = await a
        .send(new Message({ topics: [topic(kind.topics[0]!, { host: "127.0.0.1", port })] }))
        .catch((e) => e);
      expect(err).toBeInstanceOf(TransportError);
      expect(err.message).toContain(`${kind.scheme}://127.0.0.1:${port}`);
    });

    test("every message waiting for an unreachable peer is rejected, none silently dropped", async () => {
      const port = await deadPort();
      const a = await started();
      const sends = Array.from({ length: 50 }, () =>
        a.send(new Message({ topics: [topic(kind.topics[0]!, { host: "127.0.0.1", port })] })),
      );
      const outcomes = await Promise.allSettled(sends);
      expect(outcomes.every((o) => o.status === "rejected")).toBe(true);
    });

    test("starting on a port in use fails with a message naming the port and host", async () => {
      const a = await started();
      const b = kind.make({ port: a.port });
      await expect(b.start()).rejects.toThrow(`port ${a.port} on 127.0.0.1 is already in use`);
      expect(b.started).toBe(false);
    });

    test("sending before start is a clear error", async () => {
      const a = kind.make({});
      await expect(a.send(new Message({ recipient: "x" }))).rejects.toThrow(/not started/);
    });
  });

  describe(`${kind.name} delivery`, () => {
    test("localhost means 127.0.0.1, bound explicitly", async () => {
      const a = await started({ host: "localhost" });
      expect(a.address).toBe(`${kind.scheme}://127.0.0.1:${a.port}`);
      const b = await started();
      const arrived = collect(a, 1);
      await b.send(new Message({ topics: [topic(kind.topics[0]!, { host: "localhost", port: a.port })] }));
      expect(await arrived).toHaveLength(1);
    });

    test("a burst of 100,000 messages arrives complete and in order", async () => {
      const [a, b] = [await started(), await started()];
      const N = 100_000;
      const route = [to(b)];
      const arrived = collect(b, N, 30_000);
      const sends: Promise<void>[] = [];
      for (let i = 0; i < N; i++) sends.push(a.send(new Message({ topics: route, payload: { i } })));
      await Promise.all(sends);
      const got = await arrived;
      let inOrder = true;
      got.forEach((m, i) => (inOrder &&= m.payload.i === i));
      expect(inOrder).toBe(true);
    }, 30_000);

    test("signed messages arrive verifiable, and receiveVerified keeps only those of registered senders", async () => {
      const [a, b] = [await started(), await started()];
      const alice = Identity.generate();
      const registry = new IdentityRegistry();
      registry.register(alice.fingerprint, alice.publicKey);
      await a.send(new Message({ topics: [to(b)], payload: { who: "stranger" } }).sign(Identity.generate()));
      await a.send(new Message({ topics: [to(b)], payload: { who: "alice" } }).sign(alice));
      const m = await b.receiveVerified(registry, 5000);
      expect(m.payload.who).toBe("alice");
      expect(m.verify(alice.publicKey)).toBe(true);
    });

    test("a peer that restarts on the same port is reached again through the pool", async () => {
      const a = await started();
      const b1 = await started();
      const port = b1.port;
      const first = collect(b1, 1);
      await a.send(new Message({ topics: [to(b1)], payload: { n: 1 } }));
      await first;
      await b1.stop();
      // Data written before the old connection's close is seen would be lost like any unacknowledged
      // TCP write; a real restart takes far longer than noticing the close.
      await eventually(() => a.outboundConnections === 0, 5000, "the pooled connection to notice the peer left");
      const b2 = await started({ port });
      const second = collect(b2, 1);
      await a.send(new Message({ topics: [to(b2)], payload: { n: 2 } }));
      expect((await second)[0]!.payload.n).toBe(2);
    });

    test("stop is idempotent, fails a waiting receive, and closes the listener", async () => {
      const [a, b] = [await started(), await started()];
      await a.send(new Message({ topics: [to(b)] }));
      await b.receive(5000);
      const waiting = b.receive();
      await b.stop();
      await b.stop();
      await expect(waiting).rejects.toThrow(/stopped/);
      await eventually(() => a.outboundConnections === 0, 5000, "the pooled connection to notice the peer left");
      await expect(a.send(new Message({ topics: [to(b)] }))).rejects.toThrow(`${kind.scheme}://127.0.0.1:${b.port}`);
      await a.stop();
      await expect(a.send(new Message({ topics: [to(b)] }))).rejects.toThrow(/not started/);
    });
  });
}

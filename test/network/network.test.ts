import { afterEach, describe, expect, test } from "bun:test";
import { TimeoutError, TransportError } from "../../src/core/errors.ts";
import { Identity } from "../../src/core/identity.ts";
import { Message } from "../../src/core/message.ts";
import { topic } from "../../src/core/topic.ts";
import { IdentityRegistry } from "../../src/network/identity-registry.ts";
import { AgentNetwork } from "../../src/network/network.ts";
import { LocalHub, LocalTransport } from "../../src/transport/local.ts";

let nets: AgentNetwork[] = [];
afterEach(async () => {
  await Promise.all(nets.map((n) => n.stop()));
  nets = [];
});

async function network(hub: LocalHub, subscriptions: string[] = []): Promise<AgentNetwork> {
  const identity = Identity.generate();
  const n = new AgentNetwork(new LocalTransport({ agentId: identity.fingerprint, subscriptions, hub }), identity);
  await n.start();
  nets.push(n);
  return n;
}

describe("AgentNetwork", () => {
  test("sends signed as its agent, so the receiver verifies the sender", async () => {
    const hub = new LocalHub();
    const [alice, bob] = [await network(hub), await network(hub)];
    const registry = new IdentityRegistry();
    registry.register(alice.identity);
    const sent = await alice.sendTo(bob.id, { hello: "bob" }, { taskId: "t1" });
    expect(sent.sender).toBe(alice.id);
    const got = await bob.receiveVerified(registry, 1000);
    expect(got.id).toBe(sent.id);
    expect(got.payload).toEqual({ hello: "bob" });
    expect(got.taskId).toBe("t1");
  });

  test("send signs a message built elsewhere, replacing any sender it claimed", async () => {
    const hub = new LocalHub();
    const [alice, bob] = [await network(hub), await network(hub)];
    await alice.send(new Message({ sender: "someone-else", recipient: bob.id }));
    const got = await bob.receive(1000);
    expect(got.sender).toBe(alice.id);
    expect(got.verify(alice.identity.publicKey)).toBe(true);
  });

  test("when send is given the fields of a message, it builds, signs and sends it", async () => {
    const hub = new LocalHub();
    const [alice, bob] = [await network(hub), await network(hub)];
    const sent = await alice.send({ recipient: bob.id, payload: { n: 2 }, taskId: "t2" });
    const got = await bob.receive(1000);
    expect(got.id).toBe(sent.id);
    expect([got.sender, got.payload, got.taskId]).toEqual([alice.id, { n: 2 }, "t2"]);
    expect(got.verify(alice.identity.publicKey)).toBe(true);
  });

  test("broadcast reaches the subscribers of its topics and never comes back to the sender", async () => {
    const hub = new LocalHub();
    const [alice, bob, carol] = [
      await network(hub, ["jobs"]),
      await network(hub, ["jobs"]),
      await network(hub, ["other"]),
    ];
    await alice.broadcast({ job: 1 }, { topics: [topic("jobs")] });
    expect((await bob.receive(1000)).payload).toEqual({ job: 1 });
    await expect(carol.receive(0)).rejects.toBeInstanceOf(TimeoutError);
    await expect(alice.receive(0)).rejects.toBeInstanceOf(TimeoutError);
  });

  test("listeners get what arrives", async () => {
    const hub = new LocalHub();
    const [alice, bob] = [await network(hub), await network(hub)];
    const seen: unknown[] = [];
    bob.onMessage((m) => seen.push(m.payload.n));
    await alice.sendTo(bob.id, { n: 1 });
    expect(seen).toEqual([1]);
  });

  test("a verify-only identity cannot drive a network", () => {
    const verifyOnly = Identity.fromPublicKey(Identity.generate().publicKey);
    expect(
      () => new AgentNetwork(new LocalTransport({ agentId: verifyOnly.fingerprint, hub: new LocalHub() }), verifyOnly),
    ).toThrow(TransportError);
  });
});

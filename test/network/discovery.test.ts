import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { Agent } from "../../src/core/agent.ts";
import { IdentityError, StoreError } from "../../src/core/errors.ts";
import { Identity } from "../../src/core/identity.ts";
import { Message } from "../../src/core/message.ts";
import { topic } from "../../src/core/topic.ts";
import {
  DISCOVERY_PREFIX,
  DiscoveryService,
  descriptorFor,
  endpointResolver,
  type AgentDescriptor,
} from "../../src/network/discovery.ts";
import { IdentityRegistry } from "../../src/network/identity-registry.ts";
import { FileStore } from "../../src/store/file.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import { SqliteStore } from "../../src/store/sqlite.ts";
import type { Store } from "../../src/store/store.ts";
import { LocalHub, LocalTransport } from "../../src/transport/local.ts";
import { TcpTransport } from "../../src/transport/tcp.ts";
import { tempDir } from "../support/tmp.ts";
import { captureLogs, collect } from "../support/transport-util.ts";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function agent(capabilities: string[], topics = [topic("jobs", { kind: "resize" })]): Agent {
  return new Agent({ capabilities, topics });
}

describe("descriptors", () => {
  test("descriptorFor gives exactly the DESIGN.md shape, stored under discovery:agent:<id>", async () => {
    const a = agent(["resize"]);
    const store = new MemoryStore();
    await new DiscoveryService(store).register(descriptorFor(a, "tcp://127.0.0.1:9000", 1_700_000_000_000));
    expect(await store.list("discovery:")).toEqual([`discovery:agent:${a.id}`]);
    expect(await store.get(`${DISCOVERY_PREFIX}${a.id}`)).toEqual({
      id: a.id,
      topics: [{ namespace: "jobs", attributes: { kind: "resize" }, version: "1.0" }],
      capabilities: ["resize"],
      publicKey: Buffer.from(a.identity.publicKey).toString("base64"),
      endpoint: "tcp://127.0.0.1:9000",
      startedAt: 1_700_000_000_000,
    });
  });

  test("an agent that cannot be dialed has a null endpoint", () => {
    expect(descriptorFor(agent([])).endpoint).toBeNull();
  });

  test("a descriptor whose public key is not its id's is refused", async () => {
    const d = { ...descriptorFor(agent([])), publicKey: Buffer.from(Identity.generate().publicKey).toString("base64") };
    await expect(new DiscoveryService(new MemoryStore()).register(d)).rejects.toBeInstanceOf(IdentityError);
  });
});

describe("DiscoveryService", () => {
  test("register, get, list and unregister", async () => {
    const d = new DiscoveryService(new MemoryStore());
    const [a, b] = [agent(["x"]), agent(["y"])];
    await d.register(descriptorFor(a));
    await d.register(descriptorFor(b, "tcp://127.0.0.1:1"));
    expect((await d.get(b.id))!.endpoint).toBe("tcp://127.0.0.1:1");
    expect((await d.list()).map((x) => x.id).sort()).toEqual([a.id, b.id].sort());
    expect(await d.unregister(a.id)).toBe(true);
    expect(await d.unregister(a.id)).toBe(false);
    expect(await d.get(a.id)).toBeUndefined();
    expect((await d.list()).map((x) => x.id)).toEqual([b.id]);
  });

  test("registering again replaces the descriptor (a restarted agent's new endpoint)", async () => {
    const d = new DiscoveryService(new MemoryStore());
    const a = agent([]);
    await d.register(descriptorFor(a, "tcp://127.0.0.1:1"));
    await d.register(descriptorFor(a, "tcp://127.0.0.1:2"));
    expect((await d.list()).map((x) => x.endpoint)).toEqual(["tcp://127.0.0.1:2"]);
  });

  test("queries match any of the topics (by namespace, topic string or Topic) and all of the capabilities", async () => {
    const d = new DiscoveryService(new MemoryStore());
    const resizer = agent(["resize", "gpu"], [topic("jobs", { kind: "resize" })]);
    const cropper = agent(["crop"], [topic("jobs", { kind: "crop" }), topic("alerts")]);
    const watcher = agent(["resize"], [topic("alerts")]);
    for (const a of [resizer, cropper, watcher]) await d.register(descriptorFor(a));
    const ids = async (q: Parameters<DiscoveryService["query"]>[0]) => (await d.query(q)).map((x) => x.id).sort();
    const sorted = (...xs: Agent[]) => xs.map((x) => x.id).sort();

    expect(await ids({})).toEqual(sorted(resizer, cropper, watcher));
    expect(await ids({ topics: ["jobs"] })).toEqual(sorted(resizer, cropper));
    expect(await ids({ topics: ["alerts", "nothing"] })).toEqual(sorted(cropper, watcher));
    expect(await ids({ topics: ["jobs[kind=crop]v1.0"] })).toEqual(sorted(cropper));
    expect(await ids({ topics: [topic("jobs", { kind: "resize" })] })).toEqual(sorted(resizer));
    expect(await ids({ capabilities: ["resize"] })).toEqual(sorted(resizer, watcher));
    expect(await ids({ capabilities: ["resize", "gpu"] })).toEqual(sorted(resizer));
    expect(await ids({ capabilities: ["resize", "crop"] })).toEqual([]);
    expect(await ids({ topics: ["alerts"], capabilities: ["resize"] })).toEqual(sorted(watcher));
  });

  test("a malformed record is skipped by list with a warning, and get names it", async () => {
    const store = new MemoryStore();
    const d = new DiscoveryService(store);
    const a = agent([]);
    await d.register(descriptorFor(a));
    await store.put(`${DISCOVERY_PREFIX}junk`, { hello: "world" });
    const logs = captureLogs("warn");
    try {
      expect((await d.list()).map((x) => x.id)).toEqual([a.id]);
    } finally {
      logs.restore();
    }
    expect(logs.lines.join("")).toContain("discovery:agent:junk");
    await expect(d.get("junk")).rejects.toBeInstanceOf(StoreError);
  });

  const persistent: { name: string; open: (dir: string) => Store }[] = [
    { name: "file", open: (dir) => new FileStore(join(dir, "store")) },
    { name: "sqlite", open: (dir) => new SqliteStore(join(dir, "converge.db")) },
  ];
  for (const backend of persistent) {
    test(`descriptors survive a restart with the ${backend.name} store; unregister removes them for good`, async () => {
      const tmp = tempDir();
      cleanups.push(tmp.cleanup);
      const [a, b] = [agent(["x"]), agent(["y"])];
      const first = backend.open(tmp.path);
      const before = new DiscoveryService(first);
      await before.register(descriptorFor(a, "tcp://127.0.0.1:9000", 1));
      await before.register(descriptorFor(b, null, 2));
      await before.unregister(b.id);
      await first.close();

      const second = backend.open(tmp.path);
      cleanups.push(() => second.close());
      const after = new DiscoveryService(second);
      expect(await after.list()).toEqual([descriptorFor(a, "tcp://127.0.0.1:9000", 1)]);
      expect(await after.get(b.id)).toBeUndefined();
    });
  }
});

describe("discovery for transports and verification", () => {
  test("fillRegistry registers every discovered key and skips an inconsistent record", async () => {
    const store = new MemoryStore();
    const d = new DiscoveryService(store);
    const [a, b] = [agent([]), agent([])];
    await d.register(descriptorFor(a));
    await d.register(descriptorFor(b));
    const forged: AgentDescriptor = { ...descriptorFor(agent([])), id: "f".repeat(64) };
    await store.put(`${DISCOVERY_PREFIX}${forged.id}`, forged); // written around register's check
    const registry = new IdentityRegistry();
    const logs = captureLogs("warn");
    let n: number;
    try {
      n = await d.fillRegistry(registry);
    } finally {
      logs.restore();
    }
    expect(n).toBe(2);
    expect(registry.ids().sort()).toEqual([a.id, b.id].sort());
    expect(logs.lines.join("")).toContain("did not trust a discovery record");
  });

  test("receiveVerified accepts a sender known only through discovery, via discovery.keys()", async () => {
    const d = new DiscoveryService(new MemoryStore());
    const hub = new LocalHub();
    const alice = agent([]);
    const bob = new LocalTransport({ agentId: "bob", hub });
    const aliceT = new LocalTransport({ agentId: alice.id, hub });
    await bob.start();
    await aliceT.start();
    cleanups.push(
      () => bob.stop(),
      () => aliceT.stop(),
    );
    const registry = new IdentityRegistry();
    const keys = d.keys(registry);
    await aliceT.send(new Message({ recipient: "bob", payload: { n: 1 } }).sign(alice.identity));
    await expect(bob.receiveVerified(keys, 20)).rejects.toThrow(/no message arrived/); // alice unknown yet: dropped

    await d.register(descriptorFor(alice)); // alice announces herself
    await aliceT.send(new Message({ recipient: "bob", payload: { n: 2 } }).sign(alice.identity));
    expect((await bob.receiveVerified(keys, 1000)).payload.n).toBe(2);
    expect(registry.has(alice.id)).toBe(true); // cached for the next message
  });

  test("a TCP message addressed only by recipient id reaches the endpoint that agent registered", async () => {
    const d = new DiscoveryService(new MemoryStore());
    const bobAgent = agent(["listen"]);
    const bob = new TcpTransport();
    await bob.start();
    const alice = new TcpTransport({ listen: false, resolve: endpointResolver(d) });
    await alice.start();
    cleanups.push(
      () => bob.stop(),
      () => alice.stop(),
    );
    await d.register(descriptorFor(bobAgent, bob.address));
    const arrived = collect(bob, 1);
    await alice.send(new Message({ recipient: bobAgent.id, payload: { hi: "bob" } }));
    expect((await arrived)[0]!.payload.hi).toBe("bob");
    await expect(alice.send(new Message({ recipient: "nobody" }))).rejects.toThrow(
      /recipient nobody has no known endpoint/,
    );
  });

  test("the endpoint resolver caches for its ttl and sees a re-registered endpoint after it", async () => {
    const d = new DiscoveryService(new MemoryStore());
    const a = agent([]);
    await d.register(descriptorFor(a, "tcp://127.0.0.1:1"));
    const cached = endpointResolver(d, { ttlMs: 60_000 });
    const fresh = endpointResolver(d, { ttlMs: 0 });
    expect(await cached(a.id)).toBe("tcp://127.0.0.1:1");
    await d.register(descriptorFor(a, "tcp://127.0.0.1:2"));
    expect(await cached(a.id)).toBe("tcp://127.0.0.1:1");
    expect(await fresh(a.id)).toBe("tcp://127.0.0.1:2");
    expect(await fresh("unknown")).toBeNull();
  });
});

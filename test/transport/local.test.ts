import { afterEach, describe, expect, test } from "bun:test";
import { TimeoutError, TransportError } from "../../src/core/errors.ts";
import { Identity } from "../../src/core/identity.ts";
import { Message } from "../../src/core/message.ts";
import { topic } from "../../src/core/topic.ts";
import { IdentityRegistry } from "../../src/network/identity-registry.ts";
import { LocalHub, LocalTransport } from "../../src/transport/local.ts";
import { captureLogs } from "../support/transport-util.ts";

let started: LocalTransport[] = [];
afterEach(async () => {
  await Promise.all(started.map((t) => t.stop()));
  started = [];
});

/** Agents on a fresh hub, started, each with the given subscriptions. */
async function agents(...subscriptions: string[][]): Promise<LocalTransport[]> {
  const hub = new LocalHub();
  const ts = subscriptions.map(
    (subs) => new LocalTransport({ agentId: Identity.generate().fingerprint, subscriptions: subs, hub }),
  );
  for (const t of ts) await t.start();
  started.push(...ts);
  return ts;
}

/** What each transport has queued right now (without waiting). */
async function inboxes(ts: LocalTransport[]): Promise<string[][]> {
  return Promise.all(
    ts.map(async (t) => {
      const got: string[] = [];
      for (;;) {
        try {
          got.push(String((await t.receive(0)).payload.tag));
        } catch (err) {
          if (err instanceof TimeoutError) return got;
          throw err;
        }
      }
    }),
  );
}

describe("LocalTransport routing", () => {
  test("a message with a recipient goes to that agent only", async () => {
    const [a, b, c] = await agents([], [], []);
    await a!.send(new Message({ recipient: b!.agentId, payload: { tag: "direct" } }));
    expect(await inboxes([a!, b!, c!])).toEqual([[], ["direct"], []]);
  });

  test("a message with topics goes to the agents subscribed to any of its namespaces", async () => {
    const [a, b, c, d] = await agents([], ["jobs"], ["alerts"], ["other"]);
    await a!.send(new Message({ topics: [topic("jobs", { kind: "x" }), topic("alerts")], payload: { tag: "t" } }));
    expect(await inboxes([a!, b!, c!, d!])).toEqual([[], ["t"], ["t"], []]);
  });

  test("a message with topics nobody subscribes to goes to every other agent", async () => {
    const [a, b, c] = await agents([], ["other"], []);
    await a!.send(new Message({ topics: [topic("jobs")], payload: { tag: "t" } }));
    expect(await inboxes([a!, b!, c!])).toEqual([[], ["t"], ["t"]]);
  });

  test("a message with neither recipient nor topics goes to every other agent", async () => {
    const [a, b, c] = await agents(["jobs"], [], ["x"]);
    await a!.send(new Message({ payload: { tag: "all" } }));
    expect(await inboxes([a!, b!, c!])).toEqual([[], ["all"], ["all"]]);
  });

  test("a broadcast never comes back to its sender, even when it subscribes to the topic", async () => {
    const [a, b] = await agents(["jobs"], ["jobs"]);
    await a!.send(new Message({ topics: [topic("jobs")], payload: { tag: "t" } }));
    expect(await inboxes([a!, b!])).toEqual([[], ["t"]]);
  });

  test("subscriptions can change while running", async () => {
    const [a, b, c] = await agents([], ["jobs"], []);
    c!.subscribe("jobs");
    b!.unsubscribe("jobs");
    await a!.send(new Message({ topics: [topic("jobs")], payload: { tag: "t" } }));
    expect(await inboxes([a!, b!, c!])).toEqual([[], [], ["t"]]);
  });

  test("sending to an agent that is not started in this process is an error naming it", async () => {
    const [a] = await agents([]);
    const ghost = Identity.generate().fingerprint;
    await expect(a!.send(new Message({ recipient: ghost }))).rejects.toThrow(`local://${ghost}`);
  });

  test("separate hubs never see each other's agents", async () => {
    const [a] = await agents([]);
    const [b] = await agents([]);
    await expect(a!.send(new Message({ recipient: b!.agentId }))).rejects.toThrow(TransportError);
  });
});

describe("LocalTransport lifecycle", () => {
  test("sending before start is a clear error", async () => {
    const t = new LocalTransport({ agentId: "a", hub: new LocalHub() });
    await expect(t.send(new Message())).rejects.toThrow(/not started \(call start\(\) first\)/);
  });

  test("two transports cannot claim the same agent id in one hub", async () => {
    const hub = new LocalHub();
    const a = new LocalTransport({ agentId: "same", hub });
    await a.start();
    started.push(a);
    await expect(new LocalTransport({ agentId: "same", hub }).start()).rejects.toThrow(/already registered/);
  });

  test("stop is idempotent, leaves the hub, and fails a waiting receive", async () => {
    const [a, b] = await agents([], []);
    const waiting = b!.receive();
    await b!.stop();
    await b!.stop();
    await expect(waiting).rejects.toThrow(/stopped while a receive was waiting/);
    await expect(a!.send(new Message({ recipient: b!.agentId }))).rejects.toThrow(TransportError);
    expect(a!.hub.size).toBe(1);
  });

  test("the default hub is shared by transports created without one", async () => {
    const a = new LocalTransport({ agentId: Identity.generate().fingerprint });
    const b = new LocalTransport({ agentId: Identity.generate().fingerprint });
    await a.start();
    await b.start();
    started.push(a, b);
    expect(a.hub).toBe(LocalHub.default);
    await a.send(new Message({ recipient: b.agentId, payload: { tag: "d" } }));
    expect((await b.receive(0)).payload.tag).toBe("d");
  });
});

describe("receiving", () => {
  test("receive times out with a TimeoutError the caller can catch", async () => {
    const [a] = await agents([]);
    const t0 = Date.now();
    await expect(a!.receive(30)).rejects.toBeInstanceOf(TimeoutError);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(25);
  });

  test("a waiting receive wakes as soon as a message arrives", async () => {
    const [a, b] = await agents([], []);
    const waiting = b!.receive(5000);
    await a!.send(new Message({ recipient: b!.agentId, payload: { tag: "now" } }));
    expect((await waiting).payload.tag).toBe("now");
  });

  test("onMessage listeners get arrivals synchronously, including those queued before they attached", async () => {
    const [a, b] = await agents([], []);
    await a!.send(new Message({ recipient: b!.agentId, payload: { tag: "early" } }));
    const seen: string[] = [];
    const detach = b!.onMessage((m) => seen.push(String(m.payload.tag)));
    expect(seen).toEqual(["early"]);
    await a!.send(new Message({ recipient: b!.agentId, payload: { tag: "late" } }));
    expect(seen).toEqual(["early", "late"]);
    await expect(b!.receive(10)).rejects.toThrow(/go to onMessage listeners/);
    detach();
    await a!.send(new Message({ recipient: b!.agentId, payload: { tag: "queued" } }));
    expect(seen).toEqual(["early", "late"]);
    expect((await b!.receive(0)).payload.tag).toBe("queued");
  });

  test("a listener that throws does not stop delivery to the others", async () => {
    const [a, b] = await agents([], []);
    const seen: unknown[] = [];
    b!.onMessage(() => {
      throw new Error("boom");
    });
    b!.onMessage((m) => seen.push(m.payload.tag));
    const logs = captureLogs("error");
    try {
      await a!.send(new Message({ recipient: b!.agentId, payload: { tag: 1 } }));
    } finally {
      logs.restore();
    }
    expect(seen).toEqual([1]);
    expect(logs.lines.join("")).toContain("a message listener threw");
  });

  test("receiveVerified drops unsigned, unknown-sender and forged messages, saying why at debug, and returns the first good one", async () => {
    const [a, b] = await agents([], []);
    const alice = Identity.generate();
    const mallory = Identity.generate();
    const registry = new IdentityRegistry();
    registry.register(alice);
    const good = new Message({ recipient: b!.agentId, payload: { tag: "good" } }).sign(alice);
    const forged = good.with({ payload: { tag: "forged" }, signature: good.signature }); // alice's signature over other bytes
    await a!.send(new Message({ recipient: b!.agentId, payload: { tag: "unsigned" } }));
    await a!.send(new Message({ recipient: b!.agentId, payload: { tag: "unknown" } }).sign(mallory));
    await a!.send(forged);
    await a!.send(good);
    const logs = captureLogs("debug");
    let got: Message;
    try {
      got = await b!.receiveVerified(registry, 1000);
    } finally {
      logs.restore();
    }
    expect(got.payload.tag).toBe("good");
    const said = logs.lines.join("");
    expect(said).toContain("it is unsigned");
    expect(said).toContain(`its sender ${mallory.fingerprint.slice(0, 12)} is not registered`);
    expect(said).toContain("its signature does not verify");
    await expect(b!.receive(0)).rejects.toBeInstanceOf(TimeoutError);
  });

  test("receiveVerified times out when only unverifiable messages arrive", async () => {
    const [a, b] = await agents([], []);
    await a!.send(new Message({ recipient: b!.agentId, payload: { tag: "unsigned" } }));
    await expect(b!.receiveVerified(new IdentityRegistry(), 30)).rejects.toBeInstanceOf(TimeoutError);
  });
});

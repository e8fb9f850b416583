import { describe, expect, test } from "bun:test";
import { Agent } from "../../src/core/agent.ts";
import { Identity } from "../../src/core/identity.ts";
import { DiscoveryKeys, NegativeCache } from "../../src/network/discovery-keys.ts";
import { DISCOVERY_PREFIX, DiscoveryService, descriptorFor } from "../../src/network/discovery.ts";
import { MemoryStore } from "../../src/store/memory.ts";

/** A memory store that counts reads. */
function countingStore(): { store: MemoryStore; reads: () => number } {
  const store = new MemoryStore();
  let reads = 0;
  const get = store.get.bind(store);
  store.get = ((key: string) => {
    reads++;
    return get(key);
  }) as MemoryStore["get"];
  return { store, reads: () => reads };
}

const randomId = () => Identity.generate().fingerprint;

describe("senders' keys from discovery", () => {
  test("a registered sender's key is read once and then answered without a promise", async () => {
    const { store, reads } = countingStore();
    const d = new DiscoveryService(store);
    const a = new Agent();
    await d.register(descriptorFor(a));
    const keys = d.keys();
    const first = keys.get(a.id);
    expect(first).toBeInstanceOf(Promise);
    expect((await first)?.fingerprint).toBe(a.id);
    for (let i = 0; i < 1000; i++) expect((keys.get(a.id) as Identity).fingerprint).toBe(a.id);
    expect(reads()).toBe(1);
  });

  test("a made-up sender repeated costs one read per negative TTL; registering it in this process clears that at once", async () => {
    const { store, reads } = countingStore();
    const d = new DiscoveryService(store);
    const keys = d.keys();
    const ghost = new Agent();
    expect(await keys.get(ghost.id)).toBeUndefined();
    for (let i = 0; i < 1000; i++) expect(keys.get(ghost.id)).toBeUndefined();
    expect({ reads: reads(), negativeHits: keys.stats.negativeHits }).toEqual({ reads: 1, negativeHits: 1000 });
    await d.register(descriptorFor(ghost));
    expect((await keys.get(ghost.id))?.fingerprint).toBe(ghost.id);
  });

  test("concurrent lookups of one id share a read", async () => {
    const { store, reads } = countingStore();
    const keys = new DiscoveryService(store).keys();
    const id = randomId();
    await Promise.all(Array.from({ length: 50 }, () => keys.get(id)));
    expect(reads()).toBe(1);
  });

  test("a flood of random sender ids reads the store at the configured rate, and past the queue lookups fail at once", async () => {
    const { store, reads } = countingStore();
    const keys = new DiscoveryService(store).keys(undefined, { lookupsPerSec: 50, maxWaiting: 20 });
    const outcomes = await Promise.allSettled(Array.from({ length: 200 }, () => keys.get(randomId())));
    const failed = outcomes.filter((o): o is PromiseRejectedResult => o.status === "rejected");
    // 50 at once (the burst), 20 more after waiting for tokens; the other 130 refused without a read
    // (give or take a token refilled while the 200 calls were made).
    expect(reads()).toBeGreaterThanOrEqual(70);
    expect(reads()).toBeLessThanOrEqual(73);
    expect(reads() + failed.length).toBe(200);
    expect(keys.stats.overloaded).toBe(failed.length);
    expect(failed[0]!.reason.message).toMatch(/too many messages from senders not known yet \(20 waiting/);
  });

  test("a record that carries another agent's key is refused, not trusted", async () => {
    const store = new MemoryStore();
    const a = new Agent();
    const b = new Agent();
    await store.put(DISCOVERY_PREFIX + a.id, { ...descriptorFor(b), id: a.id });
    await expect(Promise.resolve(new DiscoveryService(store).keys().get(a.id))).rejects.toThrow(
      /carries the public key of/,
    );
  });
});

describe("NegativeCache", () => {
  test("an entry lasts its TTL, and past the bound the oldest go first", () => {
    const c = new NegativeCache(1000, 3);
    c.add("a", 0);
    c.add("b", 0);
    c.add("c", 0);
    c.add("d", 0);
    expect(["a", "b", "c", "d"].map((id) => c.has(id, 10))).toEqual([false, true, true, true]);
    expect(c.has("b", 1001)).toBe(false);
    expect(c.size).toBe(2);
  });

  test("DiscoveryKeys takes any lookup function, so a registry can front any source", async () => {
    const a = Identity.generate();
    const keys = new DiscoveryKeys(
      async (id) => (id === a.fingerprint ? Identity.fromPublicKey(a.publicKey) : undefined),
      new NegativeCache(1000, 10),
    );
    expect((await keys.get(a.fingerprint))?.fingerprint).toBe(a.fingerprint);
    expect(keys.get(a.fingerprint)).not.toBeInstanceOf(Promise);
  });
});

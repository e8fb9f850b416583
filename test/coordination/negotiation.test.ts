import { describe, expect, test } from "bun:test";
import {
  NegotiationError,
  NegotiationManager,
  negotiationKey,
  type NegotiationSession,
} from "../../src/coordination/negotiation.ts";
import { ConvergeError } from "../../src/core/errors.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import { RacyStore } from "./racy-store.ts";

function setup(start = 1_000) {
  const store = new MemoryStore();
  const clock = { now: start };
  const nm = new NegotiationManager(store, { clock: () => clock.now });
  return { store, clock, nm };
}

describe("NegotiationManager", () => {
  test("opening a session stores it open under negotiation:<id> with no offers", async () => {
    const { store, nm } = setup();
    const s = await nm.open({ id: "n1", initiator: "alice", participants: ["bob"], subject: "price of job 7" });
    expect(s).toMatchObject({
      id: "n1",
      initiator: "alice",
      participants: ["bob"],
      subject: "price of job 7",
      state: "open",
      offers: [],
      deadline: null,
    });
    expect(await store.get<NegotiationSession>(negotiationKey("n1"))).toEqual(s);
  });

  test("opening a session twice with the same id is refused and keeps the first", async () => {
    const { nm } = setup();
    await nm.open({ id: "n1", initiator: "alice", participants: ["bob"], subject: "a" });
    await expect(nm.open({ id: "n1", initiator: "carol", participants: ["dave"], subject: "b" })).rejects.toThrow(
      /already exists/,
    );
    expect((await nm.get("n1"))!.initiator).toBe("alice");
  });

  test("a session needs a participant besides the initiator", async () => {
    const { nm } = setup();
    await expect(nm.open({ id: "n1", initiator: "alice", participants: ["alice"], subject: "x" })).rejects.toThrow(
      NegotiationError,
    );
  });

  test("a proposal countered and then accepted closes the session with the countered terms", async () => {
    const { nm, clock } = setup();
    await nm.open({ id: "n1", initiator: "alice", participants: ["bob"], subject: "price" });
    await nm.propose("n1", "alice", { price: 10 });
    clock.now = 2_000;
    await nm.counter("n1", "bob", { price: 14 });
    clock.now = 3_000;
    const s = await nm.accept("n1", "alice");
    expect(s.state).toBe("accepted");
    expect(s.agreedTerms).toEqual({ price: 14 });
    expect(s.closedAt).toBe(3_000);
    expect(s.offers).toEqual([
      { from: "alice", kind: "propose", terms: { price: 10 }, at: 1_000 },
      { from: "bob", kind: "counter", terms: { price: 14 }, at: 2_000 },
    ]);
  });

  test("rejecting closes the session with the reason and the rejecter", async () => {
    const { nm } = setup();
    await nm.open({ id: "n1", initiator: "alice", participants: ["bob"], subject: "price" });
    await nm.propose("n1", "alice", { price: 10 });
    const s = await nm.reject("n1", "bob", "too low");
    expect(s).toMatchObject({ state: "rejected", rejectedBy: "bob", reason: "too low", agreedTerms: null });
  });

  test("acting on an accepted or rejected session is refused with its state", async () => {
    const { nm } = setup();
    await nm.open({ id: "a", initiator: "alice", participants: ["bob"], subject: "x" });
    await nm.propose("a", "alice", { v: 1 });
    await nm.accept("a", "bob");
    await expect(nm.propose("a", "bob", { v: 2 })).rejects.toThrow(/is accepted/);
    await expect(nm.reject("a", "bob")).rejects.toThrow(/is accepted/);

    await nm.open({ id: "r", initiator: "alice", participants: ["bob"], subject: "x" });
    await nm.reject("r", "alice");
    await expect(nm.propose("r", "alice", { v: 1 })).rejects.toThrow(/is rejected/);
    await expect(nm.accept("r", "bob")).rejects.toThrow(/is rejected/);
  });

  test("a non-party cannot propose, counter, accept or reject", async () => {
    const { nm } = setup();
    await nm.open({ id: "n1", initiator: "alice", participants: ["bob"], subject: "x" });
    await nm.propose("n1", "alice", { v: 1 });
    for (const act of [
      () => nm.propose("n1", "mallory", {}),
      () => nm.counter("n1", "mallory", {}),
      () => nm.accept("n1", "mallory"),
      () => nm.reject("n1", "mallory"),
    ]) {
      await expect(act()).rejects.toThrow(/mallory is not a party/);
    }
    expect((await nm.get("n1"))!.state).toBe("open");
    expect((await nm.get("n1"))!.offers).toHaveLength(1);
  });

  test("acting on an unknown session is a NegotiationError naming it", async () => {
    const { nm } = setup();
    const err = await nm.propose("nope", "alice", {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NegotiationError);
    expect(err).toBeInstanceOf(ConvergeError);
    expect((err as Error).message).toContain('no negotiation "nope"');
  });

  test("nobody can accept or counter before there is an offer", async () => {
    const { nm } = setup();
    await nm.open({ id: "n1", initiator: "alice", participants: ["bob"], subject: "x" });
    await expect(nm.accept("n1", "bob")).rejects.toThrow(/no offer to accept/);
    await expect(nm.counter("n1", "bob", { v: 1 })).rejects.toThrow(/no offer to counter/);
  });

  test("a party cannot accept or counter their own offer", async () => {
    const { nm } = setup();
    await nm.open({ id: "n1", initiator: "alice", participants: ["bob"], subject: "x" });
    await nm.propose("n1", "alice", { v: 1 });
    await expect(nm.accept("n1", "alice")).rejects.toThrow(/own offer/);
    await expect(nm.counter("n1", "alice", { v: 2 })).rejects.toThrow(/own offer/);
    expect((await nm.get("n1"))!.state).toBe("open");
  });

  test("with three parties an offer is accepted only once both others accept it", async () => {
    const { nm } = setup();
    await nm.open({ id: "n1", initiator: "alice", participants: ["bob", "carol"], subject: "x" });
    await nm.propose("n1", "alice", { v: 1 });
    let s = await nm.accept("n1", "bob");
    expect(s.state).toBe("open");
    expect(s.acceptedBy).toEqual(["bob"]);
    s = await nm.accept("n1", "carol");
    expect(s.state).toBe("accepted");
    expect(s.agreedTerms).toEqual({ v: 1 });
  });

  test("a new offer clears acceptances of the previous one", async () => {
    const { nm } = setup();
    await nm.open({ id: "n1", initiator: "alice", participants: ["bob", "carol"], subject: "x" });
    await nm.propose("n1", "alice", { v: 1 });
    await nm.accept("n1", "bob");
    let s = await nm.counter("n1", "carol", { v: 2 });
    expect(s.acceptedBy).toEqual([]);
    s = await nm.accept("n1", "alice");
    expect(s.state).toBe("open");
    s = await nm.accept("n1", "bob");
    expect(s.state).toBe("accepted");
    expect(s.agreedTerms).toEqual({ v: 2 });
  });

  test("a session past its deadline is expired: actions are refused and the state is stored", async () => {
    const { nm, store, clock } = setup();
    await nm.open({ id: "n1", initiator: "alice", participants: ["bob"], subject: "x", deadline: 5_000 });
    await nm.propose("n1", "alice", { v: 1 });
    clock.now = 4_999;
    expect((await nm.get("n1"))!.state).toBe("open");
    clock.now = 5_000;
    expect((await nm.get("n1"))!.state).toBe("expired");
    await expect(nm.accept("n1", "bob")).rejects.toThrow(/expired at/);
    expect((await store.get<NegotiationSession>(negotiationKey("n1")))!.state).toBe("expired");
    await expect(nm.reject("n1", "bob")).rejects.toThrow(/is expired/);
  });

  test("proposeOrOpen opens a missing session with the recipient, then proposes into it", async () => {
    const { nm } = setup();
    const s = await nm.proposeOrOpen("deal", "alice", { v: 1 }, "bob");
    expect(s).toMatchObject({ id: "deal", initiator: "alice", participants: ["bob"], state: "open" });
    expect(s.offers.map((o) => o.terms)).toEqual([{ v: 1 }]);
    const again = await nm.proposeOrOpen("deal", "bob", { v: 2 }, "alice");
    expect(again.initiator).toBe("alice");
    expect(again.offers).toHaveLength(2);
    await expect(nm.proposeOrOpen("missing", "alice", { v: 1 })).rejects.toThrow(/no negotiation "missing"/);
  });

  test("concurrent proposeOrOpen calls open one session holding both offers", async () => {
    const store = new RacyStore();
    const nm = new NegotiationManager(store);
    await Promise.all([
      nm.proposeOrOpen("d", "alice", { v: 1 }, "bob"),
      nm.proposeOrOpen("d", "bob", { v: 2 }, "alice"),
    ]);
    const s = (await nm.get("d"))!;
    expect(s.offers.map((o) => o.from).sort()).toEqual(["alice", "bob"]);
  });

  test("list returns the session ids", async () => {
    const { nm } = setup();
    await nm.open({ id: "b", initiator: "alice", participants: ["bob"], subject: "x" });
    await nm.open({ id: "a", initiator: "alice", participants: ["bob"], subject: "x" });
    expect(await nm.list()).toEqual(["a", "b"]);
  });

  test("concurrent accept and reject on an optimistic store: exactly one wins", async () => {
    for (let round = 0; round < 20; round++) {
      const store = new RacyStore();
      const nm = new NegotiationManager(store);
      await nm.open({ id: "n", initiator: "alice", participants: ["bob"], subject: "x" });
      await nm.propose("n", "alice", { v: 1 });
      const results = await Promise.allSettled([nm.accept("n", "bob"), nm.reject("n", "alice", "changed my mind")]);
      const won = results.filter((r) => r.status === "fulfilled");
      expect(won).toHaveLength(1);
      const final = (await nm.get("n"))!;
      const winner = (won[0] as PromiseFulfilledResult<NegotiationSession>).value;
      expect(final.state).toBe(winner.state);
      const lost = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
      expect(lost.reason).toBeInstanceOf(NegotiationError);
      expect((lost.reason as Error).message).toContain(`is ${final.state}`);
    }
  });

  test("concurrent proposals from many parties all land in the history", async () => {
    const store = new RacyStore();
    const nm = new NegotiationManager(store);
    const others = Array.from({ length: 20 }, (_, i) => `p${i}`);
    await nm.open({ id: "n", initiator: "alice", participants: others, subject: "x" });
    await nm.propose("n", "alice", { v: 0 });
    await Promise.all(others.map((p, i) => nm.propose("n", p, { v: i + 1 })));
    const s = (await nm.get("n"))!;
    expect(s.offers).toHaveLength(21);
    expect(new Set(s.offers.map((o) => o.from)).size).toBe(21);
    expect(store.retries).toBeGreaterThan(0);
  });
});

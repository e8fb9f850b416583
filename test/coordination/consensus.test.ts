import { describe, expect, test } from "bun:test";
import {
  ConsensusError,
  ProposalManager,
  proposalKey,
  tallyVotes,
  type Proposal,
} from "../../src/coordination/consensus.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import { RacyStore } from "./racy-store.ts";

const voters = (n: number) => Array.from({ length: n }, (_, i) => `v${i}`);

function setup() {
  const store = new MemoryStore();
  const clock = { now: 1_000 };
  return { store, clock, pm: new ProposalManager(store, { clock: () => clock.now }) };
}

describe("tallyVotes", () => {
  test("majority needs strictly more than half of the eligible voters, not of the votes cast", () => {
    const base = { options: ["yes", "no"], voters: voters(4), rule: "majority" as const };
    const two = tallyVotes({
      ...base,
      ballots: [
        { voter: "v0", choice: "yes" },
        { voter: "v1", choice: "yes" },
      ],
    });
    expect(two).toMatchObject({ decided: false, winner: null, cast: 2, eligible: 4, counts: { yes: 2, no: 0 } });
    const three = tallyVotes({
      ...base,
      ballots: [
        { voter: "v0", choice: "yes" },
        { voter: "v1", choice: "yes" },
        { voter: "v2", choice: "yes" },
      ],
    });
    expect(three).toMatchObject({ decided: true, winner: "yes" });
  });

  test("majority of an odd electorate is decided at (n+1)/2 votes", () => {
    const t = tallyVotes({
      options: ["a", "b"],
      voters: voters(5),
      rule: "majority",
      ballots: ["v0", "v1", "v2"].map((voter) => ({ voter, choice: "b" })),
    });
    expect(t).toMatchObject({ decided: true, winner: "b", counts: { a: 0, b: 3 } });
  });

  test("plurality picks the option with the most votes even without a majority", () => {
    const t = tallyVotes({
      options: ["a", "b", "c"],
      voters: voters(10),
      rule: "plurality",
      ballots: [
        ["v0", "a"],
        ["v1", "a"],
        ["v2", "a"],
        ["v3", "b"],
        ["v4", "b"],
        ["v5", "c"],
      ].map(([voter, choice]) => ({ voter: voter!, choice: choice! })),
    });
    expect(t).toMatchObject({ decided: true, winner: "a", cast: 6, counts: { a: 3, b: 2, c: 1 } });
  });

  test("a plurality tie is no decision and names the tied options", () => {
    const t = tallyVotes({
      options: ["a", "b", "c"],
      voters: voters(5),
      rule: "plurality",
      ballots: [
        ["v0", "a"],
        ["v1", "b"],
        ["v2", "a"],
        ["v3", "b"],
        ["v4", "c"],
      ].map(([voter, choice]) => ({ voter: voter!, choice: choice! })),
    });
    expect(t.decided).toBe(false);
    expect(t.winner).toBeNull();
    expect(t.tied).toEqual(["a", "b"]);
    expect(t.reason).toContain("tie");
  });

  test("plurality with no votes is no decision", () => {
    const t = tallyVotes({ options: ["a"], voters: voters(3), rule: "plurality", ballots: [] });
    expect(t).toMatchObject({ decided: false, winner: null, reason: "no votes cast" });
  });

  test("ballots from unlisted voters, for unlisted options, or repeated are not counted", () => {
    const t = tallyVotes({
      options: ["a", "b"],
      voters: ["v0", "v1"],
      rule: "plurality",
      ballots: [
        { voter: "x", choice: "a" },
        { voter: "v0", choice: "zzz" },
        { voter: "v1", choice: "b" },
        { voter: "v1", choice: "a" },
      ],
    });
    expect(t.counts).toEqual({ a: 0, b: 1 });
    expect(t.cast).toBe(1);
  });
});

describe("ProposalManager", () => {
  test("a proposal is stored open under proposal:<id> with majority as the default rule", async () => {
    const { pm, store } = setup();
    const p = await pm.create({ id: "p1", subject: "merge", options: ["yes", "no"], voters: ["a", "b", "c"] });
    expect(p).toMatchObject({ id: "p1", rule: "majority", state: "open", ballots: [], outcome: null });
    expect(await store.get<Proposal>(proposalKey("p1"))).toEqual(p);
    await expect(pm.create({ id: "p1", options: ["x"], voters: ["a"] })).rejects.toThrow(/already exists/);
  });

  test("a proposal needs options and voters, each listed once", async () => {
    const { pm } = setup();
    await expect(pm.create({ options: [], voters: ["a"] })).rejects.toThrow(/at least one option/);
    await expect(pm.create({ options: ["x"], voters: [] })).rejects.toThrow(/at least one voter/);
    await expect(pm.create({ options: ["x", "x"], voters: ["a"] })).rejects.toThrow(/option twice/);
    await expect(pm.create({ options: ["x"], voters: ["a", "a"] })).rejects.toThrow(/voter twice/);
  });

  test("a vote returns the tally after it; the majority is reached as soon as it exists", async () => {
    const { pm } = setup();
    await pm.create({ id: "p", options: ["yes", "no"], voters: ["a", "b", "c"] });
    expect((await pm.vote("p", "a", "yes")).decided).toBe(false);
    const t = await pm.vote("p", "b", "yes");
    expect(t).toMatchObject({ decided: true, winner: "yes", counts: { yes: 2, no: 0 } });
  });

  test("a voter votes once: the second vote is refused and the first stands", async () => {
    const { pm } = setup();
    await pm.create({ id: "p", options: ["yes", "no"], voters: ["a", "b"] });
    await pm.vote("p", "a", "yes");
    await expect(pm.vote("p", "a", "no")).rejects.toThrow(/already voted/);
    expect((await pm.tally("p")).counts).toEqual({ yes: 1, no: 0 });
  });

  test("only listed voters and listed options are accepted", async () => {
    const { pm } = setup();
    await pm.create({ id: "p", options: ["yes", "no"], voters: ["a"] });
    await expect(pm.vote("p", "mallory", "yes")).rejects.toThrow(/mallory is not a voter/);
    await expect(pm.vote("p", "a", "maybe")).rejects.toThrow(/"maybe" is not an option/);
    expect((await pm.get("p"))!.ballots).toEqual([]);
  });

  test("voting on an unknown proposal is a ConsensusError", async () => {
    const { pm } = setup();
    await expect(pm.vote("nope", "a", "yes")).rejects.toBeInstanceOf(ConsensusError);
    await expect(pm.tally("nope")).rejects.toBeInstanceOf(ConsensusError);
    await expect(pm.close("nope")).rejects.toBeInstanceOf(ConsensusError);
  });

  test("closing records the outcome; a closed proposal takes no votes and closing again returns the same outcome", async () => {
    const { pm, clock } = setup();
    await pm.create({ id: "p", options: ["a", "b"], voters: ["x", "y", "z"], rule: "plurality" });
    await pm.vote("p", "x", "a");
    clock.now = 2_000;
    const outcome = await pm.close("p");
    expect(outcome).toMatchObject({ decided: true, winner: "a", cast: 1 });
    const stored = (await pm.get("p"))!;
    expect(stored).toMatchObject({ state: "closed", closedAt: 2_000, outcome });
    await expect(pm.vote("p", "y", "b")).rejects.toThrow(/is closed/);
    clock.now = 3_000;
    expect(await pm.close("p")).toEqual(outcome);
    expect((await pm.get("p"))!.closedAt).toBe(2_000);
  });

  test("votes after closesAt are refused", async () => {
    const { pm, clock } = setup();
    await pm.create({ id: "p", options: ["a"], voters: ["x", "y"], closesAt: 1_500 });
    await pm.vote("p", "x", "a");
    clock.now = 1_500;
    await expect(pm.vote("p", "y", "a")).rejects.toThrow(/ended at/);
  });

  test("votesOf maps each voter to their choice", async () => {
    const { pm } = setup();
    await pm.create({ id: "p", options: ["a", "b"], voters: ["x", "y"] });
    await pm.vote("p", "x", "a");
    await pm.vote("p", "y", "b");
    expect(ProposalManager.votesOf((await pm.get("p"))!)).toEqual({ x: "a", y: "b" });
  });

  test("50 concurrent votes on an optimistic store end with exact tallies", async () => {
    const store = new RacyStore();
    const pm = new ProposalManager(store);
    const vs = voters(50);
    await pm.create({ id: "p", options: ["a", "b", "c"], voters: vs, rule: "plurality" });
    const choice = (i: number) => (i % 5 === 0 ? "c" : i % 2 === 0 ? "a" : "b");
    await Promise.all(vs.map((v, i) => pm.vote("p", v, choice(i))));
    const t = await pm.tally("p");
    const expected = { a: 0, b: 0, c: 0 } as Record<string, number>;
    vs.forEach((_, i) => expected[choice(i)]!++);
    expect(t.counts).toEqual(expected);
    expect(t.cast).toBe(50);
    expect((await pm.get("p"))!.ballots).toHaveLength(50);
    expect(store.retries).toBeGreaterThan(0);
  });

  test("the same voter voting 20 times concurrently is counted once", async () => {
    const store = new RacyStore();
    const pm = new ProposalManager(store);
    await pm.create({ id: "p", options: ["a", "b"], voters: ["x"] });
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => pm.vote("p", "x", i % 2 ? "a" : "b")),
    );
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    expect((await pm.tally("p")).cast).toBe(1);
  });
});

import { describe, expect, test } from "bun:test";
import { decide, eligibleVoters } from "../../src/policy/governance.ts";
import type { GovernanceSpec } from "../../src/core/pool.ts";

const members = ["a", "b", "c", "d", "e"];

describe("governance: democratic", () => {
  const spec: GovernanceSpec = { model: "democratic" };

  test("a choice with more than half of the members' votes is decided", () => {
    expect(decide(spec, members, { a: "yes", b: "yes", c: "yes", d: "no" })).toMatchObject({
      status: "decided",
      choice: "yes",
    });
  });

  test("half of the members is not enough; abstentions count against", () => {
    const r = decide(spec, ["a", "b", "c", "d"], { a: "yes", b: "yes" });
    expect(r.status).toBe("undecided");
    expect(r.reason).toContain("3 needed");
  });

  test("votes from non-members do not count", () => {
    expect(decide(spec, members, { a: "yes", b: "yes", x: "yes", y: "yes" }).status).toBe("undecided");
  });

  test("each voter's first vote counts, later ones are ignored", () => {
    const votes = [
      { voter: "a", choice: "yes" },
      { voter: "b", choice: "yes" },
      { voter: "a", choice: "no" },
      { voter: "c", choice: "yes" },
    ];
    expect(decide(spec, members, votes)).toMatchObject({ status: "decided", choice: "yes" });
  });

  test("a pool without members decides nothing", () => {
    expect(decide(spec, [], { a: "yes" }).status).toBe("undecided");
  });
});

describe("governance: dictatorial", () => {
  const spec: GovernanceSpec = { model: "dictatorial", leader: "boss" };

  test("the leader's vote decides against everyone else", () => {
    expect(decide(spec, members, { a: "yes", b: "yes", c: "yes", d: "yes", e: "yes", boss: "no" })).toMatchObject({
      status: "decided",
      choice: "no",
    });
  });

  test("without the leader's vote nothing is decided", () => {
    const r = decide(spec, members, { a: "yes", b: "yes", c: "yes", d: "yes", e: "yes" });
    expect(r.status).toBe("undecided");
    expect(r.reason).toContain("waiting for the leader boss");
  });

  test("a dictatorial spec without a leader decides nothing and says why", () => {
    expect(decide({ model: "dictatorial" }, members, { a: "yes" })).toMatchObject({
      status: "undecided",
      reason: "dictatorial governance has no leader configured",
    });
  });
});

describe("governance: veto", () => {
  const spec: GovernanceSpec = { model: "veto", vetoers: ["c"] };

  test("without a veto the majority decides", () => {
    expect(decide(spec, members, { a: "yes", b: "yes", c: "yes", d: "no" })).toMatchObject({
      status: "decided",
      choice: "yes",
    });
  });

  test("a vetoer voting no vetoes even a majority", () => {
    expect(decide(spec, members, { a: "yes", b: "yes", d: "yes", e: "yes", c: "no" })).toMatchObject({
      status: "vetoed",
      vetoedBy: "c",
    });
  });

  test("a vetoer voting veto vetoes", () => {
    expect(decide(spec, members, { a: "yes", b: "yes", d: "yes", c: "veto" })).toMatchObject({
      status: "vetoed",
      vetoedBy: "c",
    });
  });

  test("a non-vetoer voting veto or no does not veto", () => {
    expect(decide(spec, members, { a: "veto", b: "yes", c: "yes", d: "yes" })).toMatchObject({
      status: "decided",
      choice: "yes",
    });
  });

  test("veto choices are configurable", () => {
    expect(decide(spec, members, { a: "yes", b: "yes", d: "yes", c: "no" }, { vetoChoices: ["block"] })).toMatchObject({
      status: "decided",
      choice: "yes",
    });
    expect(
      decide(spec, members, { a: "yes", b: "yes", d: "yes", c: "block" }, { vetoChoices: ["block"] }),
    ).toMatchObject({ status: "vetoed" });
  });
});

describe("governance: misc", () => {
  test("an unknown model decides nothing and names it", () => {
    expect(decide({ model: "anarchy" } as unknown as GovernanceSpec, members, { a: "x" }).reason).toContain(
      '"anarchy"',
    );
  });

  test("eligible voters: the leader alone, or members plus vetoers", () => {
    expect(eligibleVoters({ model: "dictatorial", leader: "boss" }, members)).toEqual(["boss"]);
    expect(eligibleVoters({ model: "democratic" }, ["a", "b"])).toEqual(["a", "b"]);
    expect(eligibleVoters({ model: "veto", vetoers: ["b", "z"] }, ["a", "b"])).toEqual(["a", "b", "z"]);
  });
});

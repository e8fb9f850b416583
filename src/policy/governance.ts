/**
 * How a pool decides a proposal under its GovernanceSpec, from the votes cast (pure functions).
 *
 * - democratic: a choice wins with strictly more than half of the pool's members voting for it
 *   (abstentions count against); only members' votes count.
 * - dictatorial: the leader's vote decides, whatever the others vote; until the leader votes,
 *   nothing is decided. The leader's vote counts even if the leader is not listed as a member.
 * - veto: as democratic, unless a vetoer votes one of the veto choices (default "no" or "veto"):
 *   then the proposal is vetoed. Vetoers' vetoes count whether or not they are members.
 * Each voter's first vote counts; later ones are ignored.
 */
import type { GovernanceSpec } from "../core/pool.ts";

export type GovernanceDecision =
  | { status: "decided"; choice: string; reason: string }
  | { status: "vetoed"; vetoedBy: string; reason: string }
  | { status: "undecided"; reason: string };

export interface GovernanceVote {
  voter: string;
  choice: string;
}

export interface DecideOptions {
  /** Choices that, cast by a vetoer under the veto model, veto the proposal. Default ["no", "veto"]. */
  vetoChoices?: readonly string[];
}

export const DEFAULT_VETO_CHOICES: readonly string[] = ["no", "veto"];

/** `votes` as a list of ballots (first vote per voter counts) or a voter → choice map. */
export function decide(
  spec: GovernanceSpec,
  members: readonly string[],
  votes: readonly GovernanceVote[] | Readonly<Record<string, string>>,
  options: DecideOptions = {},
): GovernanceDecision {
  const ballots = firstVotes(votes);
  switch (spec.model) {
    case "dictatorial": {
      if (!spec.leader) return { status: "undecided", reason: "dictatorial governance has no leader configured" };
      const choice = ballots.get(spec.leader);
      if (choice === undefined) return { status: "undecided", reason: `waiting for the leader ${spec.leader} to vote` };
      return { status: "decided", choice, reason: `the leader ${spec.leader} chose "${choice}"` };
    }
    case "veto": {
      const vetoChoices = options.vetoChoices ?? DEFAULT_VETO_CHOICES;
      for (const vetoer of spec.vetoers ?? []) {
        const choice = ballots.get(vetoer);
        if (choice !== undefined && vetoChoices.includes(choice))
          return { status: "vetoed", vetoedBy: vetoer, reason: `${vetoer} vetoed the proposal (voted "${choice}")` };
      }
      return majorityOfMembers(members, ballots);
    }
    case "democratic":
      return majorityOfMembers(members, ballots);
    default:
      return {
        status: "undecided",
        reason:
          `unknown governance model "${String((spec as { model?: unknown }).model)}" ` +
          "(use democratic, dictatorial or veto)",
      };
  }
}

/** Who may usefully vote under this spec: the leader alone, or the members plus any vetoers. */
export function eligibleVoters(spec: GovernanceSpec, members: readonly string[]): string[] {
  if (spec.model === "dictatorial") return spec.leader ? [spec.leader] : [];
  return [...new Set([...members, ...(spec.model === "veto" ? (spec.vetoers ?? []) : [])])];
}

function majorityOfMembers(members: readonly string[], ballots: Map<string, string>): GovernanceDecision {
  const electorate = new Set(members);
  if (electorate.size === 0) return { status: "undecided", reason: "the pool has no members to vote" };
  const counts = new Map<string, number>();
  for (const [voter, choice] of ballots) if (electorate.has(voter)) counts.set(choice, (counts.get(choice) ?? 0) + 1);
  const needed = Math.floor(electorate.size / 2) + 1;
  for (const [choice, n] of counts) {
    if (n >= needed)
      return {
        status: "decided",
        choice,
        reason: `"${choice}" has ${n} of ${electorate.size} members' votes (majority needs ${needed})`,
      };
  }
  const most = Math.max(0, ...counts.values());
  return {
    status: "undecided",
    reason: `no choice has a majority of the ${electorate.size} members: the most votes is ${most}; ${needed} needed`,
  };
}

function firstVotes(votes: readonly GovernanceVote[] | Readonly<Record<string, string>>): Map<string, string> {
  const out = new Map<string, string>();
  const list: GovernanceVote[] = Array.isArray(votes)
    ? (votes as readonly GovernanceVote[]).slice()
    : Object.entries(votes as Readonly<Record<string, string>>).map(([voter, choice]) => ({ voter, choice }));
  for (const v of list) if (!out.has(v.voter)) out.set(v.voter, v.choice);
  return out;
}

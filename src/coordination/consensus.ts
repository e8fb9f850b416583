/**
 * Proposals that a fixed set of voters decide by vote, persisted under `proposal:<id>`.
 *
 * Each listed voter casts at most one vote (a second vote is refused, not replaced), for one of the
 * listed options. Rules:
 * - `majority`: an option wins with strictly more than half of the eligible voters (not of the
 *   votes cast), so abstentions count against. A majority is final as soon as it is reached.
 * - `plurality`: the option with the most votes wins; a tie for first place, or no votes at all,
 *   is no decision, and the tally says why. Only final when the proposal is closed.
 * Closing stores the tally as the outcome; a closed proposal takes no more votes.
 */
import { randomUUID } from "node:crypto";
import { ConvergeError } from "../core/errors.ts";
import { DECLINE, type Store } from "../store/store.ts";
import { clockFor, type Clock } from "../store/clock.ts";
import { refuse, updateOrRefuse } from "./refusable.ts";

export type ConsensusRule = "majority" | "plurality";

export interface Ballot {
  voter: string;
  choice: string;
  /** Epoch ms. */
  at: number;
}

export interface Tally {
  rule: ConsensusRule;
  /** Votes per option, every option listed (0 when none). */
  counts: Record<string, number>;
  /** Votes cast. */
  cast: number;
  /** Voters listed on the proposal. */
  eligible: number;
  /** True when the rule designates a winner from these votes. */
  decided: boolean;
  winner: string | null;
  /** The options sharing first place when a plurality is tied. */
  tied: string[];
  /** Why the tally is (not) decided, for people. */
  reason: string;
}

export interface Proposal {
  id: string;
  subject: string;
  proposer: string | null;
  options: string[];
  voters: string[];
  rule: ConsensusRule;
  ballots: Ballot[];
  state: "open" | "closed";
  /** Epoch ms after which votes are refused; null for none. */
  closesAt: number | null;
  /** The tally at closing. */
  outcome: Tally | null;
  createdAt: number;
  closedAt: number | null;
}

export interface CreateProposal {
  id?: string;
  subject?: string;
  proposer?: string;
  /** Distinct choices; at least one. */
  options: string[];
  /** Distinct voter ids; at least one. */
  voters: string[];
  /** Defaults to `majority`. */
  rule?: ConsensusRule;
  closesAt?: number;
}

/** A refused proposal action: unknown proposal, closed, voter not listed, option not listed, second vote. */
export class ConsensusError extends ConvergeError {}

export const proposalKey = (id: string): string => `proposal:${id}`;

/**
 * Counts ballots under a rule; pure. Ballots from unlisted voters or for unlisted options are
 * ignored, as are second ballots.
 */
export function tallyVotes(
  proposal: Pick<Proposal, "options" | "voters" | "rule"> & { ballots: readonly Pick<Ballot, "voter" | "choice">[] },
): Tally {
  const { options, voters, rule } = proposal;
  const counts = new Map<string, number>(options.map((o) => [o, 0]));
  const eligible = new Set(voters);
  const seen = new Set<string>();
  for (const b of proposal.ballots) {
    if (!eligible.has(b.voter) || seen.has(b.voter) || !counts.has(b.choice)) continue;
    seen.add(b.voter);
    counts.set(b.choice, counts.get(b.choice)! + 1);
  }
  const base = { rule, counts: Object.fromEntries(counts), cast: seen.size, eligible: eligible.size };
  const top = Math.max(0, ...counts.values());
  const leaders = options.filter((o) => counts.get(o) === top);
  if (rule === "majority") {
    const needed = Math.floor(eligible.size / 2) + 1;
    if (top >= needed)
      return {
        ...base,
        decided: true,
        winner: leaders[0]!,
        tied: [],
        reason: `"${leaders[0]}" has ${top} of ${eligible.size} votes (majority needs ${needed})`,
      };
    return {
      ...base,
      decided: false,
      winner: null,
      tied: [],
      reason: `no option has a majority: the most votes is ${top} of ${eligible.size} eligible; ${needed} needed`,
    };
  }
  if (seen.size === 0) return { ...base, decided: false, winner: null, tied: [], reason: "no votes cast" };
  if (leaders.length > 1)
    return {
      ...base,
      decided: false,
      winner: null,
      tied: leaders,
      reason: `tie between ${leaders.map((o) => `"${o}"`).join(", ")} with ${top} votes each`,
    };
  return {
    ...base,
    decided: true,
    winner: leaders[0]!,
    tied: [],
    reason: `"${leaders[0]}" has the most votes (${top} of ${seen.size} cast)`,
  };
}

export class ProposalManager {
  readonly #store: Store;
  readonly #clock: Clock;

  /** `clock` defaults to the store's clock. */
  constructor(store: Store, options: { clock?: Clock } = {}) {
    this.#store = store;
    this.#clock = clockFor(store, options.clock);
  }

  async create(init: CreateProposal): Promise<Proposal> {
    const id = init.id ?? randomUUID();
    const rule = init.rule ?? "majority";
    if (rule !== "majority" && rule !== "plurality")
      throw new ConsensusError(`proposal "${id}": unknown rule "${String(rule)}" (use majority or plurality)`);
    if (init.options.length === 0) throw new ConsensusError(`proposal "${id}" needs at least one option`);
    if (new Set(init.options).size !== init.options.length)
      throw new ConsensusError(`proposal "${id}" lists an option twice`);
    if (init.voters.length === 0) throw new ConsensusError(`proposal "${id}" needs at least one voter`);
    if (new Set(init.voters).size !== init.voters.length)
      throw new ConsensusError(`proposal "${id}" lists a voter twice`);
    const now = await this.#clock();
    const proposal: Proposal = {
      id,
      subject: init.subject ?? "",
      proposer: init.proposer ?? null,
      options: [...init.options],
      voters: [...init.voters],
      rule,
      ballots: [],
      state: "open",
      closesAt: init.closesAt ?? null,
      outcome: null,
      createdAt: now,
      closedAt: null,
    };
    if (!(await this.#store.putIfAbsent(proposalKey(id), proposal)))
      throw new ConsensusError(`proposal "${id}" already exists`);
    return proposal;
  }

  get(proposalId: string): Promise<Proposal | undefined> {
    return this.#store.get<Proposal>(proposalKey(proposalId));
  }

  /** Casts `voter`'s one vote; returns the tally after it. */
  async vote(proposalId: string, voter: string, choice: string): Promise<Tally> {
    const now = await this.#clock();
    const after = await updateOrRefuse<Proposal>(
      this.#store,
      proposalKey(proposalId),
      (p) => {
        if (!p) return refuse(`no proposal "${proposalId}"`);
        if (p.state !== "open") return refuse(`proposal "${proposalId}" is closed; it takes no more votes`);
        if (p.closesAt !== null && now >= p.closesAt)
          return refuse(`voting on proposal "${proposalId}" ended at ${new Date(p.closesAt).toISOString()}`);
        if (!p.voters.includes(voter)) return refuse(`${voter} is not a voter on proposal "${proposalId}"`);
        if (!p.options.includes(choice))
          return refuse(`"${choice}" is not an option of proposal "${proposalId}" (options: ${p.options.join(", ")})`);
        if (p.ballots.some((b) => b.voter === voter))
          return refuse(`${voter} has already voted on proposal "${proposalId}"`);
        return { ...p, ballots: [...p.ballots, { voter, choice, at: now }] };
      },
      (reason) => new ConsensusError(reason),
    );
    return tallyVotes(after);
  }

  /** The current tally, without closing. */
  async tally(proposalId: string): Promise<Tally> {
    const p = await this.get(proposalId);
    if (!p) throw new ConsensusError(`no proposal "${proposalId}"`);
    return p.outcome ?? tallyVotes(p);
  }

  /** Closes voting and records the outcome; closing a closed proposal returns its recorded outcome. */
  async close(proposalId: string): Promise<Tally> {
    const now = await this.#clock();
    const after = await this.#store.update<Proposal>(proposalKey(proposalId), (p) => {
      if (!p || p.state === "closed") return DECLINE;
      return { ...p, state: "closed", outcome: tallyVotes(p), closedAt: now };
    });
    if (!after) throw new ConsensusError(`no proposal "${proposalId}"`);
    return after.outcome!;
  }

  /** Votes as voter → choice, e.g. for policy/governance. */
  static votesOf(p: Pick<Proposal, "ballots">): Record<string, string> {
    return Object.fromEntries(p.ballots.map((b) => [b.voter, b.choice]));
  }
}

/**
 * Negotiation sessions between agents, persisted under `negotiation:<id>` so that every agent and
 * process sharing the store sees the same session.
 *
 * A session is `open` until it is `accepted`, `rejected` or `expired` (when it has a deadline).
 * Any party may `propose` terms while the session is open; this replaces the standing offer.
 * `counter` answers another party's standing offer with new terms. The standing offer is
 * `accepted` once every party other than its author has accepted it (for two parties: the other
 * one); a new offer clears earlier acceptances. Any party may `reject`, which closes the session.
 * Every offer is kept in `offers`, oldest first. Each transition is one atomic `store.update`.
 */
import { randomUUID } from "node:crypto";
import { ConvergeError } from "../core/errors.ts";
import type { Store } from "../store/store.ts";
import { clockFor, type Clock } from "../store/clock.ts";
import { refuse, updateOrRefuse } from "./refusable.ts";

export type NegotiationState = "open" | "accepted" | "rejected" | "expired";

export interface Offer {
  from: string;
  kind: "propose" | "counter";
  terms: Record<string, unknown>;
  /** Epoch ms. */
  at: number;
}

export interface NegotiationSession {
  id: string;
  initiator: string;
  /** Everyone but the initiator; the parties are the initiator and the participants. */
  participants: string[];
  subject: string;
  state: NegotiationState;
  offers: Offer[];
  /** Parties (other than its author) who have accepted the standing offer, i.e. the last one. */
  acceptedBy: string[];
  /** The terms agreed, once accepted. */
  agreedTerms: Record<string, unknown> | null;
  rejectedBy: string | null;
  reason: string | null;
  /** Epoch ms after which the session can no longer be acted on; null for none. */
  deadline: number | null;
  createdAt: number;
  updatedAt: number;
  closedAt: number | null;
}

export interface OpenNegotiation {
  id?: string;
  initiator: string;
  participants: string[];
  subject: string;
  /** Epoch ms; from then on the session is expired. */
  deadline?: number;
}

/** A negotiation action that is not allowed: unknown session, closed session, not a party, no offer. */
export class NegotiationError extends ConvergeError {}

export const negotiationKey = (id: string): string => `negotiation:${id}`;

export class NegotiationManager {
  readonly #store: Store;
  readonly #clock: Clock;

  /** `clock` defaults to the store's clock, so every process agrees on deadlines. */
  constructor(store: Store, options: { clock?: Clock } = {}) {
    this.#store = store;
    this.#clock = clockFor(store, options.clock);
  }

  async open(init: OpenNegotiation): Promise<NegotiationSession> {
    const id = init.id ?? randomUUID();
    if (!init.initiator) throw new NegotiationError("a negotiation needs an initiator");
    const participants = [...new Set(init.participants)].filter((p) => p !== init.initiator);
    if (participants.length === 0)
      throw new NegotiationError(`negotiation "${id}" needs at least one participant besides the initiator`);
    if (participants.some((p) => typeof p !== "string" || p === ""))
      throw new NegotiationError(`negotiation "${id}" has an empty participant id`);
    if (init.deadline !== undefined && !Number.isFinite(init.deadline))
      throw new NegotiationError(`negotiation "${id}" deadline must be epoch milliseconds`);
    const now = await this.#clock();
    const session: NegotiationSession = {
      id,
      initiator: init.initiator,
      participants,
      subject: init.subject,
      state: "open",
      offers: [],
      acceptedBy: [],
      agreedTerms: null,
      rejectedBy: null,
      reason: null,
      deadline: init.deadline ?? null,
      createdAt: now,
      updatedAt: now,
      closedAt: null,
    };
    if (!(await this.#store.putIfAbsent(negotiationKey(id), session)))
      throw new NegotiationError(`negotiation "${id}" already exists`);
    return session;
  }

  /** The session as stored, shown as `expired` when its deadline has passed; undefined when unknown. */
  async get(sessionId: string): Promise<NegotiationSession | undefined> {
    const s = await this.#store.get<NegotiationSession>(negotiationKey(sessionId));
    if (!s) return undefined;
    const now = await this.#clock();
    return s.state === "open" && isPastDeadline(s, now) ? { ...s, state: "expired", closedAt: s.deadline } : s;
  }

  /** Puts new terms on the table (replacing the standing offer). */
  propose(sessionId: string, from: string, terms: Record<string, unknown>): Promise<NegotiationSession> {
    return this.#transition(sessionId, from, (s, now) => {
      s.offers.push({ from, kind: "propose", terms: { ...terms }, at: now });
      s.acceptedBy = [];
      return null;
    });
  }

  /**
   * The Propose decision in one call: proposes in session `sessionId`, first opening it between
   * `from` and `recipient` when it does not exist yet (the subject is then the session id).
   */
  async proposeOrOpen(
    sessionId: string,
    from: string,
    terms: Record<string, unknown>,
    recipient?: string,
  ): Promise<NegotiationSession> {
    if (recipient !== undefined && !(await this.#store.get(negotiationKey(sessionId)))) {
      await this.open({ id: sessionId, initiator: from, participants: [recipient], subject: sessionId }).catch(
        (err: unknown) => {
          // Opened by someone else in the meantime: propose into theirs (party checks still apply).
          if (!(err instanceof NegotiationError && err.message.endsWith("already exists"))) throw err;
        },
      );
    }
    return this.propose(sessionId, from, terms);
  }

  /** Answers another party's standing offer with new terms. */
  counter(sessionId: string, from: string, terms: Record<string, unknown>): Promise<NegotiationSession> {
    return this.#transition(sessionId, from, (s, now) => {
      const standing = s.offers.at(-1);
      if (!standing) return `there is no offer to counter in negotiation "${s.id}"; propose instead`;
      if (standing.from === from)
        return `${from} cannot counter their own offer in negotiation "${s.id}"; propose new terms instead`;
      s.offers.push({ from, kind: "counter", terms: { ...terms }, at: now });
      s.acceptedBy = [];
      return null;
    });
  }

  /** Accepts the standing offer; the session is accepted once every other party has accepted it. */
  accept(sessionId: string, by: string): Promise<NegotiationSession> {
    return this.#transition(sessionId, by, (s, now) => {
      const standing = s.offers.at(-1);
      if (!standing) return `there is no offer to accept in negotiation "${s.id}"`;
      if (standing.from === by) return `${by} cannot accept their own offer in negotiation "${s.id}"`;
      if (!s.acceptedBy.includes(by)) s.acceptedBy.push(by);
      const needed = parties(s).filter((p) => p !== standing.from);
      if (needed.every((p) => s.acceptedBy.includes(p))) {
        s.state = "accepted";
        s.agreedTerms = standing.terms;
        s.closedAt = now;
      }
      return null;
    });
  }

  /** Rejects the negotiation as a whole: it is closed. */
  reject(sessionId: string, by: string, reason?: string): Promise<NegotiationSession> {
    return this.#transition(sessionId, by, (s, now) => {
      s.state = "rejected";
      s.rejectedBy = by;
      s.reason = reason ?? null;
      s.closedAt = now;
      return null;
    });
  }

  /** Sessions (ids) stored under `negotiation:`. */
  async list(): Promise<string[]> {
    const prefix = negotiationKey("");
    return (await this.#store.list(prefix)).map((k) => k.slice(prefix.length));
  }

  /**
   * One atomic transition. `apply` mutates a copy of the open session and returns null, or returns
   * a refusal. A session past its deadline is written as expired and the action refused.
   */
  async #transition(
    sessionId: string,
    actor: string,
    apply: (s: NegotiationSession, now: number) => string | null,
  ): Promise<NegotiationSession> {
    const now = await this.#clock();
    return updateOrRefuse<NegotiationSession>(
      this.#store,
      negotiationKey(sessionId),
      (current) => {
        if (!current) return refuse(`no negotiation "${sessionId}"`);
        if (current.state === "open" && isPastDeadline(current, now))
          return refuse(`negotiation "${sessionId}" expired at ${new Date(current.deadline!).toISOString()}`, {
            ...current,
            state: "expired",
            updatedAt: now,
            closedAt: current.deadline,
          });
        if (current.state !== "open")
          return refuse(`negotiation "${sessionId}" is ${current.state}; it takes no more actions`);
        if (!parties(current).includes(actor)) return refuse(`${actor} is not a party to negotiation "${sessionId}"`);
        const next: NegotiationSession = {
          ...current,
          offers: [...current.offers],
          acceptedBy: [...current.acceptedBy],
          updatedAt: now,
        };
        const refusal = apply(next, now);
        return refusal === null ? next : refuse(refusal);
      },
      (reason) => new NegotiationError(reason),
    );
  }
}

export function parties(s: Pick<NegotiationSession, "initiator" | "participants">): string[] {
  return [s.initiator, ...s.participants];
}

function isPastDeadline(s: NegotiationSession, now: number): boolean {
  return s.deadline !== null && now >= s.deadline;
}

/**
 * Executor handlers for the coordination-protocol decisions: bids, votes, negotiation and
 * delegation, each carried out by its manager over the shared store, as this agent.
 */
import { AuctionManager } from "../coordination/bidding.ts";
import { ProposalManager } from "../coordination/consensus.ts";
import { DelegationManager } from "../coordination/delegation.ts";
import { NegotiationManager } from "../coordination/negotiation.ts";
import type { Store } from "../store/store.ts";
import { DecisionError, field, type DecisionHandler } from "./executor.ts";

export interface ProtocolManagers {
  auctions: AuctionManager;
  proposals: ProposalManager;
  negotiations: NegotiationManager;
  delegations: DelegationManager;
}

export function protocolManagers(store: Store): ProtocolManagers {
  return {
    auctions: new AuctionManager(store),
    proposals: new ProposalManager(store),
    negotiations: new NegotiationManager(store),
    delegations: new DelegationManager(store),
  };
}

export function protocolHandlers(m: ProtocolManagers): Record<string, DecisionHandler> {
  return {
    SubmitBid: (d, ctx) => m.auctions.bid(field(d, "auctionId", "string"), ctx.agent.id, field(d, "amount", "number")),
    Vote: (d, ctx) => m.proposals.vote(field(d, "proposalId", "string"), ctx.agent.id, field(d, "choice", "string")),
    Propose: (d, ctx) =>
      m.negotiations.proposeOrOpen(
        field(d, "sessionId", "string"),
        ctx.agent.id,
        field(d, "terms", "object"),
        (d as { recipient?: string }).recipient,
      ),
    AcceptProposal: (d, ctx) => m.negotiations.accept(field(d, "sessionId", "string"), ctx.agent.id),
    RejectProposal: (d, ctx) =>
      m.negotiations.reject(field(d, "sessionId", "string"), ctx.agent.id, (d as { reason?: string }).reason),
    async Delegate(d, ctx) {
      const taskId = field<string>(d, "taskId", "string");
      // The first link must come from the task's lease holder; later links from the current delegate.
      const holder = await m.delegations.holder(taskId);
      if (holder === undefined && !ctx.leases.has(taskId))
        throw new DecisionError(`this agent holds no lease on task ${taskId}, so it cannot delegate it`);
      return m.delegations.delegate(taskId, ctx.agent.id, field(d, "to", "string"));
    },
    RevokeDelegation: (d, ctx) => m.delegations.revoke(field(d, "taskId", "string"), ctx.agent.id),
  };
}

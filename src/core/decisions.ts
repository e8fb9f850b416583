/**
 * What an agent decides to do: plain tagged objects, so an agent module needs no imports.
 * The executor (runtime/executor.ts) carries each one out.
 */
import type { Message, MessageInit } from "./message.ts";
import type { PoolInit } from "./pool.ts";
import type { TaskInit } from "./task.ts";

export type SendMessage = { type: "SendMessage"; message: Message | MessageInit };
export type JoinPool = { type: "JoinPool"; poolId: string; token?: string };
export type LeavePool = { type: "LeavePool"; poolId: string };
export type CreatePool = { type: "CreatePool"; pool: PoolInit };
export type SubmitTask = { type: "SubmitTask"; task: TaskInit };
export type ClaimTask = { type: "ClaimTask"; taskId: string };
export type ReportTask = { type: "ReportTask"; taskId: string; result: unknown };
export type FailTask = { type: "FailTask"; taskId: string; error: string };
export type SubmitBid = { type: "SubmitBid"; auctionId: string; amount: number };
export type Vote = { type: "Vote"; proposalId: string; choice: string };
export type Propose = { type: "Propose"; sessionId: string; terms: Record<string, unknown>; recipient?: string };
export type AcceptProposal = { type: "AcceptProposal"; sessionId: string };
export type RejectProposal = { type: "RejectProposal"; sessionId: string; reason?: string };
export type Delegate = { type: "Delegate"; taskId: string; to: string };
export type RevokeDelegation = { type: "RevokeDelegation"; taskId: string };
export type InvokeTool = { type: "InvokeTool"; tool: string; args?: Record<string, unknown>; timeoutMs?: number };
/** Anything else: executed by a custom handler registered for its type. */
export type CustomDecision = { type: string; [key: string]: unknown };

export type Decision =
  | SendMessage
  | JoinPool
  | LeavePool
  | CreatePool
  | SubmitTask
  | ClaimTask
  | ReportTask
  | FailTask
  | SubmitBid
  | Vote
  | Propose
  | AcceptProposal
  | RejectProposal
  | Delegate
  | RevokeDelegation
  | InvokeTool;

export const DECISION_TYPES = [
  "SendMessage",
  "JoinPool",
  "LeavePool",
  "CreatePool",
  "SubmitTask",
  "ClaimTask",
  "ReportTask",
  "FailTask",
  "SubmitBid",
  "Vote",
  "Propose",
  "AcceptProposal",
  "RejectProposal",
  "Delegate",
  "RevokeDelegation",
  "InvokeTool",
] as const;

export const sendMessage = (message: Message | MessageInit): SendMessage => ({ type: "SendMessage", message });
export const joinPool = (poolId: string, token?: string): JoinPool => ({
  type: "JoinPool",
  poolId,
  ...(token === undefined ? {} : { token }),
});
export const leavePool = (poolId: string): LeavePool => ({ type: "LeavePool", poolId });
export const createPool = (pool: PoolInit): CreatePool => ({ type: "CreatePool", pool });
export const submitTask = (task: TaskInit): SubmitTask => ({ type: "SubmitTask", task });
export const claimTask = (taskId: string): ClaimTask => ({ type: "ClaimTask", taskId });
export const reportTask = (taskId: string, result: unknown): ReportTask => ({ type: "ReportTask", taskId, result });
export const failTask = (taskId: string, error: string): FailTask => ({ type: "FailTask", taskId, error });
export const submitBid = (auctionId: string, amount: number): SubmitBid => ({ type: "SubmitBid", auctionId, amount });
export const vote = (proposalId: string, choice: string): Vote => ({ type: "Vote", proposalId, choice });
export const propose = (sessionId: string, terms: Record<string, unknown>, recipient?: string): Propose => ({
  type: "Propose",
  sessionId,
  terms,
  ...(recipient === undefined ? {} : { recipient }),
});
export const acceptProposal = (sessionId: string): AcceptProposal => ({ type: "AcceptProposal", sessionId });
export const rejectProposal = (sessionId: string, reason?: string): RejectProposal => ({
  type: "RejectProposal",
  sessionId,
  ...(reason === undefined ? {} : { reason }),
});
export const delegate = (taskId: string, to: string): Delegate => ({ type: "Delegate", taskId, to });
export const revokeDelegation = (taskId: string): RevokeDelegation => ({ type: "RevokeDelegation", taskId });
export const invokeTool = (tool: string, args: Record<string, unknown> = {}, timeoutMs?: number): InvokeTool => ({
  type: "InvokeTool",
  tool,
  args,
  ...(timeoutMs === undefined ? {} : { timeoutMs }),
});

export function isDecision(v: unknown): v is Decision | CustomDecision {
  return typeof v === "object" && v !== null && typeof (v as { type?: unknown }).type === "string";
}

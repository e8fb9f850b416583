/**
 * Delegation of a task from agent to agent, persisted under `delegation:<taskId>`.
 *
 * The first delegation of a task names its owner (`from`); the manager does not read the task, so
 * the caller (the runtime's Delegate handler, runtime/protocols.ts) checks that `from` holds its
 * lease. After that only the effective holder, the last delegate, may delegate further, which
 * builds a chain owner → a → b → ...
 * Delegating to oneself, or to anyone already in the chain (a cycle), is refused.
 * `revoke(taskId, by)` is for delegators only: it takes back `by`'s delegation and every one made
 * after it down the chain, so the task returns to `by`.
 */
import { ConvergeError } from "../core/errors.ts";
import type { Store } from "../store/store.ts";
import { clockFor, type Clock } from "../store/clock.ts";
import { refuse, updateOrRefuse } from "./refusable.ts";

export interface DelegationLink {
  from: string;
  to: string;
  /** Epoch ms. */
  at: number;
}

export interface DelegationRecord {
  taskId: string;
  /** Who held the task before any delegation. */
  owner: string;
  /** Oldest first; the effective holder is the last link's `to`, or the owner when empty. */
  chain: DelegationLink[];
  updatedAt: number;
}

/** A refused delegation: not the holder, self-delegation, cycle, not a delegator. */
export class DelegationError extends ConvergeError {}

export const delegationKey = (taskId: string): string => `delegation:${taskId}`;

/** Who holds the task now. */
export function holderOf(record: Pick<DelegationRecord, "owner" | "chain">): string {
  return record.chain.at(-1)?.to ?? record.owner;
}

export class DelegationManager {
  readonly #store: Store;
  readonly #clock: Clock;

  constructor(store: Store, options: { clock?: Clock } = {}) {
    this.#store = store;
    this.#clock = clockFor(store, options.clock);
  }

  async delegate(taskId: string, from: string, to: string): Promise<DelegationRecord> {
    if (!from || !to) throw new DelegationError(`delegating task "${taskId}" needs both a delegator and a delegate`);
    if (from === to) throw new DelegationError(`${from} cannot delegate task "${taskId}" to themselves`);
    const now = await this.#clock();
    return updateOrRefuse<DelegationRecord>(
      this.#store,
      delegationKey(taskId),
      (current) => {
        const record = current ?? { taskId, owner: from, chain: [], updatedAt: now };
        const holder = holderOf(record);
        if (holder !== from) return refuse(`${from} cannot delegate task "${taskId}": it is held by ${holder}`);
        if (record.owner === to || record.chain.some((l) => l.to === to))
          return refuse(
            `delegating task "${taskId}" from ${from} to ${to} would form a cycle: ${to} already delegated it`,
          );
        return { ...record, chain: [...record.chain, { from, to, at: now }], updatedAt: now };
      },
      (reason) => new DelegationError(reason),
    );
  }

  /** Takes back `by`'s delegation (and those after it); returns the record after. */
  async revoke(taskId: string, by: string): Promise<DelegationRecord> {
    const now = await this.#clock();
    return updateOrRefuse<DelegationRecord>(
      this.#store,
      delegationKey(taskId),
      (current) => {
        if (!current || current.chain.length === 0) return refuse(`task "${taskId}" is not delegated`);
        const i = current.chain.findIndex((l) => l.from === by);
        if (i < 0) return refuse(`${by} did not delegate task "${taskId}"; only the delegator may revoke`);
        return { ...current, chain: current.chain.slice(0, i), updatedAt: now };
      },
      (reason) => new DelegationError(reason),
    );
  }

  get(taskId: string): Promise<DelegationRecord | undefined> {
    return this.#store.get<DelegationRecord>(delegationKey(taskId));
  }

  /** The effective holder, or undefined when the task was never delegated. */
  async holder(taskId: string): Promise<string | undefined> {
    const r = await this.get(taskId);
    return r && holderOf(r);
  }
}

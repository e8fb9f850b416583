/**
 * One atomic store update that may be refused with a reason the user can act on.
 *
 * The callback returns the next record, or `refuse(reason)`: nothing is written and, once the update
 * is over, `makeError(reason)` is thrown. `refuse(reason, write)` stores `write` and still refuses
 * (a session found past its deadline is written as expired, and the action is refused).
 *
 * The store may run the callback more than once (optimistic backends retry on conflict), so only the
 * refusal of the run that decided the outcome counts: it is taken afresh on every run.
 *
 *   const auction = await updateOrRefuse<Auction>(store, key, (a) =>
 *     a ? { ...a, bids: [...a.bids, bid] } : refuse(`no auction "${id}"`), (r) => new AuctionError(r));
 */
import { DECLINE, type Store, type UpdateOptions } from "../store/store.ts";

/** What a callback returns to refuse; made by `refuse`. Records are plain data, so it cannot be mistaken for one. */
export class Refusal<T> {
  constructor(
    readonly reason: string,
    /** Written although the action is refused; undefined to write nothing. */
    readonly write: T | undefined,
  ) {}
}

/** Refuses the update with `reason`, writing `write` first when it is given. */
export function refuse<T = never>(reason: string, write?: T): Refusal<T> {
  return new Refusal(reason, write);
}

/** Runs `fn` as one atomic update of `key`; returns the record written, or throws `makeError(reason)`. */
export async function updateOrRefuse<T>(
  store: Store,
  key: string,
  fn: (current: T | undefined) => T | Refusal<T>,
  makeError: (reason: string) => Error,
  options?: UpdateOptions<T>,
): Promise<T> {
  let refusal = null as string | null;
  const after = await store.update<T>(
    key,
    (current) => {
      refusal = null;
      const next = fn(current);
      if (!(next instanceof Refusal)) return next;
      refusal = next.reason;
      return next.write === undefined ? DECLINE : next.write;
    },
    options,
  );
  if (refusal !== null) throw makeError(refusal);
  // Not refused: the callback's record was written, so the store holds it.
  return after as T;
}

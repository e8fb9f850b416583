/** Where protocol managers take the time from. */
import type { Store } from "./store.ts";

export type Clock = () => number | Promise<number>;

/** The given clock (tests), or the store's own, so that every process agrees on deadlines. */
export function clockFor(store: Store, clock?: Clock): Clock {
  return clock ?? (() => store.now());
}

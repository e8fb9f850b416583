/**
 * Sealed-bid auctions, persisted under `auction:<id>`.
 *
 * - Sealed: `get` shows how many bids there are, never their amounts, until the auction is closed.
 * - One bid per bidder, and a bid is binding: a second bid from the same bidder is refused.
 * - A bid must be a positive finite number, at least the reserve price when there is one, and
 *   arrive before `closesAt` when there is one (a late bid is refused even if nobody closed yet).
 * - Closing picks the highest bid; equal amounts go to the earliest bid (the one stored first).
 *   first-price: the winner pays their own bid.
 *   second-price (Vickrey): the winner pays the second-highest bid; with a single bid, the reserve
 *   price (0 when there is none).
 * - Closing is idempotent: closing a closed auction returns the recorded result.
 */
import { ConvergeError } from "../core/errors.ts";
import { DECLINE, type Store } from "../store/store.ts";
import { clockFor, type Clock } from "../store/clock.ts";
import { refuse, updateOrRefuse } from "./refusable.ts";

export type AuctionType = "first-price" | "second-price";

export interface AuctionOptions {
  type: AuctionType;
  reservePrice?: number;
  /** Epoch ms; bids from then on are refused. */
  closesAt?: number;
}

export interface Bid {
  bidder: string;
  amount: number;
  /** Epoch ms. */
  at: number;
}

export interface AuctionResult {
  winner: string | null;
  /** What the winner pays; null when there is no winner. */
  price: number | null;
  /** The winning bid itself. */
  winningBid: number | null;
  bids: number;
  reason: string;
}

/** The persisted record. `bids` is in arrival order; read it through `get` to keep bids sealed. */
export interface Auction {
  id: string;
  item: unknown;
  type: AuctionType;
  reservePrice: number | null;
  closesAt: number | null;
  state: "open" | "closed";
  bids: Bid[];
  result: AuctionResult | null;
  openedAt: number;
  closedAt: number | null;
}

/** What anyone may see: bid amounts only once closed (`bids` null while open). */
export type AuctionView = Omit<Auction, "bids" | "openedAt" | "closedAt"> & {
  bidCount: number;
  /** Bids in arrival order, only once closed. */
  bids: Bid[] | null;
};

/** A refused auction action: unknown or closed auction, second bid, bad amount, below reserve. */
export class AuctionError extends ConvergeError {}

export const auctionKey = (id: string): string => `auction:${id}`;

/** Winner and price of a set of bids; pure. Bids are in arrival order (earlier wins ties). */
export function settle(type: AuctionType, bids: readonly Bid[], reservePrice: number | null = null): AuctionResult {
  const eligible = bids.filter((b) => reservePrice === null || b.amount >= reservePrice);
  if (eligible.length === 0) {
    return {
      winner: null,
      price: null,
      winningBid: null,
      bids: bids.length,
      reason: bids.length === 0 ? "no bids" : "no bid meets the reserve price",
    };
  }
  // Stable sort: equal amounts keep arrival order, so the earliest bid wins a tie.
  const ranked = [...eligible].sort((a, b) => b.amount - a.amount);
  const top = ranked[0]!;
  if (type === "first-price") {
    return {
      winner: top.bidder,
      price: top.amount,
      winningBid: top.amount,
      bids: bids.length,
      reason: `highest bid ${top.amount} pays its own bid`,
    };
  }
  const second = ranked[1];
  if (second) {
    return {
      winner: top.bidder,
      price: second.amount,
      winningBid: top.amount,
      bids: bids.length,
      reason: `highest bid ${top.amount} pays the second-highest bid ${second.amount}`,
    };
  }
  const price = reservePrice ?? 0;
  return {
    winner: top.bidder,
    price,
    winningBid: top.amount,
    bids: bids.length,
    reason: `single bid ${top.amount} pays the reserve price ${price}`,
  };
}

export class AuctionManager {
  readonly #store: Store;
  readonly #clock: Clock;

  /** `clock` defaults to the store's clock, so every process agrees on `closesAt`. */
  constructor(store: Store, options: { clock?: Clock } = {}) {
    this.#store = store;
    this.#clock = clockFor(store, options.clock);
  }

  async open(auctionId: string, item: unknown, options: AuctionOptions): Promise<AuctionView> {
    if (options.type !== "first-price" && options.type !== "second-price") {
      throw new AuctionError(
        `auction "${auctionId}": unknown type "${String(options.type)}" (use first-price or second-price)`,
      );
    }
    const reserve = options.reservePrice ?? null;
    if (reserve !== null && !(Number.isFinite(reserve) && reserve >= 0))
      throw new AuctionError(`auction "${auctionId}": reserve price must be a non-negative number, got ${reserve}`);
    if (options.closesAt !== undefined && !Number.isFinite(options.closesAt))
      throw new AuctionError(`auction "${auctionId}": closesAt must be epoch milliseconds`);
    const auction: Auction = {
      id: auctionId,
      item: item ?? null,
      type: options.type,
      reservePrice: reserve,
      closesAt: options.closesAt ?? null,
      state: "open",
      bids: [],
      result: null,
      openedAt: await this.#clock(),
      closedAt: null,
    };
    if (!(await this.#store.putIfAbsent(auctionKey(auctionId), auction)))
      throw new AuctionError(`auction "${auctionId}" already exists`);
    return view(auction);
  }

  /** Places `bidder`'s one sealed bid; returns it. */
  async bid(auctionId: string, bidder: string, amount: number): Promise<Bid> {
    if (typeof amount !== "number" || !Number.isFinite(amount) || amount <= 0)
      throw new AuctionError(`bid on auction "${auctionId}" must be a positive number, got ${amount}`);
    const now = await this.#clock();
    const bid: Bid = { bidder, amount, at: now };
    await updateOrRefuse<Auction>(
      this.#store,
      auctionKey(auctionId),
      (a) => {
        if (!a) return refuse(`no auction "${auctionId}"`);
        if (a.state !== "open") return refuse(`auction "${auctionId}" is closed`);
        if (a.closesAt !== null && now >= a.closesAt)
          return refuse(`auction "${auctionId}" stopped taking bids at ${new Date(a.closesAt).toISOString()}`);
        if (a.reservePrice !== null && amount < a.reservePrice)
          return refuse(`bid ${amount} on auction "${auctionId}" is below the reserve price ${a.reservePrice}`);
        if (a.bids.some((b) => b.bidder === bidder))
          return refuse(`${bidder} has already bid on auction "${auctionId}"; bids are binding and cannot be replaced`);
        return { ...a, bids: [...a.bids, bid] };
      },
      (reason) => new AuctionError(reason),
    );
    return bid;
  }

  /** Closes the auction and settles it; returns the (recorded) result. */
  async close(auctionId: string): Promise<AuctionResult> {
    const now = await this.#clock();
    const after = await this.#store.update<Auction>(auctionKey(auctionId), (a) => {
      if (!a || a.state === "closed") return DECLINE;
      return { ...a, state: "closed", result: settle(a.type, a.bids, a.reservePrice), closedAt: now };
    });
    if (!after) throw new AuctionError(`no auction "${auctionId}"`);
    return after.result!;
  }

  /** The public view: bid amounts stay sealed while open. */
  async get(auctionId: string): Promise<AuctionView | undefined> {
    const a = await this.#store.get<Auction>(auctionKey(auctionId));
    return a && view(a);
  }
}

function view(a: Auction): AuctionView {
  return {
    id: a.id,
    item: a.item,
    type: a.type,
    reservePrice: a.reservePrice,
    closesAt: a.closesAt,
    state: a.state,
    bidCount: a.bids.length,
    bids: a.state === "closed" ? a.bids : null,
    result: a.result,
  };
}

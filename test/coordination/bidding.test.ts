import { describe, expect, test } from "bun:test";
import {
  AuctionError,
  AuctionManager,
  auctionKey,
  settle,
  type Auction,
  type Bid,
} from "../../src/coordination/bidding.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import { RacyStore } from "./racy-store.ts";

function setup() {
  const store = new MemoryStore();
  const clock = { now: 1_000 };
  return { store, clock, am: new AuctionManager(store, { clock: () => clock.now }) };
}

const bids = (...pairs: [string, number][]): Bid[] => pairs.map(([bidder, amount], i) => ({ bidder, amount, at: i }));

describe("settle", () => {
  test("first-price auction charges the winner their own bid", () => {
    expect(settle("first-price", bids(["a", 5], ["b", 9], ["c", 7]))).toMatchObject({
      winner: "b",
      price: 9,
      winningBid: 9,
      bids: 3,
    });
  });

  test("second-price auction charges the second-highest bid", () => {
    expect(settle("second-price", bids(["a", 5], ["b", 9], ["c", 7]))).toMatchObject({
      winner: "b",
      price: 7,
      winningBid: 9,
    });
  });

  test("second-price auction with a single bid charges the reserve price", () => {
    expect(settle("second-price", bids(["a", 8]), 3)).toMatchObject({ winner: "a", price: 3 });
  });

  test("second-price auction with a single bid and no reserve charges 0", () => {
    expect(settle("second-price", bids(["a", 8]))).toMatchObject({ winner: "a", price: 0 });
  });

  test("equal highest bids go to the earliest bid", () => {
    expect(settle("first-price", bids(["late", 1], ["first", 9], ["second", 9]))).toMatchObject({
      winner: "first",
      price: 9,
    });
    expect(settle("second-price", bids(["first", 9], ["second", 9], ["x", 2]))).toMatchObject({
      winner: "first",
      price: 9,
    });
  });

  test("no bids means no winner", () => {
    expect(settle("first-price", [])).toEqual({
      winner: null,
      price: null,
      winningBid: null,
      bids: 0,
      reason: "no bids",
    });
  });

  test("bids below the reserve cannot win", () => {
    expect(settle("first-price", bids(["a", 2]), 5)).toMatchObject({
      winner: null,
      price: null,
      reason: "no bid meets the reserve price",
    });
  });
});

describe("AuctionManager", () => {
  test("an auction is stored open under auction:<id>; a second open with the same id is refused", async () => {
    const { am, store } = setup();
    const v = await am.open("a1", { task: "t1" }, { type: "first-price", reservePrice: 2 });
    expect(v).toMatchObject({
      id: "a1",
      item: { task: "t1" },
      type: "first-price",
      reservePrice: 2,
      state: "open",
      bidCount: 0,
      bids: null,
      result: null,
    });
    expect((await store.get<Auction>(auctionKey("a1")))!.state).toBe("open");
    await expect(am.open("a1", null, { type: "second-price" })).rejects.toThrow(/already exists/);
  });

  test("bids stay sealed while open and are revealed after close", async () => {
    const { am } = setup();
    await am.open("a", "item", { type: "first-price" });
    await am.bid("a", "x", 4);
    await am.bid("a", "y", 6);
    const open = (await am.get("a"))!;
    expect(open.bidCount).toBe(2);
    expect(open.bids).toBeNull();
    expect(JSON.stringify(open)).not.toContain('"amount"');
    await am.close("a");
    const closed = (await am.get("a"))!;
    expect(closed.bids!.map((b) => [b.bidder, b.amount])).toEqual([
      ["x", 4],
      ["y", 6],
    ]);
  });

  test("closing a second-price auction charges the second-highest bid and records the result", async () => {
    const { am } = setup();
    await am.open("a", "item", { type: "second-price" });
    await am.bid("a", "x", 10);
    await am.bid("a", "y", 30);
    await am.bid("a", "z", 20);
    const r = await am.close("a");
    expect(r).toMatchObject({ winner: "y", price: 20, winningBid: 30, bids: 3 });
    expect((await am.get("a"))!).toMatchObject({ state: "closed", result: r });
  });

  test("closing a first-price auction with one bid charges that bid", async () => {
    const { am } = setup();
    await am.open("a", "item", { type: "first-price", reservePrice: 1 });
    await am.bid("a", "x", 10);
    expect(await am.close("a")).toMatchObject({ winner: "x", price: 10 });
  });

  test("a second bid from the same bidder is refused and the first stands", async () => {
    const { am } = setup();
    await am.open("a", "item", { type: "first-price" });
    await am.bid("a", "x", 5);
    await expect(am.bid("a", "x", 50)).rejects.toThrow(/already bid/);
    expect(await am.close("a")).toMatchObject({ winner: "x", price: 5 });
  });

  test("a bid below the reserve price is refused", async () => {
    const { am } = setup();
    await am.open("a", "item", { type: "second-price", reservePrice: 10 });
    await expect(am.bid("a", "x", 9.99)).rejects.toThrow(/below the reserve price 10/);
    expect((await am.get("a"))!.bidCount).toBe(0);
  });

  test("a bid must be a positive finite number", async () => {
    const { am } = setup();
    await am.open("a", "item", { type: "first-price" });
    for (const amount of [0, -1, Number.NaN, Number.POSITIVE_INFINITY])
      await expect(am.bid("a", "x", amount)).rejects.toThrow(/positive number/);
  });

  test("bids are refused on an unknown or closed auction", async () => {
    const { am } = setup();
    await expect(am.bid("nope", "x", 1)).rejects.toThrow(/no auction "nope"/);
    await am.open("a", "item", { type: "first-price" });
    await am.close("a");
    await expect(am.bid("a", "x", 1)).rejects.toThrow(/is closed/);
  });

  test("bids at or after closesAt are refused even before anyone closes the auction", async () => {
    const { am, clock } = setup();
    await am.open("a", "item", { type: "first-price", closesAt: 2_000 });
    await am.bid("a", "early", 1);
    clock.now = 2_000;
    await expect(am.bid("a", "late", 100)).rejects.toThrow(/stopped taking bids/);
    expect(await am.close("a")).toMatchObject({ winner: "early", price: 1 });
  });

  test("closing twice returns the recorded result", async () => {
    const { am } = setup();
    await am.open("a", "item", { type: "first-price" });
    await am.bid("a", "x", 3);
    const first = await am.close("a");
    expect(await am.close("a")).toEqual(first);
  });

  test("closing an auction without bids has no winner; closing an unknown auction is an AuctionError", async () => {
    const { am } = setup();
    await am.open("a", "item", { type: "second-price" });
    expect(await am.close("a")).toMatchObject({ winner: null, price: null, reason: "no bids" });
    await expect(am.close("nope")).rejects.toBeInstanceOf(AuctionError);
  });

  test("bad auction options are refused", async () => {
    const { am } = setup();
    await expect(am.open("a", null, { type: "dutch" as "first-price" })).rejects.toThrow(/unknown type "dutch"/);
    await expect(am.open("b", null, { type: "first-price", reservePrice: -1 })).rejects.toThrow(/reserve price/);
  });

  test("50 concurrent bids on an optimistic store are all recorded and the highest wins", async () => {
    const store = new RacyStore();
    const am = new AuctionManager(store);
    await am.open("a", "item", { type: "second-price" });
    await Promise.all(Array.from({ length: 50 }, (_, i) => am.bid("a", `b${i}`, ((i * 37) % 50) + 1)));
    expect((await am.get("a"))!.bidCount).toBe(50);
    const r = await am.close("a");
    // (i*37) % 50 is a permutation of 0..49, so amounts are 1..50 once each.
    expect(r).toMatchObject({ price: 49, winningBid: 50, bids: 50 });
    expect(r.winner).toBe(`b${Array.from({ length: 50 }, (_, i) => i).find((i) => (i * 37) % 50 === 49)}`);
    expect(store.retries).toBeGreaterThan(0);
  });

  test("a bid racing with close is either in the result or refused", async () => {
    for (let round = 0; round < 20; round++) {
      const store = new RacyStore();
      const am = new AuctionManager(store);
      await am.open("a", "item", { type: "first-price" });
      await am.bid("a", "low", 1);
      const [bid, closed] = await Promise.allSettled([am.bid("a", "high", 9), am.close("a")]);
      const result = (closed as PromiseFulfilledResult<{ winner: string | null }>).value;
      if (bid.status === "fulfilled") expect(result.winner).toBe("high");
      else expect(result.winner).toBe("low");
    }
  });
});

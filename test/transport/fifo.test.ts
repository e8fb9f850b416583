import { describe, expect, test } from "bun:test";
import { Fifo } from "../../src/transport/fifo.ts";

describe("Fifo", () => {
  test("hands items back in the order they were pushed, and undefined when empty", () => {
    const q = new Fifo<number>();
    expect(q.shift()).toBeUndefined();
    q.push(1);
    q.push(2);
    q.push(3);
    expect(q.length).toBe(3);
    expect([q.at(0), q.at(1), q.at(2)]).toEqual([1, 2, 3]);
    expect(q.shift()).toBe(1);
    expect(q.at(0)).toBe(2);
    expect(q.length).toBe(2);
    expect([q.shift(), q.shift(), q.shift()]).toEqual([2, 3, undefined]);
    expect(q.length).toBe(0);
  });

  test("keeps order and length across the compaction of a long, partly consumed queue", () => {
    const q = new Fifo<number>();
    let next = 0;
    let expected = 0;
    // Push ahead of shifting so the consumed prefix passes the compaction threshold many times.
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 3000; i++) q.push(next++);
      for (let i = 0; i < 2000; i++) expect(q.shift()).toBe(expected++);
      expect(q.length).toBe(next - expected);
      expect(q.at(0)).toBe(expected);
      expect(q.at(q.length - 1)).toBe(next - 1);
    }
    while (q.length > 0) expect(q.shift()).toBe(expected++);
    expect(expected).toBe(next);
  });

  test("clear empties the queue and returns what was left, in order", () => {
    const q = new Fifo<string>();
    for (const s of ["a", "b", "c", "d"]) q.push(s);
    q.shift();
    expect(q.clear()).toEqual(["b", "c", "d"]);
    expect(q.length).toBe(0);
    expect(q.shift()).toBeUndefined();
    q.push("e");
    expect(q.clear()).toEqual(["e"]);
  });
});

import { afterEach, describe, expect, test } from "bun:test";
import { PolledChannels } from "../../src/store/polled-channels.ts";

let open: PolledChannels<number>[] = [];
afterEach(() => {
  for (const c of open) c.close();
  open = [];
});

function channels(poll: () => void = () => {}): PolledChannels<number> {
  const c = new PolledChannels<number>(1, poll);
  open.push(c);
  return c;
}

describe("PolledChannels", () => {
  test("when a channel's mark changes, it is heard once; an unchanged mark is not heard", () => {
    const c = channels();
    const heard: string[] = [];
    const marks = new Map([
      ["a", 0],
      ["b", 0],
    ]);
    c.watch("a", 0, (ch) => heard.push(ch));
    c.watch("b", 0, (ch) => heard.push(ch));
    marks.set("a", 1);
    c.check((ch) => marks.get(ch)!);
    c.check((ch) => marks.get(ch)!);
    expect(heard).toEqual(["a"]);
  });

  test("when our own publish is marked, the next check does not echo it", () => {
    const c = channels();
    const heard: string[] = [];
    c.watch("a", 0, (ch) => heard.push(ch));
    c.mark("a", 5);
    c.check(() => 5);
    expect(heard).toEqual([]);
  });

  test("when reading one channel's mark throws, onError gets it and the other channels are still heard", () => {
    const c = channels();
    const heard: string[] = [];
    const errors: string[] = [];
    c.watch("bad", 0, (ch) => heard.push(ch));
    c.watch("good", 0, (ch) => heard.push(ch));
    c.check(
      (ch) => {
        if (ch === "bad") throw new Error("unreadable");
        return 1;
      },
      (ch, err) => errors.push(`${ch}: ${(err as Error).message}`),
    );
    expect(heard).toEqual(["good"]);
    expect(errors).toEqual(["bad: unreadable"]);
    // Without onError, the error is the caller's (the SQLite driver logs one line per poll).
    expect(() =>
      c.check(() => {
        throw new Error("database is locked");
      }),
    ).toThrow("database is locked");
  });

  test("when a channel is watched, poll runs on its interval; unwatched channels are not heard", async () => {
    let polled: () => void = () => {};
    const firstPoll = new Promise<void>((resolve) => (polled = resolve));
    const c = channels(() => polled());
    const heard: string[] = [];
    c.watch("a", 0, (ch) => heard.push(ch));
    c.watch("b", 0, (ch) => heard.push(ch));
    await firstPoll;
    c.unwatch("b");
    expect(c.size).toBe(1);
    c.check(() => 1);
    expect(heard).toEqual(["a"]);
  });
});

import { afterEach, describe, expect, test } from "bun:test";
import { appendFileSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Identity } from "../../src/core/identity.ts";
import { Message } from "../../src/core/message.ts";
import { topic } from "../../src/core/topic.ts";
import { ReplayError, ReplayLog, parseReplay, readReplayFile } from "../../src/observability/replay.ts";
import { tempDir } from "../support/tmp.ts";

const dirs: { cleanup: () => void }[] = [];
afterEach(() => {
  while (dirs.length) dirs.pop()!.cleanup();
});
function tmp() {
  const d = tempDir("converge-replay-");
  dirs.push(d);
  return d.path;
}

const alice = Identity.generate();
const msg = (n: number) => new Message({ topics: [topic("jobs")], payload: { n }, taskId: `t${n}` }).sign(alice);

describe("ReplayLog", () => {
  test("records direction, time and message.toJSON()", () => {
    const log = new ReplayLog({ clock: () => 123 });
    const m = msg(1);
    const e = log.recordSent(m);
    expect(e).toEqual({ direction: "sent", time: 123, message: m.toJSON() });
    log.recordReceived(msg(2));
    expect(log.entries().map((x) => [x.direction, (x.message.payload as { n: number }).n])).toEqual([
      ["sent", 1],
      ["received", 2],
    ]);
  });

  test("the ring keeps the newest entries up to its capacity, oldest first, and counts the dropped", () => {
    const log = new ReplayLog({ capacity: 3 });
    for (let i = 0; i < 7; i++) log.record("sent", msg(i));
    expect(log.size).toBe(3);
    expect(log.dropped).toBe(4);
    expect(log.entries().map((e) => (e.message.payload as { n: number }).n)).toEqual([4, 5, 6]);
  });

  test("a partly filled ring lists what it has", () => {
    const log = new ReplayLog({ capacity: 5 });
    log.record("received", msg(0));
    log.record("received", msg(1));
    expect(log.entries().map((e) => (e.message.payload as { n: number }).n)).toEqual([0, 1]);
    expect(log.dropped).toBe(0);
  });

  test("capacity must be a positive integer", () => {
    expect(() => new ReplayLog({ capacity: 0 })).toThrow(ReplayError);
  });

  test("with a file, every entry is appended as a JSON line that readReplayFile loads back, beyond the ring's capacity", () => {
    const file = join(tmp(), "replay.jsonl");
    const log = new ReplayLog({ capacity: 2, file });
    const sent = [msg(1), msg(2), msg(3)];
    for (const m of sent) log.recordSent(m);
    log.recordReceived(msg(4));
    log.close();
    const back = readReplayFile(file);
    expect(back).toHaveLength(4);
    expect(back.slice(0, 3).map((e) => e.message)).toEqual(sent.map((m) => JSON.parse(JSON.stringify(m.toJSON()))));
    expect(back[3]!.direction).toBe("received");
    expect(readFileSync(file, "utf8").split("\n").filter(Boolean)).toHaveLength(4);
  });

  test("the file is private to its owner and appended to, never truncated", () => {
    const file = join(tmp(), "replay.jsonl");
    const first = new ReplayLog({ file });
    first.recordSent(msg(1));
    first.close();
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const second = new ReplayLog({ file });
    second.recordSent(msg(2));
    second.close();
    expect(readReplayFile(file).map((e) => (e.message.payload as { n: number }).n)).toEqual([1, 2]);
  });

  test("close is idempotent and later entries stay in memory only", () => {
    const file = join(tmp(), "replay.jsonl");
    const log = new ReplayLog({ file });
    log.close();
    log.close();
    log.recordSent(msg(1));
    expect(log.size).toBe(1);
    expect(readFileSync(file, "utf8")).toBe("");
  });

  test("an unwritable file is a ReplayError naming it", () => {
    const path = join(tmp(), "missing-dir", "replay.jsonl");
    expect(() => new ReplayLog({ file: path })).toThrow(/cannot open replay file .*missing-dir/);
  });
});

describe("reading replay files", () => {
  test("a torn final line (a crash mid-write) is skipped", () => {
    const file = join(tmp(), "replay.jsonl");
    const log = new ReplayLog({ file });
    log.recordSent(msg(1));
    log.close();
    appendFileSync(file, '{"direction":"sent","time":1,"mess');
    expect(readReplayFile(file)).toHaveLength(1);
  });

  test("a malformed line in the middle is an error naming the file and line", () => {
    const file = join(tmp(), "replay.jsonl");
    writeFileSync(
      file,
      '{"direction":"sent","time":1,"message":{}}\nnot json\n{"direction":"sent","time":2,"message":{}}\n',
    );
    expect(() => readReplayFile(file)).toThrow(`${file}:2: not valid JSON`);
  });

  test("a line that is JSON but not an entry is an error", () => {
    expect(() => parseReplay('{"direction":"sideways","time":1,"message":{}}\n')).toThrow(
      /replay:1: not a replay entry/,
    );
  });

  test("blank lines are ignored", () => {
    expect(parseReplay('\n{"direction":"received","time":5,"message":{"id":"x"}}\n\n')).toEqual([
      { direction: "received", time: 5, message: { id: "x" } },
    ]);
  });

  test("a missing file is a ReplayError", () => {
    expect(() => readReplayFile(join(tmp(), "nope.jsonl"))).toThrow(ReplayError);
  });
});

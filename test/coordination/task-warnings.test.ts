import { describe, expect, test } from "bun:test";
import { TaskManager } from "../../src/coordination/task-manager.ts";
import { capabilityWarnings, constraintWarnings, type SubmitWarning } from "../../src/coordination/task-warnings.ts";
import { MemoryStore } from "../../src/store/memory.ts";

describe("warnings at submit", () => {
  test("an unknown constraint key is one warning for the batch, naming the known keys", () => {
    const w = constraintWarnings([
      { id: "a", constraints: { max_retries: 1, colour: "red" } },
      { id: "b", constraints: { colour: "blue", timeout_sec: 2 } },
      { id: "c", constraints: { "evil\nkey": 1 } },
    ]);
    expect(w.map((x) => x.taskIds)).toEqual([["a", "b"], ["c"]]);
    expect(w[0]!.message).toBe(
      'unknown constraint key "colour" in task "a" and 1 more (kept for agents that read it); converge knows ' +
        "claim_ttl_sec, max_retries, retry_backoff_ms, timeout_sec, output_schema, cpu, memory_mb",
    );
    expect(w[1]!.message).toContain('"evil\\nkey"');
    expect(constraintWarnings([{ id: "ok", constraints: { claim_ttl_sec: 5, output_schema: {} } }])).toEqual([]);
  });

  test("capabilities no agent has all of draw one warning per set; those some agent has, none", () => {
    const agents = [{ capabilities: ["double", "gpu"] }, { capabilities: ["ocr"] }];
    const w = capabilityWarnings(
      [
        { id: "a", requiredCapabilities: ["double"] },
        { id: "b", requiredCapabilities: ["gpu", "double"] },
        { id: "c", requiredCapabilities: ["gpu", "ocr"] },
        { id: "d", requiredCapabilities: ["ocr", "gpu"] },
        { id: "e", requiredCapabilities: [] },
      ],
      agents,
    );
    expect(w.map((x) => x.taskIds)).toEqual([["c", "d"]]);
    expect(w[0]!.message).toBe(
      'no registered agent has all of the capabilities "gpu", "ocr" that task "c" and 1 more need; ' +
        "accepted, they wait until such an agent registers",
    );
    expect(capabilityWarnings([{ id: "x", requiredCapabilities: ["a"] }], [])[0]!.message).toContain(
      'the capability "a" that task "x" needs',
    );
  });

  test("when the library submits tasks with unknown constraint keys, the onWarning hook hears it and they are stored", async () => {
    const heard: SubmitWarning[] = [];
    const tm = new TaskManager(new MemoryStore(), { onWarning: (w) => heard.push(w) });
    const done = await tm.submitMany([
      { id: "a", constraints: { priority_hint: 1 } },
      { id: "b", constraints: { priority_hint: 2 } },
    ]);
    expect(done.map((r) => r.created)).toEqual([true, true]);
    expect(heard.map((w) => [w.kind, w.taskIds])).toEqual([["constraint", ["a", "b"]]]);
    expect((await tm.get("b"))!.constraints).toEqual({ priority_hint: 2 });
  });
});

import { describe, expect, test } from "bun:test";
import { ConfigError } from "../../src/core/errors.ts";
import { claimTask, submitTask, vote } from "../../src/core/decisions.ts";
import { newTask } from "../../src/core/task.ts";
import { ActionPolicy, PolicyViolation, ResourceLimits, enforce } from "../../src/policy/safety.ts";

describe("ActionPolicy", () => {
  test("allows listed decision types and refuses others with a reason", () => {
    const p = new ActionPolicy(["ClaimTask", "ReportTask"]);
    expect(p.check(claimTask("t"))).toEqual({ ok: true });
    const r = p.check(vote("p", "yes"));
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reason).toBe(
      "decision type Vote is not allowed by the action policy (allowed: ClaimTask, ReportTask)",
    );
  });

  test("an empty allowlist allows nothing; allowAll allows custom types too", () => {
    expect(new ActionPolicy([]).check(claimTask("t")).ok).toBe(false);
    expect(ActionPolicy.allowAll().check({ type: "MyCustomThing" })).toEqual({ ok: true });
  });

  test("a decision without a string type is refused", () => {
    expect(ActionPolicy.allowAll().check({} as { type: string }).ok).toBe(false);
  });

  test("enforce throws a PolicyViolation carrying the reason", () => {
    expect(() => enforce(new ActionPolicy([]).check(claimTask("t")))).toThrow(PolicyViolation);
    expect(() => enforce({ ok: true })).not.toThrow();
  });
});

describe("ResourceLimits", () => {
  const limits = new ResourceLimits({ cpu: 2, memory_mb: 512 });

  test("a task asking for no more than the limits is allowed", () => {
    expect(limits.checkTask(newTask({ constraints: { cpu: 2, memory_mb: 512 } }))).toEqual({ ok: true });
    expect(limits.checkTask(newTask({}))).toEqual({ ok: true });
  });

  test("a task asking for more cpu than the agent has is refused with a reason", () => {
    expect(limits.checkTask(newTask({ constraints: { cpu: 4 } }))).toEqual({
      ok: false,
      reason: "asks for cpu=4 but this agent is limited to cpu=2",
    });
  });

  test("a task asking for more memory than the agent has is refused", () => {
    expect(limits.checkTask(newTask({ constraints: { memory_mb: 1024 } }))).toMatchObject({ ok: false });
  });

  test("a constraint that is not a non-negative number is refused", () => {
    expect(limits.checkConstraints({ cpu: "2" })).toMatchObject({
      ok: false,
      reason: 'constraint cpu must be a non-negative number, got "2"',
    });
    expect(limits.checkConstraints({ memory_mb: -1 })).toMatchObject({ ok: false });
  });

  test("a resource without a limit is unlimited", () => {
    expect(new ResourceLimits({ cpu: 1 }).checkConstraints({ memory_mb: 1e9 })).toEqual({ ok: true });
    expect(new ResourceLimits().checkConstraints({ cpu: 64, memory_mb: 1e6 })).toEqual({ ok: true });
  });

  test("other constraints are ignored", () => {
    expect(limits.checkConstraints({ claim_ttl_sec: 30, max_retries: 3 })).toEqual({ ok: true });
  });

  test("a SubmitTask decision is checked by its task's constraints, others by their own constraints field", () => {
    expect(limits.checkDecision(submitTask({ constraints: { cpu: 8 } }))).toMatchObject({ ok: false });
    expect(limits.checkDecision(submitTask({ constraints: { cpu: 1 } }))).toEqual({ ok: true });
    expect(limits.checkDecision({ type: "Train", constraints: { memory_mb: 4096 } })).toMatchObject({ ok: false });
    expect(limits.checkDecision({ type: "Train", constraints: "lots" })).toMatchObject({ ok: false });
    expect(limits.checkDecision(claimTask("t"))).toEqual({ ok: true });
  });

  test("a bad limit is a configuration error", () => {
    expect(() => new ResourceLimits({ cpu: -1 })).toThrow(ConfigError);
    expect(() => new ResourceLimits({ memory_mb: Number.NaN })).toThrow(ConfigError);
  });
});

describe("guards", () => {
  test("guard() gives the executor's shape: the refusal reason, or undefined", () => {
    const action = new ActionPolicy(["SubmitTask"]).guard();
    expect(action(submitTask({}))).toBeUndefined();
    expect(action(claimTask("t"))).toContain("ClaimTask is not allowed");
    const resources = new ResourceLimits({ cpu: 1 }).guard();
    expect(resources(submitTask({ constraints: { cpu: 1 } }))).toBeUndefined();
    expect(resources(submitTask({ constraints: { cpu: 2 } }))).toBe(
      "asks for cpu=2 but this agent is limited to cpu=1",
    );
  });
});

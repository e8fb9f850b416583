import { afterEach, expect, test } from "bun:test";
import { HealthWatch } from "../../src/observability/health-watch.ts";
import { configureLogging, logger } from "../../src/observability/log.ts";
import { Metrics } from "../../src/observability/metrics.ts";
import { captureLogs } from "../support/transport-util.ts";
import { until } from "../support/wait.ts";

let restore: (() => void) | undefined;
afterEach(() => {
  configureLogging({ format: "text" });
  restore?.();
  restore = undefined;
});

function capture(): string[] {
  const logs = captureLogs("info");
  restore = logs.restore;
  return logs.lines;
}

/** A check whose verdicts the test sets. */
function scripted(...verdicts: (string | null | Error)[]) {
  let i = 0;
  return async () => {
    const v = verdicts[Math.min(i++, verdicts.length - 1)]!;
    if (v instanceof Error) throw v;
    return v;
  };
}

test("when the store turns unhealthy it says so once with the reason, and once when it recovers", async () => {
  const lines = capture();
  const deleted = "store sqlite /tmp/x.db: the database file /tmp/x.db was deleted";
  const watch = new HealthWatch({
    check: scripted(null, deleted, deleted, deleted, null, null),
    log: logger("health"),
  });
  for (let i = 0; i < 6; i++) await watch.checkNow();
  expect(lines).toHaveLength(2);
  expect(lines[0]).toMatch(/ ERROR health: store unhealthy reason=store sqlite \/tmp\/x\.db: the database file /);
  expect(lines[1]).toMatch(/ INFO {2}health: store healthy again unhealthy_s=\d+(\.\d)?\n$/);
  expect(watch.turnedUnhealthy).toBe(1);
  expect(watch.checks).toBe(6);
});

test("when a store is unhealthy from the first check, that is said; a check that throws is unhealthy", async () => {
  const lines = capture();
  const watch = new HealthWatch({ check: scripted(new Error("probe exploded")), log: logger("health") });
  await watch.checkNow();
  await watch.checkNow();
  expect(lines).toHaveLength(1);
  expect(lines[0]).toContain("reason=the health check failed: probe exploded");
});

test("/metrics shows whether the last check passed and how often it turned unhealthy", async () => {
  capture();
  const watch = new HealthWatch({ check: scripted("full", null, "full again", "full again"), log: logger("health") });
  const seen = async () => {
    await watch.checkNow();
    const m = new Metrics();
    watch.addTo(m);
    return [m.get("converge_store_healthy"), m.get("converge_store_unhealthy_total")];
  };
  const before = new Metrics();
  watch.addTo(before);
  expect(before.get("converge_store_healthy")).toBeUndefined(); // not checked yet: no claim either way
  expect(await seen()).toEqual([0, 1]);
  expect(await seen()).toEqual([1, 1]);
  expect(await seen()).toEqual([0, 2]);
  expect(await seen()).toEqual([0, 2]);
});

test("in JSON the line has a fixed msg and the reason as a field", async () => {
  const lines = capture();
  configureLogging({ format: "json" });
  const watch = new HealthWatch({ check: scripted("gone"), log: logger("health") });
  await watch.checkNow();
  expect(JSON.parse(lines[0]!)).toEqual(
    expect.objectContaining({ level: "error", logger: "health", msg: "store unhealthy", reason: "gone" }),
  );
});

test("started, it checks at once and then every few ms as asked; stopped, it waits for the check in flight", async () => {
  capture();
  let inFlight = 0;
  let calls = 0;
  let release: (() => void) | undefined;
  const watch = new HealthWatch({
    check: async () => {
      calls++;
      inFlight++;
      if (calls === 3) await new Promise<void>((r) => (release = r));
      inFlight--;
      return null;
    },
    log: logger("health"),
    everyMs: 5,
  });
  watch.start();
  await until(() => release !== undefined, "the third check to begin");
  const stopped = watch.stop();
  let done = false;
  void stopped.then(() => (done = true));
  await Promise.resolve();
  expect(done).toBe(false);
  release!();
  await stopped;
  expect(inFlight).toBe(0);
  expect(calls).toBe(3);
});

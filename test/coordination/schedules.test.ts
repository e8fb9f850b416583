import { describe, expect, test } from "bun:test";
import { ConfigError, ConvergeError, NotFoundError, StoreError } from "../../src/core/errors.ts";
import {
  MAX_CATCH_UP,
  SCHEDULE_INDEX,
  type ScheduleInit,
  ScheduleManager,
  scheduleKey,
  scheduledTaskId,
} from "../../src/coordination/schedules.ts";
import { TaskManager } from "../../src/coordination/task-manager.ts";
import { join } from "node:path";
import { MemoryStore } from "../../src/store/memory.ts";
import { SqliteStore } from "../../src/store/sqlite.ts";
import type { Store } from "../../src/store/store.ts";
import { tempDir } from "../support/tmp.ts";
import { until } from "../support/wait.ts";
import { RacyStore } from "./racy-store.ts";

const MIN = 60_000;
const T0 = Date.parse("2026-01-01T10:00:00.000Z");
const iso = (ms: number) => new Date(ms).toISOString();

/** A manager on `store` whose clock is `clock.now`, which the test moves. */
function setup(store: Store = new MemoryStore()) {
  const clock = { now: T0 - 1 };
  const tasks = new TaskManager(store, { clock: () => clock.now });
  return { store, clock, tasks, schedules: new ScheduleManager(tasks) };
}

/** Ids of every task in the store, sorted. */
async function taskIds(tasks: TaskManager): Promise<string[]> {
  return (await tasks.list()).map((t) => t.id).sort();
}

/** A store whose method `name` fails (once per `fail()`) for keys starting with `prefix`. */
function failing(inner: Store, name: "update" | "getMany", prefix: string): { store: Store; fail: () => void } {
  let armed = 0;
  const store = new Proxy(inner, {
    get(target, prop) {
      const v = Reflect.get(target, prop, target);
      if (typeof v !== "function") return v;
      if (prop !== name) return v.bind(target);
      return (key: string | string[], ...rest: unknown[]) => {
        const k = Array.isArray(key) ? key.join() : key;
        if (armed > 0 && k.includes(prefix)) {
          armed--;
          return Promise.reject(new StoreError(`injected ${name} failure on ${k}`));
        }
        return v.call(target, key, ...rest);
      };
    },
  });
  return { store, fail: () => armed++ };
}

describe("adding, listing and removing schedules", () => {
  test("a schedule is stored with its first due time, listed by id, and removed", async () => {
    const { schedules, store } = setup();
    const a = await schedules.add({ id: "b-every", everyMs: MIN, template: { objective: "sweep", priority: 3 } });
    expect(a).toMatchObject({ id: "b-every", everyMs: MIN, cron: null, timezone: null, catchUp: 0 });
    expect(iso(a.nextRunAt!)).toBe("2026-01-01T10:00:00.000Z");
    const c = await schedules.add({ id: "a-cron", cron: "0 9 * * *", timezone: "Europe/Berlin", catchUp: 2 });
    expect(iso(c.nextRunAt!)).toBe("2026-01-02T08:00:00.000Z");
    expect((await schedules.list()).map((s) => s.id)).toEqual(["a-cron", "b-every"]);
    expect(await store.get(scheduleKey("b-every"))).toEqual(a);
    await schedules.remove("b-every");
    expect(await schedules.get("b-every")).toBeUndefined();
    expect(await store.indexMembers(SCHEDULE_INDEX)).toEqual(["a-cron"]);
    await expect(schedules.remove("b-every")).rejects.toThrow(NotFoundError);
  });

  test("a cron schedule without a zone keeps this process's zone, so every process reads it alike", async () => {
    const { schedules } = setup();
    const s = await schedules.add({ id: "local", cron: "0 9 * * *" });
    expect(s.timezone).toBe(Intl.DateTimeFormat().resolvedOptions().timeZone);
  });

  test("an id that exists already is refused and the schedule is left as it was", async () => {
    const { schedules } = setup();
    const first = await schedules.add({ id: "s", everyMs: MIN });
    const again = schedules.add({ id: "s", cron: "* * * * *" });
    await expect(again).rejects.toThrow(ConvergeError);
    await expect(again).rejects.toThrow("schedule s already exists; remove it first (converge schedules remove s)");
    expect(await schedules.get("s")).toEqual(first);
  });

  test("a bad id, timing, catch-up or template is refused with a ConfigError naming it, and nothing is stored", async () => {
    const { schedules } = setup();
    const cases: [ScheduleInit, RegExp][] = [
      [{ id: "", everyMs: MIN }, /schedule id/],
      [{ id: "a@b", everyMs: MIN }, /schedule id .*"a@b"/],
      [{ id: "x".repeat(129), everyMs: MIN }, /schedule id/],
      [{ id: "s" }, /either a cron expression or an interval/],
      [{ id: "s", everyMs: MIN, cron: "* * * * *" }, /either a cron expression or an interval/],
      [{ id: "s", everyMs: MIN, timezone: "UTC" }, /time zone applies to cron expressions only/],
      [{ id: "s", cron: "* * *" }, /bad cron expression/],
      [{ id: "s", everyMs: MIN, catchUp: MAX_CATCH_UP + 1 }, /catch-up must be a whole number from 0 to 1000/],
      [{ id: "s", everyMs: MIN, catchUp: -1 }, /catch-up/],
      [{ id: "s", everyMs: MIN, template: { constraints: { max_retries: -1 } } }, /max_retries/],
      [{ id: "s", everyMs: MIN, template: { priority: 1.5 } }, /priority/],
      [{ id: "s", everyMs: MIN, template: { id: "fixed" } as never }, /template has no id/],
      [{ id: "s", everyMs: MIN, template: { notBefore: 1 } as never }, /template has no notBefore/],
    ];
    for (const [init, message] of cases) {
      const r = schedules.add(init);
      await expect(r).rejects.toThrow(ConfigError);
      await expect(r).rejects.toThrow(message);
    }
    expect(await schedules.list()).toEqual([]);
  });

  test("listing reads the index of schedules, never a scan of the store's keys", async () => {
    const inner = new MemoryStore();
    const store = new Proxy(inner, {
      get(target, prop) {
        if (prop === "list") return () => Promise.reject(new Error("listing scanned keys"));
        const v = Reflect.get(target, prop, target);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
    const { schedules, tasks, clock } = setup(store);
    for (let i = 0; i < 5; i++) await schedules.add({ id: `s${i}`, everyMs: MIN });
    clock.now = T0;
    await schedules.tick();
    expect((await schedules.list()).length).toBe(5);
    expect((await tasks.counts()).pending).toBe(5);
  });

  test("adding and removing a schedule wakes subscribers of the schedules channel", async () => {
    const { schedules, store } = setup();
    let woken = 0;
    store.subscribe("schedules", () => woken++);
    await schedules.add({ id: "s", everyMs: MIN });
    await until(() => woken === 1, "the wake-up after add");
    await schedules.remove("s");
    await until(() => woken === 2, "the wake-up after remove");
  });
});

describe("passes with a fake clock", () => {
  test("an interval schedule submits one task per due time, from its template, under the due time's id", async () => {
    const { schedules, tasks, clock } = setup();
    await schedules.add({
      id: "sweep",
      everyMs: MIN,
      template: { objective: "sweep", inputs: { deep: true }, requiredCapabilities: ["broom"], priority: 5 },
    });
    expect((await schedules.tick()).submitted).toEqual([]);
    clock.now = T0;
    const first = await schedules.tick();
    expect(first.submitted.map((t) => t.id)).toEqual(["sweep@2026-01-01T10:00:00.000Z"]);
    expect(first.nextDueAt).toBe(T0 + MIN);
    const task = (await tasks.get("sweep@2026-01-01T10:00:00.000Z"))!;
    expect(task).toMatchObject({
      state: "pending",
      objective: "sweep",
      inputs: { deep: true },
      requiredCapabilities: ["broom"],
      priority: 5,
    });
    // The same time again, and a moment later: nothing more is due.
    expect((await schedules.tick()).submitted).toEqual([]);
    clock.now = T0 + MIN - 1;
    expect((await schedules.tick()).submitted).toEqual([]);
    clock.now = T0 + MIN + 250;
    expect((await schedules.tick()).submitted.map((t) => t.id)).toEqual(["sweep@2026-01-01T10:01:00.000Z"]);
    expect(await schedules.get("sweep")).toMatchObject({
      nextRunAt: T0 + 2 * MIN,
      lastRunAt: T0 + MIN,
      lastTaskId: "sweep@2026-01-01T10:01:00.000Z",
    });
    expect(await taskIds(tasks)).toEqual(["sweep@2026-01-01T10:00:00.000Z", "sweep@2026-01-01T10:01:00.000Z"]);
  });

  test("a cron schedule fires at 09:00 in its zone on each day across a change to summer time", async () => {
    const { schedules, tasks, clock } = setup();
    clock.now = Date.parse("2025-03-07T00:00:00Z");
    await schedules.add({ id: "ny", cron: "0 9 * * *", timezone: "America/New_York" });
    // A runner passing every hour for four days.
    for (let h = 0; h < 96; h++) {
      clock.now += 3_600_000;
      await schedules.tick();
    }
    expect(await taskIds(tasks)).toEqual([
      "ny@2025-03-07T14:00:00.000Z",
      "ny@2025-03-08T14:00:00.000Z",
      "ny@2025-03-09T13:00:00.000Z",
      "ny@2025-03-10T13:00:00.000Z",
    ]);
  });

  test("across the fall-back night a half-hourly cron runs on both 02:00 and both 02:30, each once", async () => {
    const { schedules, tasks, clock } = setup();
    clock.now = Date.parse("2025-10-25T23:40:00Z");
    await schedules.add({ id: "hh", cron: "*/30 * * * *", timezone: "Europe/Berlin" });
    for (let m = 0; m < 120; m += 5) {
      clock.now += 5 * MIN;
      await schedules.tick();
    }
    expect(await taskIds(tasks)).toEqual([
      "hh@2025-10-26T00:00:00.000Z",
      "hh@2025-10-26T00:30:00.000Z",
      "hh@2025-10-26T01:00:00.000Z",
      "hh@2025-10-26T01:30:00.000Z",
    ]);
  });

  test("after downtime a schedule submits only the latest due time, not a backlog, and moves past now", async () => {
    const { schedules, tasks, clock } = setup();
    await schedules.add({ id: "s", everyMs: MIN });
    await schedules.add({ id: "c", cron: "* * * * *", timezone: "UTC" });
    clock.now = T0 + 10 * MIN + 5000; // down for ten periods
    const r = await schedules.tick();
    expect(r.submitted.map((t) => t.id).sort()).toEqual(["c@2026-01-01T10:10:00.000Z", "s@2026-01-01T10:10:00.000Z"]);
    expect(r.nextDueAt).toBe(T0 + 11 * MIN);
    for (const s of await schedules.list()) expect(s.nextRunAt).toBe(T0 + 11 * MIN);
    expect((await tasks.list()).length).toBe(2);
  });

  test("with catch-up N a schedule back from downtime also submits the N most recent missed runs, no more", async () => {
    const { schedules, tasks, clock } = setup();
    await schedules.add({ id: "s", everyMs: MIN, catchUp: 3 });
    await schedules.add({ id: "c", cron: "* * * * *", timezone: "UTC", catchUp: 3 });
    clock.now = T0 + 10 * MIN + 5000;
    await schedules.tick();
    const ids = await taskIds(tasks);
    for (const s of ["s", "c"])
      expect(ids.filter((id) => id.startsWith(`${s}@`))).toEqual([7, 8, 9, 10].map((m) => `${s}@${iso(T0 + m * MIN)}`));
    // Back on time, one run per due time again.
    clock.now = T0 + 11 * MIN;
    expect((await schedules.tick()).submitted.length).toBe(2);
  });

  test("a removed schedule submits nothing more, and its tasks stay", async () => {
    const { schedules, tasks, clock } = setup();
    await schedules.add({ id: "s", everyMs: MIN });
    clock.now = T0;
    await schedules.tick();
    await schedules.remove("s");
    clock.now = T0 + 5 * MIN;
    expect(await schedules.tick()).toEqual({ submitted: [], nextDueAt: null, failed: [] });
    expect(await taskIds(tasks)).toEqual(["s@2026-01-01T10:00:00.000Z"]);
  });

  test("a corrupt record is reported by the pass and the other schedules still run", async () => {
    const { schedules, store, tasks, clock } = setup();
    await schedules.add({ id: "good", everyMs: MIN });
    await store.indexAdd(SCHEDULE_INDEX, "junk");
    await store.put(scheduleKey("junk"), { id: "junk", nextRunAt: "soon" });
    clock.now = T0;
    const r = await schedules.tick();
    expect(r.submitted.map((t) => t.id)).toEqual([scheduledTaskId("good", T0)]);
    expect(r.failed.map((f) => [f.scheduleId, (f.err as Error).message])).toEqual([
      ["junk", "schedule:junk does not hold a schedule record"],
    ]);
    expect(await taskIds(tasks)).toEqual([scheduledTaskId("good", T0)]);
  });
});

describe("exactly once per due time", () => {
  /**
   * Five runners, one per store handle (a "process" each), pass 40 times half a second apart, each
   * seeing a slightly different time; returns the ids in the store and how many tasks passes created.
   */
  async function race(handles: Store[]): Promise<{ ids: string[]; created: number; last: number }> {
    const clock = { now: T0 - 1 };
    const runners = handles.map((h) => new ScheduleManager(new TaskManager(h, { clock: () => clock.now })));
    await runners[0]!.add({ id: "fast", everyMs: 1000 });
    await runners[1]!.add({ id: "cron", cron: "*/2 * * * * *", timezone: "UTC", catchUp: 1 });
    let created = 0;
    for (let step = 0; step < 40; step++) {
      clock.now = T0 + step * 500;
      const results = await Promise.all(runners.map((r, i) => r.tick(clock.now + i * 120)));
      for (const r of results) {
        expect(r.failed).toEqual([]);
        created += r.submitted.length;
      }
    }
    const last = T0 + 39 * 500 + (handles.length - 1) * 120;
    for (const s of await runners[0]!.list()) expect(s.nextRunAt).toBeGreaterThan(last);
    return { ids: (await runners[0]!.tasks.list()).map((t) => t.id).sort(), created, last };
  }

  /** Every due time of both schedules from T0 to `last`. */
  function grid(last: number): string[] {
    const fast = Array.from({ length: Math.floor((last - T0) / 1000) + 1 }, (_, i) => `fast@${iso(T0 + i * 1000)}`);
    const cron = Array.from({ length: Math.floor((last - T0) / 2000) + 1 }, (_, i) => `cron@${iso(T0 + i * 2000)}`);
    return [...cron, ...fast].sort();
  }

  test("runners in many processes racing on a racy store submit every due time exactly once", async () => {
    const store = new RacyStore();
    const { ids, created, last } = await race(Array.from({ length: 5 }, () => store));
    expect(ids).toEqual(grid(last));
    // Each was created by exactly one pass; the others found it there.
    expect(created).toBe(ids.length);
    expect(store.retries).toBeGreaterThan(0); // the race was real
  });

  test("runners on five connections to one SQLite file submit every due time exactly once", async () => {
    const dir = tempDir();
    const handles = Array.from({ length: 5 }, () => new SqliteStore(join(dir.path, "race.db")));
    try {
      const { ids, created, last } = await race(handles);
      expect(ids).toEqual(grid(last));
      expect(created).toBe(ids.length);
    } finally {
      await Promise.all(handles.map((h) => h.close()));
      dir.cleanup();
    }
  });

  test("a pass that submitted but failed to advance leaves the schedule due, and the next pass adds no second task", async () => {
    const { store, fail } = failing(new MemoryStore(), "update", "schedule:");
    const { schedules, tasks, clock } = setup(store);
    await schedules.add({ id: "s", everyMs: MIN });
    clock.now = T0;
    fail();
    const crashed = await schedules.tick();
    expect(crashed.failed.map((f) => (f.err as Error).message)).toEqual(["injected update failure on schedule:s"]);
    expect(await taskIds(tasks)).toEqual([scheduledTaskId("s", T0)]);
    expect((await schedules.get("s"))!.nextRunAt).toBe(T0);
    // Another process (or this one again) passes: the task exists, the schedule moves on.
    const other = new ScheduleManager(new TaskManager(store, { clock: () => clock.now }));
    clock.now = T0 + 1000;
    const retried = await other.tick();
    expect(retried).toMatchObject({ submitted: [], failed: [], nextDueAt: T0 + MIN });
    expect(await taskIds(tasks)).toEqual([scheduledTaskId("s", T0)]);
    expect(await schedules.get("s")).toMatchObject({ nextRunAt: T0 + MIN, lastTaskId: scheduledTaskId("s", T0) });
  });

  test("a pass whose submit failed leaves the schedule due, and the next pass submits that due time", async () => {
    const { schedules, tasks, clock } = setup();
    await schedules.add({ id: "s", everyMs: MIN });
    clock.now = T0;
    const submitMany = tasks.submitMany.bind(tasks);
    tasks.submitMany = () => Promise.reject(new StoreError("the store is down"));
    expect((await schedules.tick()).failed.length).toBe(1);
    expect((await schedules.get("s"))!.nextRunAt).toBe(T0);
    tasks.submitMany = submitMany;
    clock.now = T0 + 2000;
    expect((await schedules.tick()).submitted.map((t) => t.id)).toEqual([scheduledTaskId("s", T0)]);
  });

  test("a pass that read a schedule before another pass advanced it never moves the schedule back", async () => {
    const { schedules, store, tasks, clock } = setup();
    await schedules.add({ id: "s", everyMs: MIN });
    const other = new ScheduleManager(new TaskManager(store, { clock: () => clock.now }));
    // This pass stalls between its submit and its advance while another runs two periods later.
    const submitMany = schedules.tasks.submitMany.bind(schedules.tasks);
    schedules.tasks.submitMany = async (inits) => {
      const r = await submitMany(inits);
      await other.tick(T0 + 2 * MIN);
      return r;
    };
    await schedules.tick(T0);
    expect(await schedules.get("s")).toMatchObject({ nextRunAt: T0 + 3 * MIN, lastRunAt: T0 + 2 * MIN });
    schedules.tasks.submitMany = submitMany;
    clock.now = T0 + 3 * MIN;
    await schedules.tick();
    expect(await taskIds(tasks)).toEqual([0, 2, 3].map((m) => scheduledTaskId("s", T0 + m * MIN)));
  });

  test("a pass that read a schedule before it was removed does not bring the record back", async () => {
    const { schedules, store, clock } = setup();
    await schedules.add({ id: "s", everyMs: MIN });
    clock.now = T0;
    const remover = new ScheduleManager(new TaskManager(store));
    // Remove it between this pass's submit and its advance.
    const submitMany = schedules.tasks.submitMany.bind(schedules.tasks);
    schedules.tasks.submitMany = async (inits) => {
      const r = await submitMany(inits);
      await remover.remove("s");
      return r;
    };
    await schedules.tick();
    expect(await store.get(scheduleKey("s"))).toBeUndefined();
    expect(await schedules.list()).toEqual([]);
  });
});

describe("the runner", () => {
  test("a runner started before any schedule exists is woken by an add and submits at the first due time", async () => {
    const store = new MemoryStore();
    const runner = new ScheduleManager(new TaskManager(store));
    runner.start();
    try {
      // Added through another manager, as another process would.
      const s = await new ScheduleManager(new TaskManager(store)).add({ id: "soon", everyMs: 1000 });
      const id = scheduledTaskId("soon", s.nextRunAt!);
      // Without the wake-up the runner would sleep for a minute; this waits for the event instead.
      await until(async () => (await runner.tasks.get(id)) !== undefined, `task ${id}`, 4000, 20);
      expect((await runner.get("soon"))!.lastTaskId).toBe(id);
    } finally {
      await runner.stop();
      await store.close();
    }
  });

  test("stop waits for the pass in flight and no pass starts after it, even on a wake-up", async () => {
    const inner = new MemoryStore();
    let passes = 0;
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    const store = new Proxy(inner, {
      get(target, prop) {
        const v = Reflect.get(target, prop, target);
        if (prop === "indexMembers")
          return async (name: string) => {
            passes++;
            await gate;
            return v.call(target, name);
          };
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
    const runner = new ScheduleManager(new TaskManager(store));
    runner.start();
    await until(() => passes === 1, "the first pass");
    let stopped = false;
    const stopping = runner.stop().then(() => (stopped = true));
    await Promise.resolve();
    expect(stopped).toBe(false); // the pass is still in flight
    release();
    await stopping;
    await inner.notify("schedules");
    for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
    expect(passes).toBe(1);
    await inner.close();
  });
});

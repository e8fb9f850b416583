/**
 * Recovery across OS processes.
 * - Crash: a worker process is SIGKILLed while it holds leases; once their `claim_ttl_sec` has
 *   passed, the surviving processes' runtimes release them and complete them, and no task is
 *   completed twice (the store's result comes from the final lease; each task is reported once).
 * - Restart: tasks in a file, sqlite or redis store outlive a graceful stop of every process and
 *   are completed once the processes start again.
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { TaskManager } from "../../src/coordination/task-manager.ts";
import type { Task } from "../../src/core/task.ts";
import { openChoice } from "../../src/cli/store-config.ts";
import { SqliteStore } from "../../src/store/sqlite.ts";
import { useE2eEnvironment } from "../support/e2e.ts";
import { until } from "../support/wait.ts";
import { counts, killAll, readJournals, WorkerProcess } from "./fixtures/cluster.ts";
import type { Config } from "./fixtures/coordination-worker.ts";

type Backend = "file" | "sqlite" | "redis";
type Result = { doubled: number; process: string; agent: string; attempt: number; token: string };

const { tmp, redis } = useE2eEnvironment({ prefix: "converge-e2e-recovery-", redis: true, cleanup: [killAll] });

let db = 0;
/** A fresh, empty location per test. */
async function location(backend: Backend, name: string): Promise<string> {
  if (backend === "redis") return `${redis.url.replace(/\/0$/, "")}/${++db}`;
  const path = join(tmp.path, backend === "sqlite" ? `${name}.db` : name);
  if (backend === "sqlite") await new SqliteStore(path).close();
  return path;
}

const id = (i: number) => `t${String(i).padStart(3, "0")}`;

async function allTasks(tm: TaskManager, n: number): Promise<Task[]> {
  return (await Promise.all(Array.from({ length: n }, (_, i) => tm.get(id(i))))) as Task[];
}

describe("crash recovery", () => {
  for (const backend of ["sqlite", "redis"] as const) {
    test(`${backend}: tasks held by a SIGKILLed process go back to pending after their TTL and are completed once by the survivors`, async () => {
      const N = 120;
      const loc = await location(backend, "crash");
      const outDir = join(tmp.path, `crash-${backend}`);
      const store = await openChoice({ backend, location: loc });
      const tm = new TaskManager(store);
      const base = {
        backend,
        location: loc,
        outDir,
        concurrency: 2,
        delayMs: 150,
        releaseIntervalMs: 100,
        pollIntervalMs: 1000,
        events: true,
      } as const;
      const workers = ["p0", "p1", "p2"].map(
        (name) => new WorkerProcess({ ...base, name, agents: [{ name: "a0" }, { name: "a1" }] }),
      );
      try {
        const ids = await Promise.all(workers.map((w) => w.ready()));
        const victimIds = new Set(Object.values(ids[0]!));
        for (let i = 0; i < N; i++) await tm.submit({ id: id(i), inputs: { x: i }, constraints: { claim_ttl_sec: 1 } });

        // Kill p0 mid-flight: it has finished some tasks and holds leases on others.
        const victim = workers[0]!;
        await victim.waitFor((e) => e.event === "start" && victim.starts().length >= 8, 15_000);
        victim.kill("SIGKILL");
        await victim.exited;
        const held = (await allTasks(tm, N)).filter((t) => t.state === "assigned" && victimIds.has(t.assignedTo!));
        expect(held.length).toBeGreaterThan(0);
        const expiry = new Map(held.map((t) => [t.id, t.leaseExpiresAt!]));
        for (const t of held) expect(t.leaseExpiresAt! - t.claimedAt!).toBe(1000);

        await until(async () => (await tm.openTasks()).length === 0, "every task to be final", 30_000, 50);
        const codes = await Promise.all(workers.slice(1).map((w) => w.stop()));
        expect(codes).toEqual([0, 0]);

        const tasks = await allTasks(tm, N);
        const journal = readJournals(outDir);
        const reports = journal.filter((l) => l.kind === "R");
        // No task was reported twice, and no survivor lost a lease.
        expect([...counts(reports.map((l) => l.task)).values()].every((c) => c === 1)).toBe(true);
        expect(journal.filter((l) => l.kind === "L")).toEqual([]);
        const reportOf = new Map(reports.map((l) => [l.task, l]));
        for (const t of tasks) {
          expect(t.state).toBe("completed");
          const r = t.result as Result;
          expect(r.doubled).toBe(Number(t.inputs.x) * 2);
          // The result is the final lease's: its attempt number is the record's.
          expect(r.attempt).toBe(t.attempts);
          const rep = reportOf.get(t.id);
          if (rep) {
            expect(rep.token).toBe(r.token);
            expect(rep.who).toBe(`${r.process}.${r.agent}`);
          } else {
            // Only the victim can have been killed between its report and its journal line.
            expect(r.process).toBe("p0");
          }
        }
        // The orphaned tasks: released only after their lease expired, then completed by a survivor on attempt 2.
        for (const h of held) {
          const t = tasks.find((t) => t.id === h.id)!;
          const r = t.result as Result;
          expect(r.process).not.toBe("p0");
          expect(t.attempts).toBe(2);
          expect(t.claimedAt!).toBeGreaterThanOrEqual(expiry.get(t.id)!);
        }
        // Survivors' journals show the orphans handled once each, after the kill.
        const survivorHandled = journal.filter((l) => l.kind === "H" && !l.who.startsWith("p0."));
        expect([...counts(survivorHandled.map((l) => l.task)).values()].every((c) => c === 1)).toBe(true);
      } finally {
        await Promise.all(workers.map((w) => w.stop(2000)));
        await store.close();
      }
    }, 40_000);
  }
});

describe("restart recovery", () => {
  for (const backend of ["file", "sqlite", "redis"] as const) {
    test(`${backend}: submitted tasks survive a stop of every process and complete after the restart`, async () => {
      const N = 40;
      const loc = await location(backend, "restart");
      const outDir = join(tmp.path, `restart-${backend}`);
      // The file store is atomic only within one process: one worker process there, two elsewhere.
      const names = backend === "file" ? ["p0"] : ["p0", "p1"];
      const config = (name: string, gen: number): Config => ({
        backend,
        location: loc,
        name: `${name}g${gen}`,
        outDir,
        agents: [{ name: "a0" }, { name: "a1" }],
        delayMs: 40,
        pollIntervalMs: 200,
        shutdownGraceMs: 5000,
        events: true,
      });
      let store = await openChoice({ backend, location: loc });
      let tm = new TaskManager(store);
      let workers: WorkerProcess[] = [];
      try {
        for (let i = 0; i < N; i++) await tm.submit({ id: id(i), inputs: { x: i } });
        // Generation 1 starts on the work and is stopped (SIGTERM: running handlers finish) part way.
        workers = names.map((n) => new WorkerProcess(config(n, 1)));
        await Promise.all(workers.map((w) => w.ready()));
        await until(() => workers.reduce((s, w) => s + w.starts().length, 0) >= 4, "some tasks to start", 15_000);
        expect(await Promise.all(workers.map((w) => w.stop()))).toEqual(names.map(() => 0));
        await store.close();

        // Nothing is left claimed; some work is still pending.
        store = await openChoice({ backend, location: loc });
        tm = new TaskManager(store);
        const between = await allTasks(tm, N);
        expect(between.filter((t) => t.state === "assigned" || t.state === "running")).toEqual([]);
        const pendingAtRestart = between.filter((t) => t.state === "pending").length;
        expect(pendingAtRestart).toBeGreaterThan(0);
        expect(between.filter((t) => t.state === "completed").length + pendingAtRestart).toBe(N);

        // Generation 2 finishes it.
        workers = names.map((n) => new WorkerProcess(config(n, 2)));
        await Promise.all(workers.map((w) => w.ready()));
        await until(
          async () => (await allTasks(tm, N)).every((t) => t.state === "completed"),
          "every task to complete",
          20_000,
          50,
        );
        expect(await Promise.all(workers.map((w) => w.stop()))).toEqual(names.map(() => 0));

        const journal = readJournals(outDir);
        const handled = journal.filter((l) => l.kind === "H");
        expect(handled.length).toBe(N);
        expect(counts(handled.map((l) => l.task)).size).toBe(N);
        expect(handled.filter((l) => l.who.includes("g2.")).length).toBe(pendingAtRestart);
        for (const t of await allTasks(tm, N)) {
          expect(t.attempts).toBe(1);
          expect((t.result as Result).doubled).toBe(Number(t.inputs.x) * 2);
        }
      } finally {
        await Promise.all(workers.map((w) => w.stop(2000)));
        await store.close();
      }
    }, 40_000);
  }
});

/**
 * Fencing across connections and processes: a holder whose lease expired and whose task was
 * claimed again cannot report, fail or renew it (LeaseLostError), and the new holder's work
 * stands; a holder that keeps renewing is never released, however often others reap.
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { TaskManager } from "../../src/coordination/task-manager.ts";
import { LeaseLostError } from "../../src/core/errors.ts";
import { openChoice } from "../../src/cli/store-config.ts";
import { SqliteStore } from "../../src/store/sqlite.ts";
import { useE2eEnvironment } from "../support/e2e.ts";
import { until } from "../support/wait.ts";
import { killAll, readJournals, WorkerProcess, type WorkerEvent } from "./fixtures/cluster.ts";

type Result = { process: string; agent: string; attempt: number; token: string };

const { tmp, redis } = useE2eEnvironment({ prefix: "converge-e2e-fencing-", redis: true, cleanup: [killAll] });

let db = 0;
async function location(backend: "sqlite" | "redis", name: string): Promise<string> {
  if (backend === "redis") return `${redis.url.replace(/\/0$/, "")}/${++db}`;
  const path = join(tmp.path, `${name}.db`);
  await new SqliteStore(path).close();
  return path;
}

describe("fencing", () => {
  test("sqlite, two connections: an expired and re-claimed lease cannot report, fail or renew", async () => {
    const path = await location("sqlite", "two-connections");
    const a = new TaskManager(new SqliteStore(path));
    const b = new TaskManager(new SqliteStore(path));
    try {
      await a.submit({ id: "t", inputs: { x: 1 }, constraints: { claim_ttl_sec: 0.1 } });
      const first = (await a.claim("t", "agent-a"))!;
      expect(first).not.toBeNull();
      expect(await b.claim("t", "agent-b")).toBeNull(); // held
      expect(await b.releaseExpiredClaims()).toEqual([]); // not expired yet
      await until(
        async () => (await b.releaseExpiredClaims()).includes("t"),
        "the lease to expire and be released",
        2000,
        20,
      );
      const second = (await b.claim("t", "agent-b"))!;
      expect(second.task.attempts).toBe(2);

      const holderA = { agentId: "agent-a", token: first.token };
      await expect(a.report("t", "stale", holderA)).rejects.toBeInstanceOf(LeaseLostError);
      await expect(a.fail("t", "stale", holderA)).rejects.toBeInstanceOf(LeaseLostError);
      await expect(a.renew("t", first.token)).rejects.toBeInstanceOf(LeaseLostError);
      await expect(a.progress("t", 50, holderA)).rejects.toBeInstanceOf(LeaseLostError);
      await expect(a.release("t", holderA)).rejects.toBeInstanceOf(LeaseLostError);

      const done = await b.report("t", "fresh", { agentId: "agent-b", token: second.token });
      expect(done.state).toBe("completed");
      // Still fenced after completion, and the record is B's.
      await expect(a.report("t", "stale", holderA)).rejects.toBeInstanceOf(LeaseLostError);
      const t = (await a.get("t"))!;
      expect(t.result).toBe("fresh");
      expect(t.assignedTo).toBe("agent-b");
    } finally {
      await a.store.close();
      await b.store.close();
    }
  });

  for (const backend of ["sqlite", "redis"] as const) {
    test(`${backend}, two processes: a frozen holder loses its lease to another process and records nothing when it thaws`, async () => {
      const loc = await location(backend, "frozen");
      const outDir = join(tmp.path, `frozen-${backend}`);
      const store = await openChoice({ backend, location: loc });
      const tm = new TaskManager(store);
      const base = { backend, location: loc, outDir, delayMs: 1500, releaseIntervalMs: 100, events: true } as const;
      const p0 = new WorkerProcess({ ...base, name: "p0", agents: [{ name: "a0" }] });
      let p1: WorkerProcess | undefined;
      try {
        await p0.ready();
        await tm.submit({ id: "t", inputs: { x: 21 }, constraints: { claim_ttl_sec: 1 } });
        await p0.waitFor((e) => e.event === "start" && e.task === "t");
        p0.kill("SIGSTOP"); // mid-handler, before its first renewal (at 500 ms)
        const firstLease = (await tm.get("t"))!;
        expect(firstLease.attempts).toBe(1);

        // Another process reaps the expired lease, claims the task and completes it (renewing as it goes).
        p1 = new WorkerProcess({ ...base, name: "p1", agents: [{ name: "a0" }] });
        await p1.ready();
        await until(async () => (await tm.get("t"))!.state === "completed", "p1 to complete the task", 10_000, 20);
        const done = (await tm.get("t"))!;
        expect((done.result as Result).process).toBe("p1");
        expect(done.attempts).toBe(2);

        // The old holder thaws: its renewal or its report is refused, and nothing changes.
        p0.kill("SIGCONT");
        const stopped = (await p0.stop().then(() => p0.events.find((e) => e.event === "stopped"))) as Extract<
          WorkerEvent,
          { event: "stopped" }
        >;
        expect(stopped.stats.a0!.leasesLost).toBe(1);
        expect(stopped.stats.a0!.completed).toBe(0);
        const after = (await tm.get("t"))!;
        expect(after.result).toEqual(done.result);
        expect(after.updatedAt).toBe(done.updatedAt);
        const journal = readJournals(outDir);
        expect(journal.filter((l) => l.kind === "R").map((l) => l.who)).toEqual(["p1.a0"]);
        // p1 held the task for 1.5 s with a 1 s lease while reaping every 100 ms: renewals kept it.
        expect(journal.filter((l) => l.kind === "H" && l.who === "p1.a0").length).toBe(1);
      } finally {
        p0.kill("SIGCONT");
        await Promise.all([p0.stop(2000), p1?.stop(2000)]);
        await store.close();
      }
    }, 30_000);
  }

  test("sqlite, two processes: renewals keep a task three times longer than its lease while another process reaps", async () => {
    const loc = await location("sqlite", "renew");
    const outDir = join(tmp.path, "renew");
    const store = await openChoice({ backend: "sqlite", location: loc });
    const tm = new TaskManager(store);
    const w = new WorkerProcess({
      backend: "sqlite",
      location: loc,
      name: "p0",
      outDir,
      agents: [{ name: "a0" }],
      delayMs: 1500,
      events: true,
    });
    let reaping = true;
    try {
      await w.ready();
      await tm.submit({ id: "long", inputs: { x: 1 }, constraints: { claim_ttl_sec: 0.5 } });
      const released: string[] = [];
      const reaper = (async () => {
        while (reaping) {
          released.push(...(await tm.releaseExpiredClaims()));
          await Bun.sleep(20);
        }
      })();
      await until(async () => (await tm.get("long"))!.state === "completed", "the long task", 10_000, 20);
      reaping = false;
      await reaper;
      expect(released).toEqual([]);
      const t = (await tm.get("long"))!;
      expect(t.attempts).toBe(1);
      expect(w.starts().length).toBe(1);
    } finally {
      reaping = false;
      await w.stop(2000);
      await store.close();
    }
  }, 20_000);
});

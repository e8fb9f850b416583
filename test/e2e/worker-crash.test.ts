/**
 * A worker process killed with SIGKILL while it holds leases (claim_ttl_sec 2): its tasks go back
 * to pending when their leases expire, the other processes finish them, and every task ends
 * completed exactly once. `converge tasks list` shows holders and leases, and marks the holder
 * "(gone)" once the killed process has stopped beating, though its discovery records remain.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { TaskManager } from "../../src/coordination/task-manager.ts";
import { runCli, stopAll, type Running } from "../support/cli.ts";
import { useE2eEnvironment } from "../support/e2e.ts";
import { until } from "../support/wait.ts";
import {
  MODULES,
  agentIds,
  duplicates,
  openStore,
  readLines,
  startWorker,
  waitFinal,
  writeConfig,
  type StoreSpec,
} from "./fixtures/worker-support/harness.ts";

const { tmp, redis } = useE2eEnvironment({ prefix: "converge-e2e-worker-crash-", redis: true, cleanup: [stopAll] });

const TASKS = 400;

test.concurrent("a SIGKILLed worker's leased tasks are completed by the others, each exactly once", async () => {
  const spec: StoreSpec = { backend: "sqlite", path: join(tmp.path, "crash.db") };
  const config = writeConfig(tmp.path, "crash", spec, {
    agents: 4,
    concurrency: 2,
    agent: join(MODULES, "sleepy.js"),
    claim_ttl_sec: 2,
  });
  const logs = [0, 1, 2].map((i) => join(tmp.path, `crash-${i}.log`));
  const workers = await Promise.all(
    logs.map((log) => startWorker(config, { env: { HANDLED_LOG: log, SLEEP_MS: "150" } })),
  );
  const store = await openStore(spec);
  try {
    const tm = new TaskManager(store);
    const ids = Array.from({ length: TASKS }, (_, i) => `c${i}`);
    for (const id of ids) await tm.submit({ id, inputs: { x: Number(id.slice(1)) } });

    // The victim holds leases once it has finished a few tasks: it always keeps 8 in hand while work is pending.
    const victim = workers[0]!;
    const victimAgents = agentIds(victim);
    expect(victimAgents.length).toBe(4);
    await until(
      () => readLines([logs[0]!]).filter((l) => l.startsWith("done")).length >= 20,
      "the victim to finish some tasks",
      15_000,
      5,
    );
    const listed = await runCli(["tasks", "list", "-c", config, "--state", "assigned"]);
    expect(listed.code).toBe(0);
    const heldRows = listed.stdout.split("\n").filter((l) => / assigned /.test(l));
    expect(heldRows.length).toBeGreaterThan(0);
    for (const row of heldRows) {
      expect(row).toMatch(/ assigned\s+\d+\s+\d+\s+[0-9a-f]{12}\s+\ds\b/); // priority, attempts, holder prefix, then the lease left (at most 2 s)
      expect(row).not.toContain("(gone)");
    }

    victim.proc.kill("SIGKILL");
    await victim.exited;
    const held = (await tm.list("assigned")).filter((t) => victimAgents.includes(t.assignedTo!));
    expect(held.length).toBeGreaterThan(0); // it died holding leases
    const records = await waitFinal(tm, ids, 45_000);
    const codes = await Promise.all(workers.slice(1).map((w) => w.stop("SIGTERM")));
    expect(codes).toEqual([0, 0]);

    const started = new Set(
      readLines([logs[0]!])
        .filter((l) => l.startsWith("start"))
        .map((l) => l.slice(6)),
    );
    for (const t of records) {
      expect(t.state).toBe("completed");
      expect((t.result as { doubled: number }).doubled).toBe(Number(t.id.slice(1)) * 2);
      // The record names the agent that reported it, and that agent's result says it did the work.
      expect((t.result as { by: string }).by).toBe(t.assignedTo!);
      // A second attempt happens only for a task the victim had started.
      if (t.attempts > 1) expect(started.has(t.id)).toBe(true);
      expect(t.attempts).toBeLessThanOrEqual(2);
    }
    for (const t of held) expect(records.find((r) => r.id === t.id)!.attempts).toBe(2);
    // Among the survivors, each task was done once; only the victim's unreported tasks were done twice overall.
    const survivorsDone = readLines(logs.slice(1))
      .filter((l) => l.startsWith("done"))
      .map((l) => l.slice(5));
    expect(duplicates(survivorsDone)).toEqual([]);
    const allDone = readLines(logs)
      .filter((l) => l.startsWith("done"))
      .map((l) => l.slice(5));
    expect(new Set(allDone)).toEqual(new Set(ids));
    for (const id of duplicates(allDone)) expect(started.has(id)).toBe(true);
    let reported = 0;
    for (const w of workers.slice(1)) reported += Number(/(\d+) tasks? completed/.exec(w.stdout)?.[1] ?? NaN);
    expect(reported).toBe(records.filter((t) => !victimAgents.includes(t.assignedTo!)).length);
  } finally {
    await Promise.all(workers.map((w) => w.stop("SIGKILL")));
    await store.close();
  }
}, 90_000);

test.concurrent("tasks list marks the holder (gone) once its process was killed, and the lease left", async () => {
  const spec: StoreSpec = { backend: "redis", url: redis.url };
  // claim_ttl_sec 6: beats every second, gone after 3 s without one, while the leases (renewed every 3 s) have 3 s or more left.
  // No other process shares this store, so nothing releases the expired leases before the rescuer starts.
  const config = writeConfig(tmp.path, "gone", spec, {
    agents: 2,
    concurrency: 2,
    agent: join(MODULES, "sleepy.js"),
    claim_ttl_sec: 6,
  });
  const log = join(tmp.path, "gone.log");
  const holder = await startWorker(config, { env: { HANDLED_LOG: log, SLEEP_MS: "60000" } });
  let rescuer: Running | undefined;
  const store = await openStore(spec);
  try {
    const tm = new TaskManager(store);
    const ids = ["g1", "g2", "g3"];
    for (const id of ids) await tm.submit({ id, inputs: { x: 1 } });
    await until(() => readLines([log]).length === 3, "the three tasks to start", 10_000);
    const prefixes = agentIds(holder).map((a) => a.slice(0, 12));
    const rows = async () =>
      (await runCli(["tasks", "list", "-c", config])).stdout.split("\n").filter((l) => / assigned /.test(l));
    const before = await rows();
    expect(before.length).toBe(3);
    for (const row of before) {
      expect(prefixes).toContain(row.split(/\s+/)[4]!);
      expect(row).toMatch(/ assigned\s+0\s+1\s+[0-9a-f]{12}\s+[3-6]s$/);
    }

    holder.proc.kill("SIGKILL");
    await holder.exited;
    const killed = performance.now();
    let after: string[] = [];
    await until(
      async () => (after = await rows()).every((r) => r.includes("(gone)")),
      "the holder to show as gone",
      10_000,
      200,
    );
    expect(performance.now() - killed).toBeLessThan(8000); // 3 missed beats, plus a loaded machine's CLI start-ups
    expect(after.length).toBe(3); // still assigned: nobody has released them yet
    for (const row of after) expect(row).toMatch(/[0-9a-f]{12} \(gone\)\s+(\d+s|expired)$/);
    // Its descriptors are still in discovery: only the missing heartbeat says it is gone.
    const agents = await runCli(["agents", "list", "-c", config]);
    for (const p of prefixes) expect(agents.stdout).toContain(p);

    rescuer = await startWorker(config, { env: { SLEEP_MS: "10" } });
    const records = await waitFinal(tm, ids, 20_000);
    for (const t of records) {
      expect(t.state).toBe("completed");
      expect(t.attempts).toBe(2);
      expect(agentIds(rescuer)).toContain(t.assignedTo!);
    }
  } finally {
    await Promise.all([holder.stop("SIGKILL"), rescuer?.stop("SIGKILL")]);
    await store.close();
  }
}, 40_000);

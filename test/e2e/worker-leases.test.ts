/**
 * Leases under real `converge run` processes: long handlers are renewed and never taken over, and
 * SIGTERM drains — running handlers get the grace period, then their tasks go back to pending
 * (within the grace period, checked in the store right after exit) and another worker completes them.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { TaskManager } from "../../src/coordination/task-manager.ts";
import { freePort, stopAll } from "../support/cli.ts";
import { useE2eEnvironment } from "../support/e2e.ts";
import { until } from "../support/wait.ts";
import {
  MODULES,
  agentIds,
  openStore,
  parsePrometheus,
  readLines,
  startWorker,
  waitFinal,
  writeConfig,
  type StoreSpec,
} from "./fixtures/worker-support/harness.ts";

const { tmp } = useE2eEnvironment({ prefix: "converge-e2e-worker-leases-", cleanup: [stopAll] });

test.concurrent("long tasks (3 s handler, claim_ttl_sec 1) are renewed, never taken over, and complete once", async () => {
  const spec: StoreSpec = { backend: "sqlite", path: join(tmp.path, "long.db") };
  const port = freePort();
  const keys = { agents: 2, concurrency: 2, agent: join(MODULES, "sleepy.js"), claim_ttl_sec: 1 };
  const configs = [
    writeConfig(tmp.path, "long-http", spec, { ...keys, http_port: port }),
    writeConfig(tmp.path, "long", spec, keys),
  ];
  const logs = [0, 1].map((i) => join(tmp.path, `long-${i}.log`));
  // Two processes, so that a lease that lapsed would be taken over by the other one.
  const workers = await Promise.all(
    logs.map((log, i) => startWorker(configs[i]!, { env: { HANDLED_LOG: log, SLEEP_MS: "3000" } })),
  );
  const store = await openStore(spec);
  try {
    const tm = new TaskManager(store);
    const ids = ["long-1", "long-2", "long-3", "long-4", "long-5", "long-6"]; // more than one process's 4 slots
    for (const id of ids) await tm.submit({ id, inputs: { x: 1 } });
    const records = await waitFinal(tm, ids, 15_000);
    for (const t of records) {
      expect(t.state).toBe("completed");
      expect(t.attempts).toBe(1);
    }
    const lines = readLines(logs);
    expect(lines.filter((l) => l.startsWith("start")).sort()).toEqual(ids.map((id) => `start ${id}`));
    expect(lines.filter((l) => l.startsWith("done")).sort()).toEqual(ids.map((id) => `done ${id}`));
    // The process with the http port renewed each of its tasks about 6 times (every 0.5 s for 3 s) and lost none.
    const metrics = parsePrometheus(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());
    const mine = records.filter((t) => agentIds(workers[0]!).includes(t.assignedTo!)).length;
    expect(mine).toBeGreaterThan(0);
    expect(metrics.get("converge_leases_lost_total")).toBe(0);
    expect(metrics.get("converge_leases_renewed_total")!).toBeGreaterThanOrEqual(mine * 4);
  } finally {
    await Promise.all(workers.map((w) => w.stop("SIGKILL")));
    await store.close();
  }
}, 30_000);

test.concurrent("SIGTERM drains: unfinished tasks are back to pending within the grace period, and another worker completes them", async () => {
  const spec: StoreSpec = { backend: "sqlite", path: join(tmp.path, "drain.db") };
  const grace = 1;
  const config = writeConfig(tmp.path, "drain", spec, {
    agents: 2,
    concurrency: 2,
    agent: join(MODULES, "sleepy.js"),
    shutdown_grace_sec: grace,
    claim_ttl_sec: 30,
  });
  const firstLog = join(tmp.path, "drain-first.log");
  const secondLog = join(tmp.path, "drain-second.log");
  const store = await openStore(spec);
  const first = await startWorker(config, { env: { HANDLED_LOG: firstLog, SLEEP_MS: "60000" } });
  let second: Awaited<ReturnType<typeof startWorker>> | undefined;
  try {
    const tm = new TaskManager(store);
    const quick = "drain-quick";
    const slow = ["drain-1", "drain-2", "drain-3"];
    await tm.submit({ id: quick, inputs: { x: 5, ms: 300 } }); // finishes within the grace period
    for (const id of slow) await tm.submit({ id, inputs: { x: 1 } });
    await until(
      () => readLines([firstLog]).filter((l) => l.startsWith("start")).length === 4,
      "all four tasks to start",
      10_000,
    );

    const t0 = performance.now();
    const code = await first.stop("SIGTERM");
    const took = (performance.now() - t0) / 1000;
    const after = await Promise.all(slow.map((id) => tm.get(id)));
    expect(code).toBe(0);
    expect(took).toBeLessThan(grace + 3); // the grace period, then handing back and closing
    expect(took).toBeGreaterThanOrEqual(grace - 0.05);
    for (const t of after) {
      expect(t!.state).toBe("pending");
      expect(t!.assignedTo).toBeNull();
      expect(t!.attempts).toBe(0); // a hand-back does not count as an attempt
    }
    expect((await tm.get(quick))!.state).toBe("completed");
    expect(first.stdout).toMatch(/1 task completed/);
    const firstLines = readLines([firstLog]);
    for (const id of slow) expect(firstLines).toContain(`aborted ${id}`); // ctx.signal fired

    second = await startWorker(config, { env: { HANDLED_LOG: secondLog, SLEEP_MS: "50" } });
    const records = await waitFinal(tm, slow, 10_000);
    for (const t of records) {
      expect(t.state).toBe("completed");
      expect(t.attempts).toBe(1);
      expect(agentIds(second!)).toContain(t.assignedTo!);
    }
    expect(await second.stop("SIGTERM")).toBe(0);
  } finally {
    await Promise.all([first.stop("SIGKILL"), second?.stop("SIGKILL")]);
    await store.close();
  }
}, 30_000);

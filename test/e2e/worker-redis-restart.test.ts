/**
 * Redis goes away in the middle of a run and comes back (same data: append-only file): the
 * workers reconnect by themselves and every task completes, once. `/healthz` follows the store —
 * 503 within 2 s of Redis stopping, 200 again once it is back — while `/readyz` stays 200, and
 * `/metrics` counts what this process did.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { TaskManager } from "../../src/coordination/task-manager.ts";
import { freePort, stopAll } from "../support/cli.ts";
import { useE2eEnvironment } from "../support/e2e.ts";
import type { RedisServer } from "../support/redis.ts";
import { until } from "../support/wait.ts";
import {
  MODULES,
  agentIds,
  duplicates,
  openStore,
  parsePrometheus,
  readLines,
  startPersistentRedis,
  startWorker,
  waitFinal,
  writeConfig,
  type StoreSpec,
} from "./fixtures/worker-support/harness.ts";

/** Started by the test itself, with an append-only file in the temporary directory so that it can restart with its data. */
let redis: RedisServer | undefined;
const { tmp } = useE2eEnvironment({ prefix: "converge-e2e-worker-redis-", cleanup: [stopAll, () => redis?.stop()] });

const TASKS = 400;

async function health(url: string): Promise<number> {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(1500) })).status;
  } catch {
    return 0;
  }
}

test("workers ride out a Redis restart: every task completes once, and /healthz follows the store", async () => {
  redis = await startPersistentRedis(tmp.path);
  const spec: StoreSpec = { backend: "redis", url: redis.url };
  const port = freePort();
  // Handlers take 200 ms, so the 16 running when Redis stops finish while it is down; leases of 10 s outlast the outage.
  const keys = { agents: 4, concurrency: 2, agent: join(MODULES, "sleepy.js"), claim_ttl_sec: 10 };
  const configs = [
    writeConfig(tmp.path, "restart-http", spec, { ...keys, http_port: port }),
    writeConfig(tmp.path, "restart", spec, keys),
  ];
  const logs = [0, 1].map((i) => join(tmp.path, `restart-${i}.log`));
  const workers = await Promise.all(
    logs.map((log, i) => startWorker(configs[i]!, { env: { HANDLED_LOG: log, SLEEP_MS: "200" } })),
  );
  const base = `http://127.0.0.1:${port}`;
  const store = await openStore(spec);
  try {
    expect(await health(`${base}/readyz`)).toBe(200);
    expect(await health(`${base}/healthz`)).toBe(200);
    const tm = new TaskManager(store);
    const ids = Array.from({ length: TASKS }, (_, i) => `r${i}`);
    for (const id of ids) await tm.submit({ id, inputs: { x: Number(id.slice(1)) } });
    await until(() => readLines(logs).length >= TASKS / 2, "a quarter of the work to be done", 20_000, 5);

    await redis.stop();
    const down = performance.now();
    await until(async () => (await health(`${base}/healthz`)) === 503, "/healthz to turn 503", 2000, 50);
    expect(performance.now() - down).toBeLessThan(2000);
    const unhealthy = await (await fetch(`${base}/healthz`)).text();
    expect(unhealthy).toContain("unhealthy");
    expect(await health(`${base}/readyz`)).toBe(200); // still ready: the process is up, the store is not
    await Bun.sleep(1000);
    await redis.restart();
    await until(async () => (await health(`${base}/healthz`)) === 200, "/healthz to be 200 again", 5000, 50);

    const records = await waitFinal(tm, ids, 45_000);
    for (const t of records) {
      expect(t.state).toBe("completed");
      expect((t.result as { doubled: number }).doubled).toBe(Number(t.id.slice(1)) * 2);
    }
    const done = readLines(logs)
      .filter((l) => l.startsWith("done"))
      .map((l) => l.slice(5));
    expect(new Set(done)).toEqual(new Set(ids));
    // Work finished while Redis was down is recorded once it is back, not thrown away and redone.
    expect(duplicates(done)).toEqual([]);
    expect(readLines(logs).filter((l) => l.startsWith("start")).length).toBe(TASKS);
    expect(workers.map((w) => w.stderr).join("")).toContain("recorded the task's outcome after the store came back");

    const metrics = parsePrometheus(await (await fetch(`${base}/metrics`)).text());
    const mine = new Set(agentIds(workers[0]!));
    const completedHere = records.filter((t) => mine.has(t.assignedTo!)).length;
    expect(metrics.get("converge_tasks_completed_total")).toBe(completedHere);
    expect(metrics.get("converge_agents")).toBe(4);
    expect(metrics.get("converge_tasks_running")).toBe(0);
    expect(await Promise.all(workers.map((w) => w.stop("SIGTERM")))).toEqual([0, 0]);
    expect(workers[0]!.stdout).toContain(`${completedHere} task${completedHere === 1 ? "" : "s"} completed`);
  } finally {
    await Promise.all(workers.map((w) => w.stop("SIGKILL")));
    await store.close();
  }
}, 90_000);

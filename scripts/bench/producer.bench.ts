/**
 * The producer side, per backend (SQLite, Redis):
 * - a 10,000-line JSON Lines file through `converge tasks submit --file` (a process of its own,
 *   start-up included), and the same tasks through `TaskManager.submitMany` in batches of 500 in
 *   this process, beside 10,000 sequential `TaskManager.submit` calls; the ratio;
 * - what following finished tasks costs the workers: worker throughput (one agent, 1 and 16 slots)
 *   with the finished wake-up on and off (`announceFinished`), and on Redis the PUBLISH commands per
 *   task (INFO commandstats);
 * - report → waitFor latency between two store handles (the waiter's and the worker's).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Redis } from "ioredis";
import { Agent } from "../../src/core/agent.ts";
import type { Task } from "../../src/core/task.ts";
import { TaskManager } from "../../src/coordination/task-manager.ts";
import { configureLogging } from "../../src/observability/log.ts";
import { AgentRuntime } from "../../src/runtime/runtime.ts";
import { RedisStore } from "../../src/store/redis.ts";
import { SqliteStore } from "../../src/store/sqlite.ts";
import type { Store } from "../../src/store/store.ts";
import { startRedis } from "../../test/support/redis.ts";
import { tempDir } from "../../test/support/tmp.ts";
import { fmt, percentile, report } from "./harness.ts";

type Backend = "sqlite" | "redis";
const N = 10_000;
const WORK = 3000;
const CORES = navigator.hardwareConcurrency;
const MAIN = join(import.meta.dir, "..", "..", "src", "cli", "main.ts");

configureLogging({ level: "warn" }); // drained workers log at info
const tmp = tempDir("converge-bench-producer-");
const redis = await startRedis();
let n = 0;

/** A fresh place: a SQLite file, or a Redis namespace. */
function location(backend: Backend): string {
  return backend === "sqlite" ? join(tmp.path, `p${++n}.db`) : `{bench${++n}}:`;
}

function open(backend: Backend, where: string): Promise<Store> | Store {
  return backend === "sqlite" ? new SqliteStore(where) : RedisStore.open(redis.url, { namespace: where });
}

const conditionsOf = (backend: Backend) =>
  backend === "sqlite" ? "WAL, synchronous=NORMAL, file in tmpdir" : "private redis-server on 127.0.0.1";

const seconds = (t0: number) => (Bun.nanoseconds() - t0) / 1e9;

async function bulk(backend: Backend): Promise<void> {
  const lines = Array.from({ length: N }, (_, i) =>
    JSON.stringify({ inputs: { i }, capabilities: ["bench"], priority: i % 5 }),
  );
  const file = join(tmp.path, "bulk.jsonl");
  writeFileSync(file, `${lines.join("\n")}\n`);

  // The command, as a user runs it (on Redis, database 1: the command takes no namespace).
  const where = backend === "sqlite" ? location(backend) : redis.url.replace(/\/0$/, "/1");
  const config = join(tmp.path, `bulk-${backend}.yaml`);
  writeFileSync(config, `store_backend: ${backend}\nstore_path: ${where}\n`);
  const t0 = Bun.nanoseconds();
  const p = Bun.spawn([process.execPath, MAIN, "tasks", "submit", "-c", config, "--file", file], {
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, code] = await Promise.all([new Response(p.stdout).text(), p.exited]);
  const cliSec = seconds(t0);
  if (code !== 0 || out.trimEnd().split("\n").length !== N) throw new Error(`tasks submit --file failed (${code})`);

  // The same tasks in this process: submitMany in batches of 500 (as the command does), then single submits.
  const inits = Array.from({ length: N }, (_, i) => ({
    inputs: { i },
    requiredCapabilities: ["bench"],
    priority: i % 5,
  }));
  const a = await open(backend, location(backend));
  const tmA = new TaskManager(a);
  await tmA.submitMany(inits.slice(0, 500)); // warm-up (statements, scripts)
  const t1 = Bun.nanoseconds();
  for (let i = 0; i < N; i += 500) await tmA.submitMany(inits.slice(i, i + 500));
  const manySec = seconds(t1);
  await a.close();
  const b = await open(backend, location(backend));
  const tmB = new TaskManager(b);
  for (let i = 0; i < 500; i++) await tmB.submit(inits[i]!);
  const t2 = Bun.nanoseconds();
  for (const init of inits) await tmB.submit(init);
  const singleSec = seconds(t2);
  await b.close();

  const cond = `N=${N.toLocaleString("en-US")} tasks, ${conditionsOf(backend)}`;
  report(`${backend} tasks submit --file (process)`, cliSec, "s", `${cond}, process start-up included`);
  report(`${backend} submitMany, batches of 500`, manySec, "s", `${cond}, in process, one batch per store round trip`);
  report(`${backend} single submit calls`, singleSec, "s", `${cond}, in process, sequential`);
  report(
    `${backend} single submits / submitMany`,
    singleSec / manySec,
    "x",
    `${fmt(singleSec)} s vs ${fmt(manySec)} s`,
  );
  report(
    `${backend} single submits / tasks submit --file`,
    singleSec / cliSec,
    "x",
    `${fmt(singleSec)} s vs ${fmt(cliSec)} s`,
  );
}

class Worker extends Agent {
  override onTask(_task: Task) {
    return { ok: true };
  }
}

/** Tasks/s of one worker agent draining WORK pre-submitted tasks; and PUBLISH calls on Redis meanwhile. */
async function drain(backend: Backend, slots: number, announce: boolean): Promise<{ rate: number; publishes: number }> {
  const store = await open(backend, location(backend));
  const tm = new TaskManager(store, { announceFinished: announce });
  await tm.submitMany(Array.from({ length: WORK }, (_, i) => ({ inputs: { i } })));
  const admin = backend === "redis" ? new Redis(redis.url) : undefined;
  const publishes = async () => {
    const info = (await admin?.info("commandstats")) ?? "";
    return Number(/cmdstat_publish:calls=(\d+)/.exec(info)?.[1] ?? 0);
  };
  const before = await publishes();
  const done = Promise.withResolvers<void>();
  let completed = 0;
  class Counting extends Worker {
    override onTask(task: Task) {
      if (++completed === WORK) setImmediate(done.resolve);
      return super.onTask(task);
    }
  }
  const runtime = new AgentRuntime(new Counting(), { taskManager: tm, concurrency: slots, releaseIntervalMs: 60_000 });
  const t0 = Bun.nanoseconds();
  await runtime.start();
  await done.promise;
  while ((await tm.counts()).completed < WORK) await Bun.sleep(1); // the last reports land
  const rate = WORK / seconds(t0);
  await runtime.stop();
  await tm.settle();
  const after = await publishes();
  admin?.disconnect();
  await store.close();
  return { rate, publishes: after - before };
}

async function announceCost(backend: Backend): Promise<void> {
  for (const slots of [1, 16]) {
    let on = { rate: 0, publishes: 0 };
    let off = { rate: 0, publishes: 0 };
    // Alternating rounds, best of each, so that warm-up and noise favour neither.
    for (let round = 0; round < 2; round++) {
      const a = await drain(backend, slots, true);
      const b = await drain(backend, slots, false);
      if (a.rate > on.rate) on = a;
      if (b.rate > off.rate) off = b;
    }
    const cond = `N=${WORK} no-op tasks, one agent, ${slots} slot${slots === 1 ? "" : "s"}, best of 2, ${conditionsOf(backend)}`;
    report(`${backend} worker, ${slots} slot(s), finished wake-ups on`, on.rate, "tasks/s", cond);
    report(`${backend} worker, ${slots} slot(s), finished wake-ups off`, off.rate, "tasks/s", cond);
    report(
      `${backend} worker, ${slots} slot(s), on / off`,
      on.rate / off.rate,
      "x",
      `${fmt(on.rate)} vs ${fmt(off.rate)} tasks/s`,
    );
    if (backend === "redis")
      report(
        `redis PUBLISH per task, ${slots} slot(s)`,
        on.publishes / WORK,
        "calls",
        `${on.publishes} PUBLISH for ${WORK} tasks (submit wake-ups included; ${off.publishes} with finished wake-ups off)`,
      );
  }
}

/** report (worker's handle) → waitFor resolved (waiter's handle), sequential tasks. */
async function waitLatency(backend: Backend): Promise<void> {
  const where = location(backend);
  const [a, b] = [await open(backend, where), await open(backend, where)];
  const waiter = new TaskManager(a);
  const worker = new TaskManager(b);
  const ms: number[] = [];
  const n = 200;
  for (let i = 0; i < n + 20; i++) {
    const id = `w${i}`;
    await waiter.submit({ id });
    const waited = waiter.waitFor(id).then(() => performance.now());
    const lease = (await worker.claim(id, "bench"))!;
    await worker.report(id, 1, { agentId: "bench", token: lease.token });
    const t0 = performance.now();
    const at = await waited;
    if (i >= 20) ms.push(at - t0);
    await Bun.sleep(12); // beyond the wake-up window, so that each report wakes at once
  }
  ms.sort((x, y) => x - y);
  const cond = `N=${n} sequential tasks after 20 warm-up, two store handles in one process, ${conditionsOf(backend)}`;
  report(`${backend} report → waitFor p50`, percentile(ms, 50), "ms", cond);
  report(`${backend} report → waitFor p99`, percentile(ms, 99), "ms", cond);
  await a.close();
  await b.close();
}

try {
  console.log(`conditions: Bun ${Bun.version}, ${CORES} cores; redis-server on 127.0.0.1:${redis.port}`);
  for (const backend of ["sqlite", "redis"] as const) await bulk(backend);
  for (const backend of ["sqlite", "redis"] as const) await announceCost(backend);
  for (const backend of ["sqlite", "redis"] as const) await waitLatency(backend);
} finally {
  await redis.stop();
  tmp.cleanup();
}

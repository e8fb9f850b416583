/**
 * DESIGN.md's double.js in real `converge run` processes: 3 processes × 4 agents, 1,000 tasks, on
 * SQLite and on Redis, and once more with the compiled binary. Every task ends completed with the
 * right result, and the module's own log (one file per process) shows each id exactly once.
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { PROCESS_INDEX } from "../../src/network/liveness.ts";
import { TaskManager } from "../../src/coordination/task-manager.ts";
import { DiscoveryService } from "../../src/network/discovery.ts";
import { stopAll } from "../support/cli.ts";
import { useE2eEnvironment } from "../support/e2e.ts";
import {
  MODULES,
  duplicates,
  ensureBinary,
  openStore,
  readLines,
  startWorker,
  submitViaCli,
  waitFinal,
  writeConfig,
  type StoreSpec,
} from "./fixtures/worker-support/harness.ts";

const PROCESSES = 3;
const TASKS = 1000;
/** Submitting 1,000 tasks through 1,000 CLI processes would take most of a minute on two cores:
 *  this many go through `converge tasks submit` to prove that path, the rest through a TaskManager
 *  in this process over the same store. */
const VIA_CLI = 50;

const { tmp, redis } = useE2eEnvironment({
  prefix: "converge-e2e-worker-once-",
  redis: true,
  before: ensureBinary,
  cleanup: [stopAll],
  timeoutMs: 120_000,
});

async function exactlyOnce(name: string, spec: StoreSpec, binary = false): Promise<void> {
  const config = writeConfig(tmp.path, name, spec, {
    agents: 4,
    concurrency: 2,
    agent: join(MODULES, "double.js"),
    claim_ttl_sec: 30,
  });
  const logs = Array.from({ length: PROCESSES }, (_, i) => join(tmp.path, `${name}-handled-${i}.log`));
  const workers = await Promise.all(logs.map((log) => startWorker(config, { env: { HANDLED_LOG: log }, binary })));
  const store = await openStore(spec);
  try {
    const tm = new TaskManager(store);
    const ids = Array.from({ length: TASKS }, (_, i) => `${name}-${String(i).padStart(4, "0")}`);
    const x = (id: string) => Number(id.slice(-4));
    await Promise.all([
      submitViaCli(
        config,
        ids.slice(0, VIA_CLI).map((id) => ({ id, inputs: { x: x(id) }, capabilities: "double" })),
        { binary },
      ),
      (async () => {
        for (const id of ids.slice(VIA_CLI))
          await tm.submit({ id, inputs: { x: x(id) }, requiredCapabilities: ["double"] });
      })(),
    ]);
    const records = await waitFinal(tm, ids, 60_000);
    for (const t of records) {
      expect(t.state).toBe("completed");
      expect(t.result).toEqual({ doubled: x(t.id) * 2 });
      expect(t.attempts).toBe(1);
    }
    const codes = await Promise.all(workers.map((w) => w.stop("SIGTERM")));
    expect(codes).toEqual([0, 0, 0]);
    // A clean stop leaves nothing behind: no descriptors, no process heartbeats.
    expect(await new DiscoveryService(store).list()).toEqual([]);
    expect(await store.indexMembers(PROCESS_INDEX)).toEqual([]);
    const handled = readLines(logs);
    expect(duplicates(handled)).toEqual([]);
    expect(handled.length).toBe(TASKS);
    expect(new Set(handled)).toEqual(new Set(ids));
    // The work was shared: every process handled some of it.
    for (const log of logs) expect(readLines([log]).length).toBeGreaterThan(0);
    let reported = 0;
    for (const w of workers) reported += Number(/(\d+) tasks? completed/.exec(w.stdout)?.[1] ?? NaN);
    expect(reported).toBe(TASKS);
  } finally {
    await Promise.all(workers.map((w) => w.stop("SIGKILL")));
    await store.close();
  }
}

describe("double.js: 3 converge run processes × 4 agents, 1,000 tasks", () => {
  test(
    "on SQLite every task completes once with the right result",
    () => exactlyOnce("sqlite", { backend: "sqlite", path: join(tmp.path, "once.db") }),
    90_000,
  );
  test(
    "on Redis every task completes once with the right result",
    () => exactlyOnce("redis", { backend: "redis", url: redis.url }),
    90_000,
  );
  test(
    "the compiled binary does the same (Redis)",
    () => exactlyOnce("binary", { backend: "redis", url: redis.url.replace(/\/0$/, "/1") }, true),
    90_000,
  );
});

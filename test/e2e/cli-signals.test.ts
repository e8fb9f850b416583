/**
 * End to end: one Ctrl+C is one clean stop. `bun run converge run` is started in a process group of
 * its own and the whole group is signalled, as a terminal's Ctrl+C or systemd's stop does: converge
 * then receives the signal twice (from the group and forwarded by `bun run`), and here a third
 * copy once the first has been handled. Its two agents hold tasks when the signal comes; the clean stop must really
 * happen: exit 0, the tasks handed back to pending, no discovery or process record left behind. A
 * deliberate second signal, a second or more after the first, still exits at once.
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { openChoice } from "../../src/cli/store-config.ts";
import { TaskManager } from "../../src/coordination/task-manager.ts";
import { DiscoveryService } from "../../src/network/discovery.ts";
import { PROCESS_INDEX } from "../../src/network/liveness.ts";
import { SAME_PRESS_MS } from "../../src/cli/signals.ts";
import type { Store } from "../../src/store/store.ts";
import { startCli, stopAll, type Running } from "../support/cli.ts";
import { useE2eEnvironment } from "../support/e2e.ts";

const { tmp, redis } = useE2eEnvironment({ prefix: "converge-cli-signals-", redis: true, cleanup: [stopAll] });
// bunfig.toml's [test] timeout is not a Bun setting; processes under load need more than the default 5 s.
setDefaultTimeout(30_000);

// Each handler says which task it holds and which process it runs in, then holds the task until
// the drain aborts it.
const HOLD = `export default {
  capabilities: ["hold"],
  onTask(task, ctx) {
    process.stdout.write("pid " + process.pid + " holds " + task.id + "\\n");
    return new Promise((_, reject) => ctx.signal.addEventListener("abort", () => reject(new Error("aborted"))));
  },
};
`;

interface Setup {
  run: Running;
  store: Store;
  ids: string[];
  /** The converge process itself (the child of `bun run`). */
  pid: number;
}

async function holding(name: string, db: number, graceSec: number, extra = ""): Promise<Setup> {
  writeFileSync(join(tmp.path, "hold.js"), HOLD);
  const url = redis.url.replace(/\/0$/, `/${db}`);
  const cfg = join(tmp.path, `${name}.yaml`);
  writeFileSync(
    cfg,
    `agent: hold.js\nagents: 2\npool_id: p\nstore_backend: redis\nstore_path: ${url}\nshutdown_grace_sec: ${graceSec}\n${extra}`,
  );
  const run = startCli(["run", "-c", cfg], { bunRun: true, group: true });
  await run.waitFor("running, press Ctrl+C to stop");
  const store = await openChoice({ backend: "redis", location: url });
  const tm = new TaskManager(store);
  const ids = [`${name}-1`, `${name}-2`];
  for (const id of ids) await tm.submit({ id, requiredCapabilities: ["hold"] });
  for (const id of ids) await run.waitFor(` holds ${id}`);
  const pid = Number(/^pid (\d+) holds /m.exec(run.stdout)![1]);
  return { run, store, ids, pid };
}

describe.concurrent("when converge run under bun run gets one press, delivered several times", () => {
  for (const [signal, db] of [
    ["SIGINT", 1],
    ["SIGTERM", 2],
  ] as const) {
    test(`${signal} to the process group plus one more copy: one clean stop, exit 0`, async () => {
      const { run, store, ids, pid } = await holding(`once-${signal}`, db, 1);
      try {
        run.signalGroup(signal);
        // Copies that arrive together may merge into one; this one comes after the first was handled.
        await run.waitFor(`${signal} received, stopping`, 5000, "stderr");
        process.kill(pid, signal);
        expect(await run.waitExit()).toBe(0);
        expect(run.stderr).not.toContain("second signal");
        expect(run.stderr).toContain(`${signal} received, stopping`);
        expect(run.stdout).toMatch(/^stopped 2 agents after /m);
        // Leases handed back, discovery and liveness records gone.
        const tasks = await Promise.all(ids.map((id) => new TaskManager(store).get(id)));
        expect(tasks.map((t) => [t?.state, t?.assignedTo])).toEqual([
          ["pending", null],
          ["pending", null],
        ]);
        expect(await new DiscoveryService(store).list()).toEqual([]);
        expect(await store.indexMembers(PROCESS_INDEX)).toEqual([]);
      } finally {
        await store.close();
      }
    });
  }

  test("from the moment a drain starts, /readyz answers 503 while /healthz stays 200", async () => {
    const { run, store } = await holding("readyz", 4, 30, "http_port: 0\n");
    try {
      const base = /^health and metrics: (http:\/\/\S+?)\/healthz/m.exec(run.stdout)![1]!;
      expect((await fetch(`${base}/readyz`)).status).toBe(200);
      run.proc.kill("SIGTERM");
      await run.waitFor("SIGTERM received, stopping", 5000, "stderr");
      // The handlers hold their tasks for up to the 30 s grace period: the process is draining now.
      const ready = await fetch(`${base}/readyz`);
      expect([ready.status, await ready.text()]).toEqual([503, "draining\n"]);
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      expect(run.stdout).not.toMatch(/^stopped /m);
      run.signalGroup("SIGKILL");
      await run.exited;
    } finally {
      await store.close();
    }
  });

  test("a second SIGINT a second after the first exits at once, without the drain", async () => {
    const { run, store } = await holding("twice", 3, 30);
    try {
      run.signalGroup("SIGINT");
      await run.waitFor("SIGINT received, stopping", 5000, "stderr");
      // The pause between two presses is what is tested here: there is no event to wait for.
      await Bun.sleep(SAME_PRESS_MS + 200);
      const t0 = performance.now();
      run.signalGroup("SIGINT");
      const code = await run.waitExit(10_000);
      expect(performance.now() - t0).toBeLessThan(5000); // the grace period is 30 s
      expect(code).toBe(130);
      expect(run.stderr).toContain("converge: second signal, exiting now");
      expect(run.stdout).not.toMatch(/^stopped /m);
    } finally {
      await store.close();
    }
  });
});

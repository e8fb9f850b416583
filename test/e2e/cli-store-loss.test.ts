/**
 * End to end: Redis loses its data under a running fleet (FLUSHALL here; a restart without
 * persistence is the same). `converge run` notices within a few heartbeats, logs one line and
 * registers its agents again, so `agents list` and `pools list` show them once more and
 * `tasks list` does not mark a live holder "(gone)".
 */
import { expect, test } from "bun:test";
import { Redis } from "ioredis";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { openChoice } from "../../src/cli/store-config.ts";
import { PoolManager } from "../../src/coordination/pool-manager.ts";
import { DiscoveryService } from "../../src/network/discovery.ts";
import { PROCESS_INDEX } from "../../src/network/liveness.ts";
import { runCli, startCli, stopAll } from "../support/cli.ts";
import { useE2eEnvironment } from "../support/e2e.ts";
import { until } from "../support/wait.ts";

const { tmp, redis } = useE2eEnvironment({ prefix: "converge-store-loss-", redis: true, cleanup: [stopAll] });

const HOLD = `export default {
  capabilities: ["hold"],
  onTask(task, ctx) {
    process.stdout.write("holds " + task.id + "\\n");
    return new Promise((_, reject) => ctx.signal.addEventListener("abort", () => reject(new Error("aborted"))));
  },
};
`;

test("when Redis is flushed under a running fleet, its agents and pool are registered again within seconds", async () => {
  writeFileSync(join(tmp.path, "hold.js"), HOLD);
  const cfg = join(tmp.path, "loss.yaml");
  // claim_ttl_sec 3: a heartbeat every 500 ms.
  writeFileSync(
    cfg,
    `agent: hold.js\nagents: 2\npool_id: p\nstore_backend: redis\nstore_path: ${redis.url}\nclaim_ttl_sec: 3\nshutdown_grace_sec: 1\n`,
  );
  const run = startCli(["run", "-c", cfg]);
  await run.waitFor("running, press Ctrl+C to stop");
  const ids = [...run.stdout.matchAll(/^agent \d+\/2 ([0-9a-f]{64}) /gm)].map((m) => m[1]!).sort();
  const store = await openChoice({ backend: "redis", location: redis.url });
  const raw = new Redis(redis.port, "127.0.0.1");
  try {
    const discovery = new DiscoveryService(store);
    const pools = new PoolManager(store);
    const registered = async () => (await discovery.list()).map((d) => d.id).sort();
    expect(await registered()).toEqual(ids);

    expect(await raw.flushall()).toBe("OK");
    expect(await registered()).toEqual([]);

    await until(async () => (await registered()).length === 2, "the agents to be registered again", 5000, 50);
    await until(async () => (await store.indexMembers(PROCESS_INDEX)).length === 1, "the process record", 5000, 50);
    expect([...((await pools.get("p"))?.agents ?? [])].sort()).toEqual(ids);
    const lines = run.stderr.split("\n").filter((l) => l.includes("vanished"));
    expect(lines).toEqual([
      expect.stringMatching(/WARN .*records vanished from redis .*; registering its 2 agents again$/),
    ]);

    // The operator commands see them, and a task a live agent holds is not marked gone.
    const [agents, poolsOut] = await Promise.all([
      runCli(["agents", "list", "--json", "-c", cfg]),
      runCli(["pools", "list", "--json", "-c", cfg]),
    ]);
    expect(
      agents.stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l).id)
        .sort(),
    ).toEqual(ids);
    expect([...JSON.parse(poolsOut.stdout.trim()).agents].sort()).toEqual(ids);
    const submitted = await runCli(["tasks", "submit", "-c", cfg, "--id", "after-flush", "--capabilities", "hold"]);
    expect(submitted.code).toBe(0);
    await run.waitFor("holds after-flush");
    const listed = await runCli(["tasks", "list", "-c", cfg]);
    const row = listed.stdout.split("\n").find((l) => l.startsWith("after-flush"));
    expect(row).toMatch(/^after-flush\s+assigned|running/);
    expect(row).toMatch(/[0-9a-f]{12}/);
    expect(row).not.toContain("(gone)");

    expect(await run.stop("SIGINT")).toBe(0);
    expect(await registered()).toEqual([]);
  } finally {
    raw.disconnect();
    await store.close();
  }
}, 30_000);

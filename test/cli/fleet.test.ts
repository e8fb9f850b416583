import { describe, expect, test } from "bun:test";
import { advertisedEndpoint, agentPort } from "../../src/cli/fleet.ts";

describe("advertised endpoints", () => {
  test("an agent on a specific interface advertises its own address (null: the transport's)", () => {
    expect(advertisedEndpoint("127.0.0.1", 9000)).toBeNull();
  });

  test("an agent bound to every interface advertises a dialable host, never 0.0.0.0", () => {
    for (const host of ["0.0.0.0", "::"]) {
      const ep = advertisedEndpoint(host, 9000)!;
      expect(ep).toMatch(/^tcp:\/\/[^/]+:9000$/);
      expect(ep).not.toContain("0.0.0.0");
      expect(ep).not.toContain("tcp://:::");
    }
  });
});

describe("TCP ports of the agents of one process", () => {
  test("agent i listens on port + i; with port 0 every agent asks the kernel for its own", () => {
    expect([0, 1, 2].map((i) => agentPort({ port: 9000 }, i))).toEqual([9000, 9001, 9002]);
    expect([0, 1, 2].map((i) => agentPort({ port: 0 }, i))).toEqual([0, 0, 0]);
  });
});

describe("stable identities", () => {
  test("a relative identity_dir is taken from the config file's directory, and the key is reused", async () => {
    const { identityFor } = await import("../../src/cli/fleet.ts");
    const { loadConfig } = await import("../../src/cli/config.ts");
    const { tempDir } = await import("../support/tmp.ts");
    const { existsSync, writeFileSync, statSync } = await import("node:fs");
    const { join } = await import("node:path");
    const dir = tempDir();
    try {
      const cfg = join(dir.path, "c.yaml");
      writeFileSync(cfg, "identity_dir: keys\n");
      const { config } = loadConfig(cfg, {});
      const first = identityFor(config, 2);
      expect(existsSync(join(dir.path, "keys", "agent-2.key"))).toBe(true);
      expect(statSync(join(dir.path, "keys", "agent-2.key")).mode & 0o777).toBe(0o600);
      expect(identityFor(config, 2).id).toBe(first.id);
      expect(identityFor(config, 3).id).not.toBe(first.id);
    } finally {
      dir.cleanup();
    }
  });
});

describe("the schedule runner of converge run", () => {
  test("a fleet on a shared store runs the schedules; with schedules: false or the memory store it does not", async () => {
    const { startFleet } = await import("../../src/cli/fleet.ts");
    const { loadConfig } = await import("../../src/cli/config.ts");
    const { tempDir } = await import("../support/tmp.ts");
    const { SqliteStore } = await import("../../src/store/sqlite.ts");
    const { TaskManager } = await import("../../src/coordination/task-manager.ts");
    const { ScheduleManager, scheduledTaskId } = await import("../../src/coordination/schedules.ts");
    const { until } = await import("../support/wait.ts");
    const { join } = await import("node:path");
    const dir = tempDir();
    const sqlite = ["store_backend=sqlite", `store_path=${join(dir.path, "s.db")}`];
    const fleets = await Promise.all(
      [sqlite, [...sqlite, "schedules=false"], ["store_backend=memory"]].map((sets) =>
        startFleet(loadConfig(undefined, {}, sets).config),
      ),
    );
    const operator = new SqliteStore(join(dir.path, "s.db"));
    try {
      expect(fleets.map((f) => f.schedules !== undefined)).toEqual([true, false, false]);
      // Added by an operator, as `converge schedules add` would: the fleet's runner submits it.
      const s = await new ScheduleManager(new TaskManager(operator)).add({ id: "ping", everyMs: 1000 });
      const tasks = new TaskManager(operator);
      await until(async () => (await tasks.get(scheduledTaskId("ping", s.nextRunAt!))) !== undefined, "the task", 4000);
    } finally {
      await operator.close();
      await Promise.all(fleets.map((f) => f.stop()));
      dir.cleanup();
    }
  });
});

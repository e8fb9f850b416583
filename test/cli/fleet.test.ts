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

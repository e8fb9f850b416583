/**
 * Stable identities: with identity_dir, agent i keeps `<identity_dir>/agent-<i>.key` (created on
 * first use, mode 0600), so the agent ids are the same across runs; without it they are fresh.
 */
import { expect, test } from "bun:test";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { stopAll } from "../support/cli.ts";
import { useE2eEnvironment } from "../support/e2e.ts";
import { MODULES, agentIds, startWorker, writeConfig } from "./fixtures/worker-support/harness.ts";

const { tmp } = useE2eEnvironment({ prefix: "converge-e2e-worker-identity-", cleanup: [stopAll] });

async function runOnce(config: string): Promise<string[]> {
  const w = await startWorker(config);
  expect(await w.stop("SIGTERM")).toBe(0);
  return agentIds(w);
}

test.concurrent("with identity_dir, agent ids survive a restart and key files are mode 0600", async () => {
  const dir = join(tmp.path, "keys", "nested"); // created on first use
  const config = writeConfig(
    tmp.path,
    "stable",
    { backend: "sqlite", path: join(tmp.path, "stable.db") },
    { agents: 3, agent: join(MODULES, "double.js"), identity_dir: dir },
  );
  const first = await runOnce(config);
  const second = await runOnce(config);
  expect(first.length).toBe(3);
  expect(new Set(first).size).toBe(3);
  expect(second).toEqual(first);
  expect(readdirSync(dir).sort()).toEqual(["agent-0.key", "agent-1.key", "agent-2.key"]);
  for (const f of readdirSync(dir)) expect(statSync(join(dir, f)).mode & 0o777).toBe(0o600);
});

test.concurrent("without identity_dir, every run has fresh agent ids", async () => {
  const config = writeConfig(
    tmp.path,
    "fresh",
    { backend: "sqlite", path: join(tmp.path, "fresh.db") },
    { agents: 2, agent: join(MODULES, "double.js") },
  );
  const first = await runOnce(config);
  const second = await runOnce(config);
  expect(first.length).toBe(2);
  expect(second.filter((id) => first.includes(id))).toEqual([]);
});

/**
 * End to end: one config file, three `converge run` processes on one machine. The file asks for
 * `port: 0` and `http_port: 0`, so each agent and each health endpoint gets a port of the kernel's
 * choosing (printed, and advertised in discovery); `--set` gives each process its own capability.
 * Every agent is reachable at the endpoint discovery holds for it, and every health endpoint answers.
 */
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { canConnect, runCli, startCli, stopAll, type Running } from "../support/cli.ts";
import { useE2eEnvironment } from "../support/e2e.ts";

const { tmp } = useE2eEnvironment({ prefix: "converge-one-config-", cleanup: [stopAll] });

const PROCESSES = 3;
const AGENTS = 2;

function agentLines(stdout: string): { id: string; address: string }[] {
  return [...stdout.matchAll(/^agent \d+\/\d+ ([0-9a-f]{64}) (\S+)$/gm)].map((m) => ({ id: m[1]!, address: m[2]! }));
}

describe("when several processes start from one config file", () => {
  test("with port 0, http_port 0 and --set, three processes all run, each reachable on its own ports", async () => {
    const db = join(tmp.path, "fleet.sqlite3");
    const cfg = join(tmp.path, "fleet.yaml");
    writeFileSync(
      cfg,
      `transport: tcp\nport: 0\nhttp_port: 0\nagents: ${AGENTS}\npool_id: fleet\nstore_backend: sqlite\nstore_path: ${db}\n`,
    );
    const runs: Running[] = [];
    for (let i = 0; i < PROCESSES; i++) runs.push(startCli(["run", "-v", "-c", cfg, "--set", `capabilities=p${i}`]));
    await Promise.all(runs.map((r) => r.waitFor("running, press Ctrl+C to stop")));

    const printed = runs.map((r) => agentLines(r.stdout));
    const addresses = printed.flat().map((a) => a.address);
    expect(addresses).toHaveLength(PROCESSES * AGENTS);
    for (const a of addresses) expect(a).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
    expect(addresses).not.toContain("tcp://127.0.0.1:0");
    expect(new Set(addresses).size).toBe(addresses.length);
    const ports = addresses.map((a) => Number(a.split(":").at(-1)));
    expect(await Promise.all(ports.map((p) => canConnect(p)))).toEqual(ports.map(() => true));

    // Each health endpoint is printed with its port and answers.
    const urls = runs.map((r) => /^health and metrics: (http:\/\/127\.0\.0\.1:(\d+))/m.exec(r.stdout)?.[1]);
    expect(urls.every((u) => u !== undefined && !u.endsWith(":0"))).toBe(true);
    expect(new Set(urls).size).toBe(PROCESSES);
    for (const u of urls) expect((await fetch(`${u}/healthz`)).status).toBe(200);

    // Discovery advertises the ports the kernel chose; --set gave each process its capability.
    const listed = await runCli(["agents", "list", "--json", "-c", cfg]);
    expect(listed.code).toBe(0);
    const descriptors = listed.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { id: string; endpoint: string; capabilities: string[] });
    const byId = new Map(descriptors.map((d) => [d.id, d]));
    printed.forEach((agents, i) => {
      for (const a of agents) expect(byId.get(a.id)).toMatchObject({ endpoint: a.address, capabilities: [`p${i}`] });
    });

    // A message reaches an agent of each process at its advertised endpoint.
    for (const [i, r] of runs.entries()) {
      const sent = await runCli(["send", "--to", printed[i]![0]!.address, "--payload", `{"to": ${i}}`]);
      expect({ code: sent.code, stderr: sent.stderr }).toEqual({ code: 0, stderr: "" });
      await r.waitFor(`id=${sent.stdout.split("\n")[0]}`, 5000, "stderr");
    }

    expect(await Promise.all(runs.map((r) => r.stop("SIGINT")))).toEqual(runs.map(() => 0));
  }, 30_000);
});

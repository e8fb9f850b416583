/**
 * End to end: `converge run` as the manual describes it — its four example configurations, the
 * environment and the file (the file wins), the legacy discovery_store, signals, a port in use, an
 * unreachable Redis, and JSON logs. Each case spawns the real command; they run concurrently.
 */
import { Database } from "bun:sqlite";
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { canConnect, freePort, runCli, startCli, stopAll, type RunResult, type Running } from "../support/cli.ts";
import { SAME_PRESS_MS } from "../../src/cli/signals.ts";
import { useE2eEnvironment } from "../support/e2e.ts";
import { freePort as freeRedisPort } from "../support/redis.ts";

const { tmp, redis } = useE2eEnvironment({ prefix: "converge-cli-run-", redis: true, cleanup: [stopAll] });
// bunfig.toml's [test] timeout is not a Bun setting; 16 concurrent runs under load need more than 5 s.
setDefaultTimeout(30_000);

const file = (name: string, text: string) => {
  const path = join(tmp.path, name);
  writeFileSync(path, text);
  return path;
};

/** The port of a printed address. */
const portOf = (address: string) => Number(address.split(":").at(-1));

/** Addresses on 127.0.0.1, each on a port of its own that the kernel picked (port: 0). */
function expectKernelPorts(addresses: string[], count: number): void {
  expect(addresses).toHaveLength(count);
  for (const a of addresses) expect(a).toMatch(/^tcp:\/\/127\.0\.0\.1:[1-9]\d*$/);
  expect(new Set(addresses).size).toBe(count);
}

/** The agent ids and addresses a run printed ("agent i/n <id> <address>"). */
function agentLines(stdout: string): { id: string; address: string }[] {
  return [...stdout.matchAll(/^agent \d+\/\d+ ([0-9a-f]{64}) (\S+)$/gm)].map((m) => ({ id: m[1]!, address: m[2]! }));
}

async function started(args: string[], env?: Record<string, string>): Promise<Running> {
  const r = startCli(["run", ...args], { env });
  await r.waitFor("running, press Ctrl+C to stop");
  return r;
}

/** Stops with `signal`, expects exit 0 and the one-line summary, and no error output. */
async function stopCleanly(r: Running, agents: number, signal: NodeJS.Signals = "SIGINT"): Promise<void> {
  expect(await r.stop(signal)).toBe(0);
  expect(r.stdout).toMatch(new RegExp(`^stopped ${agents} agents? after \\d+\\.\\d s: `, "m"));
  expect(r.stderr).toContain(`${signal} received, stopping`);
  expect(r.stderr).not.toMatch(/ERROR|WARN .*failed|^\s{4}at /m);
}

function discoveryKeys(dbPath: string): string[] {
  const db = new Database(dbPath, { readonly: true });
  try {
    return db
      .query<{ key: string }, []>("SELECT key FROM store WHERE key LIKE 'discovery:agent:%' ORDER BY key")
      .all()
      .map((r) => r.key);
  } finally {
    db.close();
  }
}

function expectOneLineError(r: RunResult, code: number, message: RegExp): void {
  const lines = r.stderr.split("\n").filter((l) => l !== "");
  expect({ code: r.code, lines }).toEqual({ code, lines: [expect.stringMatching(message)] });
  expect(r.stderr).not.toMatch(/^\s{4}at /m);
}

describe.concurrent("the manual's four example configurations", () => {
  test("YAML, multi-agent with pool and discovery (memory): 3 agents join my-pool", async () => {
    const cfg = file(
      "example-multi.yaml",
      "transport: local\nagents: 3\npool_id: my-pool\ndiscovery_store: memory\nstore_backend: memory\n",
    );
    const r = await started(["-c", cfg]);
    const agents = agentLines(r.stdout);
    expect(agents).toHaveLength(3);
    for (const a of agents) expect(a.address).toBe(`local://${a.id}`);
    expect(r.stdout).toContain("store: memory (discovery on)");
    expect(r.stdout).toContain("pool: my-pool (3 agents joined)");
    await stopCleanly(r, 3);
  });

  test("YAML, TCP single agent on 0.0.0.0: the port accepts connections while it runs", async () => {
    const port = freePort();
    const cfg = file("example-tcp.yaml", `transport: tcp\nhost: 0.0.0.0\nport: ${port}\n`);
    const r = await started(["-c", cfg]);
    expect(agentLines(r.stdout).map((a) => a.address)).toEqual([`tcp://0.0.0.0:${port}`]);
    expect(await canConnect(port)).toBe(true);
    await stopCleanly(r, 1);
    expect(await canConnect(port)).toBe(false);
  });

  test("TOML, TCP with 2 agents, a pool and SQLite: discovery and pool membership while running, none after stop", async () => {
    // port 0 rather than the manual's 8888: each agent gets a free port from the kernel.
    const db = join(tmp.path, "example.sqlite3");
    const cfg = file(
      "example-sqlite.toml",
      `transport = "tcp"\nhost = "127.0.0.1"\nport = 0\nagents = 2\npool_id = "workers"\ndiscovery_store = "memory"\nstore_backend = "sqlite"\nstore_path = "${db}"\n`,
    );
    const r = await started(["-c", cfg]);
    const agents = agentLines(r.stdout);
    const ids = agents.map((a) => a.id).sort();
    expectKernelPorts(
      agents.map((a) => a.address),
      2,
    );
    const ports = agents.map((a) => portOf(a.address));
    expect(r.stdout).toContain(`store: sqlite ${db} (discovery on)`);
    expect(r.stdout).toContain("pool: workers (2 agents joined)");
    expect(await canConnect(ports[0]!)).toBe(true);
    expect(await canConnect(ports[1]!)).toBe(true);

    // The store itself: one discovery record per agent.
    expect(discoveryKeys(db)).toEqual(ids.map((id) => `discovery:agent:${id}`));

    // A second process on the same file sees them.
    const [pools, poolsJson, agentsTable, agentsJson] = await Promise.all([
      runCli(["pools", "list", "-c", cfg]),
      runCli(["pools", "list", "-c", cfg, "--json"]),
      runCli(["agents", "list", "-c", cfg]),
      runCli(["agents", "list", "-c", cfg, "--json"]),
    ]);
    for (const x of [pools, poolsJson, agentsTable, agentsJson]) expect(x.code).toBe(0);
    expect(pools.stdout).toMatch(/^workers\s+open\s+2\s/m);
    const pool = JSON.parse(poolsJson.stdout.trim());
    expect([...pool.agents].sort()).toEqual(ids);
    for (const a of agents) expect(agentsTable.stdout).toMatch(new RegExp(`^${a.id}\\s+${a.address}\\s`, "m"));
    const descriptors = agentsJson.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(descriptors.map((d: { id: string }) => d.id).sort()).toEqual(ids);
    for (const d of descriptors) {
      expect(d.endpoint).toBe(agents.find((a) => a.id === d.id)!.address);
      expect(Buffer.from(d.publicKey, "base64")).toHaveLength(32);
    }

    await stopCleanly(r, 2);
    expect(await canConnect(ports[0]!)).toBe(false);
    expect(await canConnect(ports[1]!)).toBe(false);
    expect(discoveryKeys(db)).toEqual([]);
    const after = await runCli(["pools", "list", "-c", cfg, "--json"]);
    expect(JSON.parse(after.stdout.trim())).toMatchObject({ id: "workers", agents: [] });
    const agentsAfter = await runCli(["agents", "list", "-c", cfg, "--json"]);
    expect({ code: agentsAfter.code, stdout: agentsAfter.stdout }).toEqual({ code: 0, stdout: "" });
  });

  test("TOML, Redis backend: runs on a private redis-server and leaves no discovery record", async () => {
    const port = freePort();
    const cfg = file(
      "example-redis.toml",
      `transport = "tcp"\nhost = "0.0.0.0"\nport = ${port}\nagents = 1\nstore_backend = "redis"\nstore_path = "${redis.url}"\n`,
    );
    const r = await started(["-c", cfg]);
    const [agent] = agentLines(r.stdout);
    expect(r.stdout).toContain(`store: redis 127.0.0.1:${redis.port}/0 (discovery on)`);
    expect(await canConnect(port)).toBe(true);
    const listed = await runCli(["agents", "list", "-c", cfg, "--json"]);
    expect(
      listed.stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l).id),
    ).toEqual([agent!.id]);
    await stopCleanly(r, 1);
    const after = await runCli(["agents", "list", "-c", cfg, "--json"]);
    expect({ code: after.code, stdout: after.stdout }).toEqual({ code: 0, stdout: "" });
  });
});

describe.concurrent("where the configuration comes from", () => {
  test("environment only", async () => {
    const r = await started([], {
      CONVERGE_TRANSPORT: "tcp",
      CONVERGE_PORT: "0",
      CONVERGE_AGENTS: "2",
      CONVERGE_POOL_ID: "env-pool",
    });
    expectKernelPorts(
      agentLines(r.stdout).map((a) => a.address),
      2,
    );
    expect(r.stdout).toContain("pool: env-pool (2 agents joined)");
    await stopCleanly(r, 2);
  });

  test("the defaults: one local agent, no store", async () => {
    const r = await started([]);
    const agents = agentLines(r.stdout);
    expect(agents).toHaveLength(1);
    expect(agents[0]!.address).toBe(`local://${agents[0]!.id}`);
    expect(r.stdout).toContain("store: none");
    await stopCleanly(r, 1);
  });

  test("file only, named by CONVERGE_CONFIG", async () => {
    const port = freePort();
    const cfg = file("file-only.toml", `transport = "tcp"\nport = ${port}\n`);
    const r = await started([], { CONVERGE_CONFIG: cfg });
    expect(agentLines(r.stdout).map((a) => a.address)).toEqual([`tcp://127.0.0.1:${port}`]);
    await stopCleanly(r, 1);
  });

  test("both: the file wins where both set a key, the environment fills the rest", async () => {
    const envPort = freePort(); // never listened on: the file's port 0 wins
    const cfg = file("both.yaml", "transport: tcp\nport: 0\n");
    const env = {
      CONVERGE_TRANSPORT: "local",
      CONVERGE_PORT: String(envPort),
      CONVERGE_AGENTS: "2",
      CONVERGE_CONFIG: join(tmp.path, "not-this-one.yaml"),
    };
    const r = await started(["-c", cfg], env);
    const addresses = agentLines(r.stdout).map((a) => a.address);
    expectKernelPorts(addresses, 2);
    expect(addresses.map(portOf)).not.toContain(envPort);
    expect(await canConnect(portOf(addresses[1]!))).toBe(true);
    await stopCleanly(r, 2);
  });

  test("legacy discovery_store: memory", async () => {
    const r = await started(["-c", file("legacy-memory.yaml", "discovery_store: memory\n")]);
    expect(r.stdout).toContain("store: memory (discovery on)");
    await stopCleanly(r, 1);
  });

  test("legacy discovery_store: a directory becomes a file store holding the discovery records", async () => {
    const dir = join(tmp.path, "legacy-dir");
    const r = await started(["-c", file("legacy-dir.yaml", `discovery_store: ${dir}\nagents: 2\n`)]);
    expect(r.stdout).toContain(`store: file ${dir} (discovery on)`);
    const ids = agentLines(r.stdout).map((a) => a.id);
    expect(readdirSync(dir).length).toBeGreaterThanOrEqual(2); // one JSON file per record
    const listed = await runCli(["agents", "list", "--json"], { env: { CONVERGE_DISCOVERY_STORE: dir } });
    expect(
      listed.stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l).id)
        .sort(),
    ).toEqual(ids.sort());
    await stopCleanly(r, 2);
    const after = await runCli(["agents", "list", "--json"], { env: { CONVERGE_DISCOVERY_STORE: dir } });
    expect({ code: after.code, stdout: after.stdout }).toEqual({ code: 0, stdout: "" });
  });
});

describe.concurrent("signals and failures at start", () => {
  test("SIGTERM stops as cleanly as SIGINT", async () => {
    const db = join(tmp.path, "sigterm.sqlite3");
    const r = await started([], {
      CONVERGE_STORE_BACKEND: "sqlite",
      CONVERGE_STORE_PATH: db,
      CONVERGE_AGENTS: "2",
      CONVERGE_POOL_ID: "p",
    });
    expect(discoveryKeys(db)).toHaveLength(2);
    await stopCleanly(r, 2, "SIGTERM");
    expect(discoveryKeys(db)).toEqual([]);
  });

  test("a second SIGINT during a slow shutdown, a second after the first, exits at once", async () => {
    const db = join(tmp.path, "slow.sqlite3");
    file(
      "hang.js",
      "export default { capabilities: ['hang'], onTask: (task) => { process.stdout.write(`working on ${task.id}\\n`); return new Promise(() => {}); } };\n",
    );
    const cfg = file("slow.yaml", `agent: hang.js\nstore_backend: sqlite\nstore_path: ${db}\nshutdown_grace_sec: 30\n`);
    const r = await started(["-c", cfg]);
    const submitted = await runCli([
      "tasks",
      "submit",
      "-c",
      cfg,
      "--capabilities",
      "hang",
      "--objective",
      "never ends",
    ]);
    expect(submitted.code).toBe(0);
    await r.waitFor(`working on ${submitted.stdout.trim()}`);
    r.proc.kill("SIGINT");
    await r.waitFor("SIGINT received, stopping", 5000, "stderr");
    await Bun.sleep(SAME_PRESS_MS + 200); // a copy within SAME_PRESS_MS is the same press; the pause is the test
    const t0 = performance.now();
    const code = await r.stop("SIGINT", 10_000);
    expect(performance.now() - t0).toBeLessThan(5000); // the grace period is 30 s
    expect(code).toBe(130);
    expect(r.stderr).toContain("converge: second signal, exiting now");
    expect(r.stdout).not.toMatch(/^stopped /m);
  });

  test("a port already in use is one clear line and exit 1", async () => {
    const held = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const r = await runCli(["run"], {
        env: { CONVERGE_TRANSPORT: "tcp", CONVERGE_PORT: String(held.port), CONVERGE_AGENTS: "1" },
      });
      expectOneLineError(r, 1, new RegExp(`^converge: port ${held.port} on 127\\.0\\.0\\.1 is already in use`));
      expect(r.stdout).not.toContain("running");
    } finally {
      held.stop(true);
    }
  });

  test("a failure after some agents are listening closes them again: the process ends by itself", async () => {
    // Agent 1's identity file is a directory: agent 0 is bound by then. Nothing forces the exit
    // (no process.exit), so a listener left open would keep the process alive past runCli's deadline.
    const ids = join(tmp.path, "ids-broken");
    mkdirSync(join(ids, "agent-1.key"), { recursive: true });
    const r = await runCli(["run"], {
      env: { CONVERGE_TRANSPORT: "tcp", CONVERGE_PORT: "0", CONVERGE_AGENTS: "2", CONVERGE_IDENTITY_DIR: ids },
      timeoutMs: 10_000,
    });
    expectOneLineError(r, 1, /^converge: identity file .*agent-1\.key is a directory/);
  });

  test("an unreachable Redis is one clear line and exit 1", async () => {
    const port = await freeRedisPort();
    const r = await runCli(["run"], {
      env: { CONVERGE_STORE_BACKEND: "redis", CONVERGE_STORE_PATH: `redis://127.0.0.1:${port}/0` },
    });
    expectOneLineError(r, 1, new RegExp(`^converge: Redis at 127\\.0\\.0\\.1:${port} is unreachable`));
    expect(r.stdout).not.toContain("running");
  });

  test("--log-format json: every log line on stderr, and every status line on stdout, is a JSON object", async () => {
    const port = freePort();
    const cfg = file("json-logs.yaml", "agnets: 1\n"); // a typo: its warning must be JSON too
    const r = await started(["-v", "--log-format", "json", "-c", cfg], {
      CONVERGE_TRANSPORT: "tcp",
      CONVERGE_PORT: String(port),
    });
    const sent = await runCli(["send", "--to", `tcp://127.0.0.1:${port}`, "--payload", '{"hello":"json"}']);
    expect(sent.code).toBe(0);
    const messageId = sent.stdout.split("\n")[0]!;
    await r.waitFor(messageId, 5000, "stderr");
    expect(await r.stop()).toBe(0);
    const stdout = r.stdout
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(stdout.map((rec) => rec.msg)).toEqual([
      "agent started",
      "store",
      "running, press Ctrl+C to stop",
      "stopped",
    ]);
    expect(stdout.at(-1)).toEqual(expect.objectContaining({ level: "info", agents: 1, received: 1, sent: 0 }));
    const lines = r.stderr.split("\n").filter((l) => l !== "");
    expect(lines.length).toBeGreaterThanOrEqual(3);
    const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const rec of records)
      expect([typeof rec.ts, typeof rec.level, typeof rec.msg]).toEqual(["string", "string", "string"]);
    expect(records).toContainEqual(expect.objectContaining({ level: "debug", msg: "received message", id: messageId }));
    expect(records).toContainEqual(expect.objectContaining({ level: "info", msg: "SIGINT received, stopping" }));
    expect(records).toContainEqual(
      expect.objectContaining({ level: "warn", msg: expect.stringContaining('unknown config key "agnets"') }),
    );
  });
});

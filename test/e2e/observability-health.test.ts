/**
 * End to end: the SQLite file of a running fleet deleted, truncated, damaged, or full. Each time
 * `converge run` says so in one log line (whether or not http_port is set), /healthz answers 503
 * with the reason, and /metrics counts it.
 *
 * The full disk is SQLite's own: the fleet's process opens the file with `PRAGMA max_page_count`
 * (the test-only CONVERGE_TEST_SQLITE_MAX_PAGE_COUNT), so a write needing new pages fails with
 * "database or disk is full", exactly the error a full disk gives, while the health probe (one
 * small record rewritten in place) still succeeds: the case where a probe alone would say 200.
 */
import { Database } from "bun:sqlite";
import { expect, test } from "bun:test";
import { closeSync, openSync, statSync, truncateSync, unlinkSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { TaskManager } from "../../src/coordination/task-manager.ts";
import { SqliteStore } from "../../src/store/sqlite.ts";
import { startCli, stopAll, type Running } from "../support/cli.ts";
import { useE2eEnvironment } from "../support/e2e.ts";
import { until } from "../support/wait.ts";

const { tmp } = useE2eEnvironment({ prefix: "converge-e2e-health-", cleanup: [stopAll] });

const DOUBLE = join(import.meta.dir, "fixtures", "worker-modules", "double.js");

interface Fleet {
  run: Running;
  db: string;
  /** http://127.0.0.1:PORT, when http_port is set. */
  url: string;
}

async function startFleet(
  name: string,
  options: { http?: boolean; agent?: string; env?: Record<string, string> } = {},
) {
  const db = join(tmp.path, `${name}.db`);
  const cfg = join(tmp.path, `${name}.yaml`);
  const http = options.http ?? true;
  writeFileSync(
    cfg,
    `agent: ${options.agent ?? DOUBLE}\nstore_backend: sqlite\nstore_path: ${db}\nshutdown_grace_sec: 1\n` +
      (http ? "http_port: 0\n" : ""),
  );
  const run = startCli(["run", "-c", cfg], { env: options.env });
  await run.waitFor("running, press Ctrl+C to stop");
  const url = /^health and metrics: (http:\/\/\S+)\/healthz/m.exec(run.stdout)?.[1] ?? "";
  return { run, db, url } satisfies Fleet;
}

async function healthz(f: Fleet): Promise<{ status: number; body: string }> {
  const r = await fetch(`${f.url}/healthz`);
  return { status: r.status, body: await r.text() };
}

async function metric(f: Fleet, name: string): Promise<number | undefined> {
  const text = await (await fetch(`${f.url}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
  return m ? Number(m[1]) : undefined;
}

async function until503(f: Fleet): Promise<string> {
  let last = { status: 0, body: "" };
  await until(async () => (last = await healthz(f)).status === 503, "/healthz to answer 503", 15_000, 50);
  return last.body;
}

const unhealthyLines = (r: Running) => r.stderr.split("\n").filter((l) => l.includes("store unhealthy"));

/** Fills the file with pages written back from the WAL, so that there is something to truncate. */
function fill(db: string): void {
  const raw = new Database(db);
  try {
    raw.run("PRAGMA busy_timeout = 5000");
    const put = raw.prepare("INSERT OR REPLACE INTO store (key, value) VALUES (?, ?)");
    raw.transaction(() => {
      for (let i = 0; i < 200; i++) put.run(`filler:${i}`, JSON.stringify("x".repeat(1000)));
    })();
    raw.run("PRAGMA wal_checkpoint(FULL)");
  } finally {
    raw.close();
  }
}

test("when the SQLite file is deleted under a running fleet, /healthz is 503 and one line names the file", async () => {
  const f = await startFleet("deleted");
  expect((await healthz(f)).status).toBe(200);
  expect(await metric(f, "converge_store_healthy")).toBe(1);
  unlinkSync(f.db);
  const body = await until503(f);
  expect(body).toContain(`the database file ${f.db} was deleted`);
  await f.run.waitFor("store unhealthy", 15_000, "stderr");
  // Two more checks find it still deleted, and say nothing more.
  const checks = (await metric(f, "converge_store_health_checks_total"))!;
  await until(
    async () => (await metric(f, "converge_store_health_checks_total"))! >= checks + 2,
    "two more health checks",
    15_000,
    50,
  );
  expect(unhealthyLines(f.run)).toEqual([
    expect.stringMatching(
      new RegExp(`ERROR health: store unhealthy reason=store sqlite ${f.db}: the database file ${f.db} was deleted`),
    ),
  ]);
  expect(await metric(f, "converge_store_healthy")).toBe(0);
  expect(await metric(f, "converge_store_unhealthy_total")).toBe(1);
  expect(await f.run.stop()).toBe(0);
});

test("without http_port, a deleted SQLite file is still one clear line in the log", async () => {
  const f = await startFleet("deleted-quiet", { http: false });
  unlinkSync(f.db);
  await f.run.waitFor("store unhealthy", 15_000, "stderr");
  expect(unhealthyLines(f.run)).toEqual([expect.stringContaining(`the database file ${f.db} was deleted`)]);
  expect(await f.run.stop()).toBe(0);
});

test("when the SQLite file is truncated under a running fleet, /healthz is 503 and says truncated", async () => {
  const f = await startFleet("truncated");
  fill(f.db);
  expect((await healthz(f)).status).toBe(200);
  const size = statSync(f.db).size;
  truncateSync(f.db, Math.floor(size / 2));
  expect(await until503(f)).toContain(`the database file ${f.db} is truncated`);
  await f.run.waitFor("store unhealthy", 15_000, "stderr");
  expect(unhealthyLines(f.run)).toEqual([expect.stringContaining("is truncated")]);
});

test("when the SQLite file's header is overwritten under a running fleet, /healthz is 503 and says damaged", async () => {
  const f = await startFleet("damaged");
  expect((await healthz(f)).status).toBe(200);
  const fd = openSync(f.db, "r+");
  writeSync(fd, Buffer.from("this is no db!!!"), 0, 16, 0);
  closeSync(fd);
  expect(await until503(f)).toContain(`the database file ${f.db} has a damaged header`);
});

test("when task writes fail as on a full disk while the tiny probe still succeeds, /healthz is 503", async () => {
  // A worker whose results need more pages than the cap leaves.
  const big = join(tmp.path, "big.js");
  writeFileSync(big, `export default { capabilities: ["big"], onTask: () => ({ blob: "x".repeat(400000) }) };\n`);
  const db = join(tmp.path, "full.db");
  const store = new SqliteStore(db); // the schema first, so that the cap is a few pages above what the fleet finds
  try {
    const f = await startFleet("full", {
      agent: big,
      env: { CONVERGE_TEST_SQLITE_MAX_PAGE_COUNT: String(pageCount(db) + 20) },
    });
    expect(f.db).toBe(db);
    // Under the cap the probe is written and read back: a probe alone says healthy.
    expect((await healthz(f)).status).toBe(200);

    const tasks = new TaskManager(store);
    await tasks.submit({ id: "needs-pages", requiredCapabilities: ["big"] }); // this process has no cap
    const body = await until503(f);
    expect(body).toContain("the last write failed");
    expect(body).toContain("database or disk is full");
    await f.run.waitFor("store unhealthy", 15_000, "stderr");
    expect(unhealthyLines(f.run)).toEqual([expect.stringContaining("database or disk is full")]);
    expect(await metric(f, "converge_store_healthy")).toBe(0);
    // Nothing is lost: the worker holds the task and keeps trying to record its result.
    expect((await tasks.get("needs-pages"))?.state).toBe("assigned");
  } finally {
    await store.close();
  }
});

function pageCount(db: string): number {
  const raw = new Database(db, { readonly: true });
  try {
    return raw.query<{ page_count: number }, []>("PRAGMA page_count").get()!.page_count;
  } finally {
    raw.close();
  }
}

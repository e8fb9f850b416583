/**
 * Atomicity across OS processes: several processes increment one counter with update and race
 * putIfAbsent on the same keys. The counter must end exact and every key must have one winner.
 */
import { afterAll, expect, test } from "bun:test";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { FileStore } from "../../src/store/file.ts";
import { RedisStore } from "../../src/store/redis.ts";
import { SqliteStore } from "../../src/store/sqlite.ts";
import type { Store } from "../../src/store/store.ts";
import { startRedis } from "../support/redis.ts";
import { tempDir } from "../support/tmp.ts";
import { readLines } from "../support/lines.ts";

const PROCESSES = 4;
const N = 500;
/** The file store serialises its writes through one lock file: fewer rounds keep the test short. */
const FILE_N = 150;
const FIXTURE = join(import.meta.dir, "fixtures", "race.ts");

const tmp = tempDir("converge-atomicity-");
const redis = await startRedis();
afterAll(async () => {
  await redis.stop();
  tmp.cleanup();
});

/** Runs the racers and returns each one's wins; every process is killed on the way out, whatever happens. */
async function race(backend: string, location: string, n = N): Promise<{ worker: string; wins: number[] }[]> {
  const procs: Subprocess<"pipe", "pipe", "inherit">[] = [];
  try {
    for (let w = 0; w < PROCESSES; w++) {
      const args = [process.execPath, FIXTURE, backend, location, `w${w}`, String(n)];
      procs.push(Bun.spawn(args, { stdin: "pipe", stdout: "pipe", stderr: "inherit" }));
    }
    const outputs = procs.map((p) => readLines(p.stdout));
    for (const out of outputs) expect(await out.next()).toBe("ready");
    for (const p of procs) {
      p.stdin.write("go\n");
      await p.stdin.flush();
    }
    const results = await Promise.all(outputs.map(async (out) => JSON.parse((await out.next())!)));
    for (const p of procs) expect(await p.exited).toBe(0);
    return results;
  } finally {
    for (const p of procs) p.kill("SIGKILL");
  }
}

async function expectOneWinnerPerKey(
  results: { worker: string; wins: number[] }[],
  store: Store,
  n = N,
): Promise<void> {
  const all = results.flatMap((r) => r.wins);
  expect(all.length).toBe(n);
  expect(new Set(all).size).toBe(n);
  for (const r of results) for (const i of r.wins) expect(await store.get(`claim:${i}`)).toBe(r.worker);
}

test("sqlite: updates and putIfAbsent are atomic across processes", async () => {
  const path = join(tmp.path, "race.db");
  await new SqliteStore(path).close(); // create the schema once, outside the race
  const results = await race("sqlite", path);
  const store = new SqliteStore(path);
  expect(await store.get("counter")).toBe(PROCESSES * N);
  await expectOneWinnerPerKey(results, store);
  await store.close();
});

test("redis: updates and putIfAbsent are atomic across processes", async () => {
  const results = await race("redis", redis.url);
  const store = await RedisStore.open(redis.url);
  expect(await store.get("counter")).toBe(PROCESSES * N);
  await expectOneWinnerPerKey(results, store);
  await store.close();
});

test("file: updates and putIfAbsent are atomic across processes (the directory lock)", async () => {
  const dir = join(tmp.path, "race-files");
  const results = await race("file", dir, FILE_N);
  const store = new FileStore(dir);
  expect(await store.get("counter")).toBe(PROCESSES * FILE_N);
  await expectOneWinnerPerKey(results, store, FILE_N);
  await store.close();
}, 30_000);

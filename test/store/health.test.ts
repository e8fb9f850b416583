/**
 * Store health (StoreFront.health and the SQLite driver's check): what a write probe alone cannot
 * see. A full disk is made real with SQLite's own limit (PRAGMA max_page_count through the
 * `maxPageCount` option): writes that need new pages fail with "database or disk is full", the
 * error a full disk gives, while a small record rewritten in place (the probe) still succeeds.
 */
import { Database } from "bun:sqlite";
import { afterEach, expect, test } from "bun:test";
import { closeSync, openSync, renameSync, statSync, truncateSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import { TaskManager } from "../../src/coordination/task-manager.ts";
import { SqliteStore } from "../../src/store/sqlite.ts";
import { tempDir } from "../support/tmp.ts";

const dirs: ReturnType<typeof tempDir>[] = [];
const stores: SqliteStore[] = [];
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
  for (const d of dirs.splice(0)) d.cleanup();
});

function file(): string {
  const d = tempDir("converge-health-");
  dirs.push(d);
  return join(d.path, "fleet.db");
}

function open(path: string, options?: ConstructorParameters<typeof SqliteStore>[1]): SqliteStore {
  const s = new SqliteStore(path, options);
  stores.push(s);
  return s;
}

/** A file with some pages written back to it (closing checkpoints the WAL). */
async function filled(path: string): Promise<void> {
  const s = new SqliteStore(path);
  for (let i = 0; i < 100; i++) await s.put(`k${i}`, { v: "x".repeat(1000) });
  await s.close();
}

function pageCount(path: string): number {
  const db = new Database(path, { readonly: true });
  try {
    return db.query<{ page_count: number }, []>("PRAGMA page_count").get()!.page_count;
  } finally {
    db.close();
  }
}

test("when task writes fail with 'database or disk is full' while the tiny probe still succeeds, health says so", async () => {
  const path = file();
  await filled(path);
  const store = open(path, { maxPageCount: pageCount(path) + 2 });
  const tasks = new TaskManager(store);
  await store.put("small", { n: 1 });
  expect(await store.health()).toBeNull(); // the probe is written and read back under the cap
  const big = { id: "big", inputs: { blob: "x".repeat(200_000) } };
  await expect(tasks.submit(big)).rejects.toThrow(/database or disk is full/);
  const why = await store.health();
  expect(why).toContain(`store sqlite ${path}: the last write failed`);
  expect(why).toContain("database or disk is full");
  expect(await store.health()).toBe(why); // it stays unhealthy: the probe does not mask it
  await store.put("small", { n: 2 }); // a real write that succeeds again
  expect(await store.health()).toBeNull();
});

test("when the database file is deleted under a running process, health names the file", async () => {
  const path = file();
  const store = open(path);
  await store.put("a", 1);
  expect(await store.health()).toBeNull();
  unlinkSync(path);
  await store.put("b", 2); // still works, on the deleted inode: the reason to look
  expect(await store.health()).toContain(`the database file ${path} was deleted`);
});

test("when another file is moved over the database, health says it was replaced", async () => {
  const path = file();
  const store = open(path);
  await store.put("a", 1);
  await filled(`${path}.other`);
  renameSync(`${path}.other`, path);
  expect(await store.health()).toContain(`the database file ${path} was replaced by another file`);
});

test("when the file is truncated below the pages its header declares, health says truncated", async () => {
  const path = file();
  await filled(path);
  const store = open(path);
  expect(await store.health()).toBeNull();
  const size = statSync(path).size;
  truncateSync(path, Math.floor(size / 2));
  expect(await store.health()).toContain(
    `the database file ${path} is truncated: ${Math.floor(size / 2)} bytes, but its header declares ${size}`,
  );
});

test("when the header is overwritten, health says it is damaged", async () => {
  const path = file();
  await filled(path);
  const store = open(path);
  const fd = openSync(path, "r+");
  writeSync(fd, Buffer.from("not a database!!"), 0, 16, 0);
  closeSync(fd);
  expect(await store.health()).toContain(`the database file ${path} has a damaged header`);
});

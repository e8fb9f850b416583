/** The task queue contract on every backend: memory, SQLite, Redis natively, the file store through the generic queue. */
import { afterAll } from "bun:test";
import { Database } from "bun:sqlite";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Redis } from "ioredis";
import { fileNameOf } from "../../src/store/file-names.ts";
import { FileStore } from "../../src/store/file.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import { RedisStore } from "../../src/store/redis.ts";
import { SqliteStore } from "../../src/store/sqlite.ts";
import { startRedis } from "../support/redis.ts";
import { tempDir } from "../support/tmp.ts";
import { sharedQueueContract, taskQueueContract } from "./task-queue-contract.ts";

const tmp = tempDir("converge-task-queue-");
const redis = await startRedis();
afterAll(async () => {
  await redis.stop();
  tmp.cleanup();
});
let n = 0;

taskQueueContract("memory", async () => ({ store: new MemoryStore() }));

const sqlite = async () => {
  const path = join(tmp.path, `q${++n}.db`);
  const corrupt = async (id: string, raw: string) => {
    const db = new Database(path);
    db.run("UPDATE tasks SET value = ? WHERE id = ?", [raw, id]);
    db.close();
  };
  return { store: new SqliteStore(path), peer: async () => new SqliteStore(path), corrupt };
};
taskQueueContract("sqlite", sqlite);
sharedQueueContract("sqlite", sqlite);

const file = async () => {
  const dir = join(tmp.path, `files${++n}`);
  const corrupt = async (id: string, raw: string) => writeFileSync(join(dir, fileNameOf(`task:${id}`).name), raw);
  return { store: new FileStore(dir), peer: async () => new FileStore(dir), corrupt };
};
taskQueueContract("file (generic queue)", file);
sharedQueueContract("file (generic queue)", file);

const redisStore = async () => {
  const namespace = `{q${++n}}:`;
  return {
    store: await RedisStore.open(redis.url, { namespace }),
    peer: () => RedisStore.open(redis.url, { namespace }),
    corrupt: async (id: string, text: string) => {
      const raw = new Redis(redis.url);
      await raw.set(`${namespace}k:task:${id}`, text);
      raw.disconnect();
    },
  };
};
taskQueueContract("redis", redisStore);
sharedQueueContract("redis", redisStore);

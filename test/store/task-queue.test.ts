/** The task queue contract on every backend: memory, SQLite, Redis natively, the file store through the generic queue. */
import { afterAll } from "bun:test";
import { join } from "node:path";
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
  return { store: new SqliteStore(path), peer: async () => new SqliteStore(path) };
};
taskQueueContract("sqlite", sqlite);
sharedQueueContract("sqlite", sqlite);

const file = async () => {
  const dir = join(tmp.path, `files${++n}`);
  return { store: new FileStore(dir), peer: async () => new FileStore(dir) };
};
taskQueueContract("file (generic queue)", file);
sharedQueueContract("file (generic queue)", file);

const redisStore = async () => {
  const namespace = `{q${++n}}:`;
  return {
    store: await RedisStore.open(redis.url, { namespace }),
    peer: () => RedisStore.open(redis.url, { namespace }),
  };
};
taskQueueContract("redis", redisStore);
sharedQueueContract("redis", redisStore);

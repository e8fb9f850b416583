/**
 * Redis Cluster runs a script only when every key it touches lives on one slot. Every key the Redis
 * store writes carries the namespace's hash tag (`{converge}` by default), so a whole deployment's
 * records, indexes and task structures hash to one slot. This computes each key's slot as Redis does
 * (CRC16/XMODEM of the hash tag, mod 16384: the cluster specification) and checks it against a
 * cluster-mode redis-server's own answer (CLUSTER KEYSLOT answers even with no slots assigned).
 */
import { afterAll, expect, test } from "bun:test";
import { Redis } from "ioredis";
import { TaskManager } from "../../src/coordination/task-manager.ts";
import { PoolManager } from "../../src/coordination/pool-manager.ts";
import { RedisStore } from "../../src/store/redis.ts";
import { startRedis } from "../support/redis.ts";
import { tempDir } from "../support/tmp.ts";

const tmp = tempDir("converge-redis-cluster-");
const server = await startRedis();
const cluster = await startRedis(["--cluster-enabled", "yes", "--cluster-config-file", `${tmp.path}/nodes.conf`]);
const raw = new Redis(server.url);
const slotsOf = new Redis(cluster.url);
afterAll(async () => {
  raw.disconnect();
  slotsOf.disconnect();
  await Promise.all([server.stop(), cluster.stop()]);
  tmp.cleanup();
});

/** CRC16-CCITT (XMODEM), the checksum of Redis Cluster's key slots. */
function crc16(data: Uint8Array): number {
  let crc = 0;
  for (const byte of data) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** The slot of a key: of its hash tag (the text between the first `{` and the next `}`, if not empty), else of it all. */
function keySlot(key: string): number {
  const open = key.indexOf("{");
  if (open >= 0) {
    const close = key.indexOf("}", open + 1);
    if (close > open + 1) key = key.slice(open + 1, close);
  }
  return crc16(new TextEncoder().encode(key)) % 16384;
}

test("CRC16 slots as computed here agree with redis-server's CLUSTER KEYSLOT", async () => {
  expect(crc16(new TextEncoder().encode("123456789"))).toBe(0x31c3); // the XMODEM check value
  for (const key of ["foo", "{converge}:k:task:1", "a{b}c", "{}x", "x{}{y}"]) {
    expect(keySlot(key)).toBe(Number(await slotsOf.call("CLUSTER", "KEYSLOT", key)));
  }
});

test("every key a default Redis store writes (records, indexes, task queues) maps to one slot", async () => {
  await raw.flushdb();
  const store = await RedisStore.open(server.url);
  try {
    const tm = new TaskManager(store);
    await new PoolManager(store).create({ id: "p" });
    await tm.submitMany([
      { id: "a" },
      { id: "b", poolId: "p", priority: 3 },
      { id: "c", requiredCapabilities: ["gpu"] },
      { id: "d", notBefore: Date.now() + 60_000 },
    ]);
    const [lease] = await tm.claimNext("agent-1", { pools: ["p"], capabilities: ["gpu"] }, 2);
    await tm.report(lease!.taskId, { ok: 1 }, { agentId: "agent-1", token: lease!.token });
    await store.indexAdd("some-index", "m");
    const keys = await raw.keys("*");
    expect(keys.length).toBeGreaterThan(8);
    expect(keys.every((k) => k.startsWith("{converge}:"))).toBe(true);
    const slots = new Set(keys.map(keySlot));
    expect(slots.size).toBe(1);
    for (const key of keys) expect(Number(await slotsOf.call("CLUSTER", "KEYSLOT", key))).toBe(keySlot(key));
  } finally {
    await store.close();
  }
});

/**
 * Redis, shared by any number of processes on any number of machines (ioredis).
 *
 * Names: everything lives under the namespace (`{converge}:` by default; its `{...}` is a Redis
 * Cluster hash tag, so every key is on one slot and every script may touch any of them): records
 * under `<ns>k:<key>`, index sets (Redis sets) under `<ns>i:<name>`, channels are `<ns>n:<channel>`,
 * and the task queue's structures under `<ns>q:` and `<ns>t:` (redis-scripts.ts). A store opened
 * with the default namespace moves keys written by converge 0.1 (under `converge:`) into it once.
 *
 * update is an optimistic compare-and-set: read the value, run the step, then a tiny Lua script
 * writes only if the value is still the one that was read (compared by SHA-1), else it replies
 * with the current value and the step runs again on that (no second GET). With a hint of the
 * current value the GET is skipped altogether: the step runs on the hint and the script compares
 * against it, so an update whose hint is right costs one round trip. This rests on
 * JSON.stringify(JSON.parse(s)) === s for every s that JSON.stringify produced (test/store/redis.test.ts
 * checks it). A decline or an error on a hint is never trusted: the value is read and the step runs
 * again. An index change is an SADD or SREM inside the same script. Updates of one key from this
 * process queue up locally, so only writers in other processes ever cause a retry.
 *
 * Connection failures: redis-connection.ts. Tasks: redis-queue.ts.
 */
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { StoreError } from "../core/errors.ts";
import { quoted } from "../core/text.ts";
import { logger } from "../observability/log.ts";
import type { Driver } from "./driver.ts";
import { StoreFront } from "./front.ts";
import { KeyedMutex } from "./mutex.ts";
import { type ConnectionOptions, RedisConnection, script, sha1 } from "./redis-connection.ts";
import { globEscape, RedisTaskQueue } from "./redis-queue.ts";
import { parseRedisUrl } from "./redis-url.ts";

const log = logger("store.redis");

export interface RedisStoreOptions extends ConnectionOptions {
  /** Prefix of every Redis key and channel this store uses (default "{converge}:", a Cluster hash tag). */
  namespace?: string;
  /** How long update keeps retrying while other processes keep winning (default 10 s). */
  conflictTimeoutMs?: number;
}

const DEFAULT_NAMESPACE = "{converge}:";
/** Where converge 0.1 kept its keys, when no namespace was given. */
const LEGACY_NAMESPACE = "converge:";

/**
 * Writes ARGV[2] only if the key still holds the value whose SHA-1 is ARGV[1] ("" = still absent),
 * and then, when an index set is named (KEYS[2]), adds (ARGV[4] = "1") or removes member ARGV[3].
 * Replies 1 when it wrote; otherwise the current value, so the caller can retry without a GET:
 * an empty array when the key is absent, else a one-element array holding the value.
 */
const CAS = script(`
local cur = redis.call('GET', KEYS[1])
if ARGV[1] == '' then
  if cur then return {cur} end
elseif not cur then
  return {}
elseif redis.sha1hex(cur) ~= ARGV[1] then
  return {cur}
end
redis.call('SET', KEYS[1], ARGV[2])
if KEYS[2] then
  if ARGV[4] == '1' then redis.call('SADD', KEYS[2], ARGV[3]) else redis.call('SREM', KEYS[2], ARGV[3]) end
end
return 1`);
const CLOCK_REFRESH_MS = 5_000;
const CLOCK_MAX_AGE_MS = 60_000;

async function redisDriver(url: string, options: RedisStoreOptions = {}): Promise<Driver<string>> {
  const target = parseRedisUrl(url);
  const conn = new RedisConnection(target, options);
  await conn.connect();
  const ns = options.namespace ?? DEFAULT_NAMESPACE;
  const tasks = new RedisTaskQueue(conn, ns);
  try {
    // The default namespace is checked for converge 0.1's keys once (the marker says it was).
    const marker = `${ns}t:layout`;
    const checked = options.namespace === undefined && (await conn.cmd((c) => c.get(marker))) === "2";
    if (!checked && options.namespace === undefined) await moveLegacyKeys(conn);
    if (!checked) await tasks.init();
    if (!checked && options.namespace === undefined) await conn.cmd((c) => c.set(marker, "2"));
  } catch (err) {
    await conn.close();
    throw err;
  }
  const conflictMs = options.conflictTimeoutMs ?? 10_000;
  const locks = new KeyedMutex();
  const k = (key: string) => `${ns}k:${key}`;
  const i = (name: string) => `${ns}i:${name}`;
  const cmd = conn.cmd.bind(conn);

  // Pub/sub: our own PUBLISHes carry this tag, so our subscriber skips their echo (the front has
  // already woken this process's listeners).
  const origin = randomUUID();
  const watched = new Map<string, (channel: string) => void>();
  let sub: Redis | undefined;
  /** Per channel, the PUBLISH in flight and the one that will follow it (see publish). */
  const publishing = new Map<string, { done: Promise<void>; next?: Promise<void> }>();
  const subscriber = (): Redis => {
    // Pub/sub needs a connection of its own; it queues (un)subscribes while reconnecting and resubscribes after.
    const s = conn.errors.watch(
      new Redis({
        ...conn.options,
        lazyConnect: false,
        enableOfflineQueue: true,
        maxRetriesPerRequest: null,
        commandTimeout: undefined,
      }),
    );
    const prefix = `${ns}n:`;
    let connectedBefore = false;
    s.on("message", (channel: string, from: string) => {
      if (from === origin) return;
      const c = channel.slice(prefix.length);
      watched.get(c)?.(c);
    });
    s.on("ready", () => {
      // Notifications sent while we were disconnected are lost: wake everyone to look for work.
      if (connectedBefore) for (const [c, heard] of watched) heard(c);
      connectedBefore = true;
    });
    return s;
  };
  const publish = (channel: string): Promise<void> => {
    const done = cmd((c) => c.publish(`${ns}n:${channel}`, origin)).then(noop);
    const entry: { done: Promise<void>; next?: Promise<void> } = { done };
    publishing.set(channel, entry);
    const settle = () => {
      if (publishing.get(channel) === entry) publishing.delete(channel);
    };
    done.then(settle, settle);
    return done;
  };

  let clock: { offset: number; at: number } | undefined;
  let clockSync: Promise<void> | undefined;
  const syncClock = (): Promise<void> =>
    (clockSync ??= (async () => {
      try {
        const t0 = Date.now();
        const [sec, usec] = await cmd((c) => c.time());
        const t1 = Date.now();
        clock = { offset: Number(sec) * 1000 + Number(usec) / 1000 - (t0 + t1) / 2, at: t1 };
      } finally {
        clockSync = undefined;
      }
    })());

  const update = async (key: string, step: Parameters<Driver<string>["update"]>[1], hint?: string | null) => {
    await locks.run(key, async () => {
      const deadline = Date.now() + conflictMs;
      // What the key holds as far as we know (raw bytes, so the hash matches what Redis holds even
      // if someone stored invalid UTF-8; null = absent, undefined = unknown), and whether Redis said
      // so (`known`) or it is only the caller's hint.
      let raw: Buffer | null | undefined =
        hint === undefined ? undefined : hint === null ? null : Buffer.from(hint, "utf8");
      let known = false;
      for (let conflicts = 0; ; ) {
        if (raw === undefined) {
          raw = await cmd((c) => c.getBuffer(k(key)));
          known = true;
        }
        let write: ReturnType<typeof step>;
        try {
          write = step(raw === null ? undefined : raw.toString("utf8"));
        } catch (err) {
          if (known) throw err;
          raw = undefined; // the hint may be what it choked on: decide on the real value
          continue;
        }
        if (!write) {
          if (known) return;
          raw = undefined; // declined on the hint only: a decline must rest on the real value
          continue;
        }
        const expected = raw === null ? "" : sha1(raw);
        const keys = write.index ? [k(key), i(write.index.name)] : [k(key)];
        const args = write.index
          ? [expected, write.value, write.index.member, write.index.add ? "1" : "0"]
          : [expected, write.value];
        const reply = await conn.evalBuffer(CAS, keys, args);
        if (reply === 1) return;
        // Lost to another writer, or the hint was wrong: the reply holds the value to decide on now.
        raw = (reply as Buffer[])[0] ?? null;
        known = true;
        if (Date.now() > deadline) {
          throw new StoreError(`update of ${quoted(key)} kept losing to other writers for ${conflictMs} ms`);
        }
        if (++conflicts >= 3) await Bun.sleep(Math.random() * Math.min(2 ** conflicts, 50)); // jittered backoff
      }
    });
  };

  return {
    codec: "json",
    description: `redis ${target.address}/${target.db}`,
    get: (key) => cmd((c) => c.get(k(key))).then((t) => t ?? undefined),
    // MGET, in chunks sent together (so one huge read does not stall Redis).
    async getMany(keys) {
      if (keys.length === 0) {
        await cmd((c) => c.ping()); // still reject when unreachable
        return [];
      }
      return (await conn.mget(keys.map(k))).map((t) => t ?? undefined);
    },
    set: (key, text) => cmd((c) => c.set(k(key), text)).then(noop),
    setIfAbsent: (key, text) => cmd((c) => c.set(k(key), text, "NX")).then((r) => r === "OK"),
    delete: (key) => cmd((c) => c.del(k(key))).then((n) => n > 0),
    // SCAN, never KEYS: it walks the keyspace in small steps without blocking Redis.
    async list(prefix) {
      const base = k("");
      const match = `${globEscape(base + prefix)}*`;
      const found = new Set<string>(); // SCAN may return a key more than once
      let cursor = "0";
      do {
        const [next, keys] = await cmd((c) => c.scan(cursor, "MATCH", match, "COUNT", 1000));
        for (const key of keys) found.add(key.slice(base.length));
        cursor = next;
      } while (cursor !== "0");
      return [...found];
    },
    update,
    async indexAdd(name, members) {
      if (members.length > 0) await cmd((c) => c.sadd(i(name), ...members));
      else await cmd((c) => c.ping()); // still reject when unreachable
    },
    async indexRemove(name, members) {
      if (members.length > 0) await cmd((c) => c.srem(i(name), ...members));
      else await cmd((c) => c.ping());
    },
    indexMembers: (name) => cmd((c) => c.smembers(i(name))),
    // One PUBLISH at a time per channel: calls made while one is in flight share the single
    // PUBLISH that follows it (which begins after each of them was called, so every subscriber
    // still hears of the latest change), rather than sending one each.
    publish(channel) {
      const running = publishing.get(channel);
      if (!running) return publish(channel);
      return (running.next ??= running.done.then(noop, noop).then(() => publish(channel)));
    },
    watch(channel, heard) {
      const s = (sub ??= subscriber());
      watched.set(channel, heard);
      s.subscribe(`${ns}n:${channel}`).then(
        // Anything published before the server registered the subscription was not delivered:
        // wake the listeners once it is in place, so they look for what they may have missed.
        () => heard(channel),
        (err) => {
          if (!conn.closed) {
            log.error("cannot subscribe; this process will only see its own wake-ups on this channel", {
              channel,
              err: conn.fail(err),
            });
          }
        },
      );
    },
    unwatch(channel) {
      watched.delete(channel);
      if (!conn.closed)
        sub?.unsubscribe(`${ns}n:${channel}`).catch((err) => log.debug("cannot unsubscribe", { channel, err }));
    },
    // Redis TIME, via a cached offset to the local clock: no round trip per call.
    async now() {
      const age = clock ? Date.now() - clock.at : Infinity;
      if (age > CLOCK_MAX_AGE_MS) await syncClock();
      else if (age > CLOCK_REFRESH_MS)
        syncClock().catch((err) => log.debug("cannot refresh the Redis clock offset", { err }));
      return Math.round(Date.now() + clock!.offset);
    },
    tasks,
    async close() {
      watched.clear();
      sub?.disconnect();
      await conn.close();
    },
  };
}

export class RedisStore extends StoreFront {
  /** Connects, or fails within about `commandTimeoutMs` with a StoreError saying why. */
  static async open(url: string, options: RedisStoreOptions = {}): Promise<RedisStore> {
    return new RedisStore(await redisDriver(url, options));
  }
}

/** Moves keys of converge 0.1's default namespace into the current one (once: RENAMENX keeps newer keys). */
async function moveLegacyKeys(conn: RedisConnection): Promise<void> {
  let cursor = "0";
  let moved = 0;
  do {
    const [next, keys] = await conn.cmd((c) =>
      c.scan(cursor, "MATCH", `${globEscape(LEGACY_NAMESPACE)}*`, "COUNT", 1000),
    );
    cursor = next;
    for (const key of keys) {
      if (await conn.cmd((c) => c.renamenx(key, DEFAULT_NAMESPACE + key.slice(LEGACY_NAMESPACE.length)))) moved++;
    }
  } while (cursor !== "0");
  if (moved > 0)
    log.info(`moved ${moved} keys written by converge 0.1 from "${LEGACY_NAMESPACE}" to "${DEFAULT_NAMESPACE}"`);
}

function noop(): void {}

/**
 * Redis, shared by any number of processes on any number of machines (ioredis).
 *
 * Names: records live under `<ns>k:<key>`, index sets (Redis sets) under `<ns>i:<name>`, and
 * channels are `<ns>n:<channel>`, so that records, sets and channels can never collide and a
 * SCAN for records never meets a set.
 *
 * update is an optimistic compare-and-set: read the value, run the JS callback, then a tiny Lua
 * script writes only if the value is still the one that was read (compared by SHA-1), else it
 * replies with the current value and the callback runs again on that (no second GET). With a hint
 * of the current value (UpdateOptions.expected) the GET is skipped altogether: the callback runs on
 * the hint and the script compares against it, so an update whose hint is right costs one round
 * trip. This rests on JSON.stringify(JSON.parse(s)) === s for every s that JSON.stringify produced
 * (key order, number and string forms all survive the round trip; test/store/redis.test.ts checks
 * it), so the hint re-serialised hashes like the stored bytes. The callback's decline, or error,
 * on a hint is never trusted: the value is read and the callback runs again. An index change asked
 * of the update (UpdateOptions.index) is an SADD or SREM inside the same script.
 * Unlike WATCH/MULTI this needs no connection of its own per update (WATCH is per connection, so
 * concurrent updates on one shared connection would cancel each other's watches or, worse, slip
 * through unwatched). Updates of one key from this process queue up locally, so only writers in
 * other processes ever cause a retry.
 *
 * Failure: no offline queue and a command timeout, so while Redis is down every call fails within
 * `commandTimeoutMs` with "Redis at host:port is unreachable: ..." rather than waiting or being
 * replayed later behind the caller's back; ioredis keeps reconnecting, and the same store works
 * again once Redis is back.
 */
import { Redis, type RedisOptions } from "ioredis";
import { createHash, randomUUID } from "node:crypto";
import { StoreError } from "../core/errors.ts";
import { logger } from "../observability/log.ts";
import { parseRecord, serialise } from "./json.ts";
import { checkIndexUpdate, checkKey, sortKeys } from "./keys.ts";
import { Listeners } from "./listeners.ts";
import { KeyedMutex } from "./mutex.ts";
import { ErrorLog } from "./redis-errors.ts";
import { parseRedisUrl, type RedisTarget } from "./redis-url.ts";
import { ABSENT, DECLINE, type Decline, type Store, type UpdateOptions } from "./store.ts";

const log = logger("store.redis");

export interface RedisStoreOptions {
  /** Prefix of every Redis key and channel this store uses (default "converge:"). */
  namespace?: string;
  /** Upper bound on any one command, and on connecting (default 2000 ms). */
  commandTimeoutMs?: number;
  /** How long update keeps retrying while other processes keep winning (default 10 s). */
  conflictTimeoutMs?: number;
}

/**
 * Writes ARGV[2] only if the key still holds the value whose SHA-1 is ARGV[1] ("" = still absent),
 * and then, when an index set is named (KEYS[2]), adds (ARGV[4] = "1") or removes member ARGV[3].
 * Replies 1 when it wrote; otherwise the current value, so the caller can retry without a GET:
 * an empty array when the key is absent, else a one-element array holding the value.
 */
const CAS = `
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
return 1`;
const CAS_SHA = sha1(CAS);
const CLOCK_REFRESH_MS = 5_000;
/** Keys per MGET in getMany. */
const MGET_CHUNK = 500;
const CLOCK_MAX_AGE_MS = 60_000;

export class RedisStore implements Store {
  readonly description: string;
  readonly #target: RedisTarget;
  readonly #ns: string;
  readonly #timeoutMs: number;
  readonly #conflictMs: number;
  readonly #client: Redis;
  readonly #options: RedisOptions;
  readonly #errors: ErrorLog;
  readonly #locks = new KeyedMutex();
  readonly #listeners = new Listeners();
  /** Tags our own PUBLISHes, so our subscriber skips the echo of wake-ups already delivered locally. */
  readonly #origin = randomUUID();
  /** Per channel, the PUBLISH in flight and the one that will follow it (see notify). */
  readonly #publishing = new Map<string, { done: Promise<void>; next?: Promise<void> }>();
  #sub: Redis | undefined;
  #clock: { offset: number; at: number } | undefined;
  #clockSync: Promise<void> | undefined;
  #closed = false;

  private constructor(url: string, options: RedisStoreOptions) {
    this.#target = parseRedisUrl(url);
    const t = this.#target;
    this.description = `redis ${t.address}/${t.db}`;
    this.#ns = options.namespace ?? "converge:";
    this.#timeoutMs = options.commandTimeoutMs ?? 2000;
    this.#conflictMs = options.conflictTimeoutMs ?? 10_000;
    this.#errors = new ErrorLog(t.address);
    this.#options = {
      host: t.host,
      port: t.port,
      db: t.db,
      username: t.username,
      password: t.password,
      tls: t.tls ? {} : undefined,
      connectionName: "converge",
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      commandTimeout: this.#timeoutMs,
      connectTimeout: this.#timeoutMs,
      retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 5), 1000),
    };
    this.#client = this.#errors.watch(new Redis(this.#options));
  }

  /** Connects, or fails within about `commandTimeoutMs` with a StoreError saying Redis is unreachable. */
  static async open(url: string, options: RedisStoreOptions = {}): Promise<RedisStore> {
    const store = new RedisStore(url, options);
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        store.#client.connect(),
        new Promise(
          (_, reject) =>
            (timer = setTimeout(
              () => reject(new Error(`no answer within ${store.#timeoutMs} ms`)),
              store.#timeoutMs + 500,
            )),
        ),
      ]);
    } catch (err) {
      store.#closed = true;
      store.#client.disconnect();
      throw store.#fail(err);
    } finally {
      clearTimeout(timer);
    }
    return store;
  }

  /** Runs a command, turning every failure into a StoreError that says where and why. */
  async #cmd<T>(run: (c: Redis) => Promise<T>): Promise<T> {
    if (this.#closed) throw new StoreError(`the Redis store at ${this.#target.address} is closed`);
    try {
      return await run(this.#client);
    } catch (err) {
      throw this.#fail(err);
    }
  }

  #fail(err: unknown): StoreError {
    if (err instanceof StoreError) return err;
    const e = err as Error;
    if (e.name === "ReplyError")
      return new StoreError(`Redis at ${this.#target.address} refused a command: ${e.message}`, { cause: err });
    let cause = e;
    let reason = e.message;
    if (/timed out/i.test(reason)) reason = `no reply within ${this.#timeoutMs} ms`;
    else if (/enableOfflineQueue|Connection is closed|max retries/i.test(reason)) {
      // The command only saw "not connected"; the connection's own last error says why.
      cause = this.#errors.last ?? e;
      reason = this.#errors.last
        ? `not connected (${this.#errors.last.message})`
        : "the connection was lost; reconnecting";
    }
    if (cause.name === "ReplyError")
      return new StoreError(`Redis at ${this.#target.address} refused the connection: ${cause.message}`, {
        cause: err,
      });
    if (/Unknown RESP type|Protocol error/i.test(cause.message))
      reason = "the server there does not speak the Redis protocol";
    return new StoreError(`Redis at ${this.#target.address} is unreachable: ${reason}`, { cause: err });
  }

  #k(key: string): string {
    return `${this.#ns}k:${key}`;
  }

  async get<T>(key: string): Promise<T | undefined> {
    checkKey(key);
    const text = await this.#cmd((c) => c.get(this.#k(key)));
    return text === null ? undefined : (parseRecord(key, text) as T);
  }

  /** MGET, in chunks of MGET_CHUNK keys sent together (so one huge read does not stall Redis). */
  async getMany<T>(keys: readonly string[]): Promise<(T | undefined)[]> {
    for (const key of keys) checkKey(key);
    if (keys.length === 0) {
      await this.#cmd((c) => c.ping()); // still reject when closed or unreachable
      return [];
    }
    const chunks: string[][] = [];
    for (let i = 0; i < keys.length; i += MGET_CHUNK) chunks.push(keys.slice(i, i + MGET_CHUNK).map((k) => this.#k(k)));
    const replies = await Promise.all(chunks.map((chunk) => this.#cmd((c) => c.mget(...chunk))));
    return replies.flat().map((text, i) => (text === null ? undefined : (parseRecord(keys[i]!, text) as T)));
  }

  async put(key: string, value: unknown): Promise<void> {
    checkKey(key);
    const text = serialise(key, value);
    await this.#cmd((c) => c.set(this.#k(key), text));
  }

  async delete(key: string): Promise<boolean> {
    checkKey(key);
    return (await this.#cmd((c) => c.del(this.#k(key)))) > 0;
  }

  /** SCAN, never KEYS: it walks the keyspace in small steps without blocking Redis. */
  async list(prefix: string): Promise<string[]> {
    checkKey(prefix, "prefix");
    const base = this.#k("");
    const match = `${globEscape(base + prefix)}*`;
    const found = new Set<string>(); // SCAN may return a key more than once
    let cursor = "0";
    do {
      const [next, keys] = await this.#cmd((c) => c.scan(cursor, "MATCH", match, "COUNT", 1000));
      for (const k of keys) found.add(k.slice(base.length));
      cursor = next;
    } while (cursor !== "0");
    return sortKeys([...found]);
  }

  async putIfAbsent(key: string, value: unknown): Promise<boolean> {
    checkKey(key);
    const text = serialise(key, value);
    return (await this.#cmd((c) => c.set(this.#k(key), text, "NX"))) === "OK";
  }

  async update<T>(
    key: string,
    fn: (current: T | undefined) => T | Decline,
    options?: UpdateOptions<T>,
  ): Promise<T | undefined> {
    checkKey(key);
    const index = options?.index;
    if (index) checkIndexUpdate(index);
    const keys = index ? [this.#k(key), `${this.#ns}i:${index.name}`] : [this.#k(key)];
    const hint = hintBytes(key, options?.expected);
    return this.#locks.run(key, async () => {
      const deadline = Date.now() + this.#conflictMs;
      // What the key holds as far as we know (raw bytes, so the hash matches what Redis holds even
      // if someone stored invalid UTF-8; null = absent, undefined = unknown), and whether Redis said
      // so (`known`) or it is only the caller's hint.
      let raw = hint;
      let known = false;
      for (let conflicts = 0; ; ) {
        if (raw === undefined) {
          raw = await this.#cmd((c) => c.getBuffer(keys[0]!));
          known = true;
        }
        const current = raw === null ? undefined : (parseRecord(key, raw.toString("utf8")) as T);
        let text: string;
        let stored: T;
        let keep = false;
        try {
          const next = fn(current);
          if (next === DECLINE) {
            if (known) return current;
            raw = undefined; // declined on the hint only: a decline must rest on the real value
            continue;
          }
          text = serialise(key, next);
          stored = JSON.parse(text) as T;
          if (index) keep = index.keep(stored);
        } catch (err) {
          if (known) throw err;
          raw = undefined; // the hint may be what it choked on: decide on the real value
          continue;
        }
        const expected = raw === null ? "" : sha1(raw);
        const args = index ? [expected, text, index.member, keep ? "1" : "0"] : [expected, text];
        const reply = await this.#cmd((c) => this.#cas(c, keys, args));
        if (reply === 1) return stored;
        // Lost to another writer, or the hint was wrong: the reply holds the value to decide on now.
        raw = (reply as Buffer[])[0] ?? null;
        known = true;
        if (Date.now() > deadline)
          throw new StoreError(`update of "${key}" kept losing to other writers for ${this.#conflictMs} ms`);
        if (++conflicts >= 3) await Bun.sleep(Math.random() * Math.min(2 ** conflicts, 50)); // jittered backoff under contention
      }
    });
  }

  async #cas(c: Redis, keys: string[], args: string[]): Promise<unknown> {
    try {
      return await c.callBuffer("evalsha", CAS_SHA, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err as Error).message?.startsWith("NOSCRIPT")) throw err;
      return c.callBuffer("eval", CAS, keys.length, ...keys, ...args); // first use, or Redis restarted: EVAL also caches it
    }
  }

  async indexAdd(index: string, ...members: string[]): Promise<void> {
    checkKey(index, "index name");
    for (const m of members) checkKey(m, "index member");
    if (members.length > 0) await this.#cmd((c) => c.sadd(`${this.#ns}i:${index}`, ...members));
    else await this.#cmd((c) => c.ping()); // still reject when closed or unreachable
  }

  async indexRemove(index: string, ...members: string[]): Promise<void> {
    checkKey(index, "index name");
    if (members.length > 0) await this.#cmd((c) => c.srem(`${this.#ns}i:${index}`, ...members));
    else await this.#cmd((c) => c.ping());
  }

  async indexMembers(index: string): Promise<string[]> {
    checkKey(index, "index name");
    return this.#cmd((c) => c.smembers(`${this.#ns}i:${index}`));
  }

  /**
   * One PUBLISH at a time per channel: calls made while one is in flight share the single PUBLISH
   * that follows it (which begins after each of them was called, so every subscriber still hears
   * of the latest change), rather than sending one each.
   */
  async notify(channel: string): Promise<void> {
    checkKey(channel, "channel");
    const running = this.#publishing.get(channel);
    if (!running) return this.#publish(channel);
    return (running.next ??= running.done.then(noop, noop).then(() => this.#publish(channel)));
  }

  #publish(channel: string): Promise<void> {
    const done = (async () => {
      await this.#cmd((c) => c.publish(`${this.#ns}n:${channel}`, this.#origin));
      this.#listeners.fire(channel);
    })();
    const entry: { done: Promise<void>; next?: Promise<void> } = { done };
    this.#publishing.set(channel, entry);
    const settle = () => {
      if (this.#publishing.get(channel) === entry) this.#publishing.delete(channel);
    };
    done.then(settle, settle);
    return done;
  }

  subscribe(channel: string, listener: () => void): () => void {
    if (this.#closed) throw new StoreError(`the Redis store at ${this.#target.address} is closed`);
    checkKey(channel, "channel");
    const sub = (this.#sub ??= this.#subscriber());
    const full = `${this.#ns}n:${channel}`;
    if (!this.#listeners.has(channel)) {
      sub.subscribe(full).then(
        // Anything published before the server registered the subscription was not delivered:
        // wake the listeners once it is in place, so they look for what they may have missed.
        () => this.#listeners.fire(channel),
        (err) => {
          if (!this.#closed)
            log.error("cannot subscribe; this process will only see its own wake-ups on this channel", {
              channel,
              error: this.#fail(err),
            });
        },
      );
    }
    return this.#listeners.add(channel, listener, () => {
      if (!this.#closed) sub.unsubscribe(full).catch((err) => log.debug("cannot unsubscribe", { channel, error: err }));
    });
  }

  /** Pub/sub needs a connection of its own; it queues (un)subscribes while reconnecting and resubscribes after. */
  #subscriber(): Redis {
    const sub = this.#errors.watch(
      new Redis({
        ...this.#options,
        lazyConnect: false,
        enableOfflineQueue: true,
        maxRetriesPerRequest: null,
        commandTimeout: undefined,
      }),
    );
    const prefix = `${this.#ns}n:`;
    let connectedBefore = false;
    sub.on("message", (channel: string, origin: string) => {
      if (origin !== this.#origin) this.#listeners.fire(channel.slice(prefix.length));
    });
    sub.on("ready", () => {
      // Notifications sent while we were disconnected are lost: wake everyone to look for work.
      if (connectedBefore) this.#listeners.fireAll();
      connectedBefore = true;
    });
    return sub;
  }

  /** Redis TIME, via a cached offset to the local clock: no round trip per call. */
  async now(): Promise<number> {
    if (this.#closed) throw new StoreError(`the Redis store at ${this.#target.address} is closed`);
    const age = this.#clock ? Date.now() - this.#clock.at : Infinity;
    if (age > CLOCK_MAX_AGE_MS) await this.#syncClock();
    else if (age > CLOCK_REFRESH_MS)
      this.#syncClock().catch((err) => log.debug("cannot refresh the Redis clock offset", { error: err }));
    return Math.round(Date.now() + this.#clock!.offset);
  }

  #syncClock(): Promise<void> {
    return (this.#clockSync ??= (async () => {
      try {
        const t0 = Date.now();
        const [sec, usec] = await this.#cmd((c) => c.time());
        const t1 = Date.now();
        this.#clock = { offset: Number(sec) * 1000 + Number(usec) / 1000 - (t0 + t1) / 2, at: t1 };
      } finally {
        this.#clockSync = undefined;
      }
    })());
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#listeners.clear();
    this.#sub?.disconnect();
    try {
      if (this.#client.status === "ready") await this.#client.quit();
    } catch (err) {
      log.debug("QUIT failed; dropping the connection", { error: err });
    } finally {
      this.#client.disconnect();
    }
  }
}

/** The bytes the hint would be stored as: null for ABSENT, undefined for no (usable) hint. */
function hintBytes(key: string, expected: unknown): Buffer | null | undefined {
  if (expected === undefined) return undefined;
  if (expected === ABSENT) return null;
  try {
    return Buffer.from(serialise(key, expected), "utf8");
  } catch {
    return undefined; // not JSON: no hint
  }
}

function noop(): void {}

function sha1(data: string | Buffer): string {
  return createHash("sha1").update(data).digest("hex");
}

/** Escapes Redis glob metacharacters so a prefix matches only itself. */
function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, "\\$&");
}

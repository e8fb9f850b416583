/**
 * One ioredis connection of the Redis store, with the failure rules every command follows: no
 * offline queue and a command timeout, so while Redis is down every call fails within
 * `commandTimeoutMs` with "Redis at host:port is unreachable: ..." rather than waiting or being
 * replayed later behind the caller's back; ioredis keeps reconnecting, and the same store works
 * again once Redis is back. Scripts run by SHA (EVALSHA), loaded on first use or after a restart.
 * Commands issued in one turn of the event loop go out in one write (`#cork`): a busy worker's
 * many slots each send a script, and a write per command was a sixth of its CPU.
 */
import { createHash } from "node:crypto";
import type { Duplex } from "node:stream";
import { Redis, type RedisOptions } from "ioredis";
import { StoreClosedError, StoreError } from "../core/errors.ts";
import { ErrorLog } from "./redis-errors.ts";
import type { RedisTarget } from "./redis-url.ts";

/** Keys per MGET (`mget`), so that one huge read does not stall Redis. */
const MGET_CHUNK = 500;

export interface ConnectionOptions {
  /** Upper bound on any one command, and on connecting (default 2000 ms). */
  commandTimeoutMs?: number;
}

export class RedisConnection {
  readonly client: Redis;
  readonly options: RedisOptions;
  readonly errors: ErrorLog;
  readonly timeoutMs: number;
  closed = false;

  constructor(
    readonly target: RedisTarget,
    options: ConnectionOptions,
  ) {
    this.timeoutMs = options.commandTimeoutMs ?? 2000;
    this.errors = new ErrorLog(target.address);
    this.options = {
      host: target.host,
      port: target.port,
      db: target.db,
      username: target.username,
      password: target.password,
      tls: target.tls ? {} : undefined,
      connectionName: "converge",
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      commandTimeout: this.timeoutMs,
      connectTimeout: this.timeoutMs,
      retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 5), 1000),
    };
    this.client = this.errors.watch(new Redis(this.options));
  }

  /** Connects, or fails within about `commandTimeoutMs` with a StoreError saying why. */
  async connect(): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        this.client.connect(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${this.timeoutMs} ms`)), this.timeoutMs + 500);
        }),
      ]);
    } catch (err) {
      this.closed = true;
      this.client.disconnect();
      throw this.fail(err);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Runs a command, turning every failure into a StoreError that says where and why. */
  async cmd<T>(run: (c: Redis) => Promise<T>): Promise<T> {
    if (this.closed) throw this.#closedError();
    this.#cork();
    try {
      return await run(this.client);
    } catch (err) {
      // Cut off by close() (a reply that never came): say so, not "unreachable".
      throw this.closed && !(err instanceof StoreError) ? this.#closedError(err) : this.fail(err);
    }
  }

  /** Runs a script by its SHA-1, loading it on first use (or after Redis restarted and forgot it). */
  eval(script: Script, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    return this.#eval(script, keys, args, false);
  }

  /** `eval` with string replies as Buffers: the raw bytes Redis holds (to hash them exactly, even if not UTF-8). */
  evalBuffer(script: Script, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    return this.#eval(script, keys, args, true);
  }

  #eval(script: Script, keys: readonly string[], args: readonly (string | number)[], raw: boolean): Promise<unknown> {
    return this.cmd(async (c) => {
      const send = (command: "evalsha" | "eval", head: string) =>
        raw
          ? c.callBuffer(command, head, keys.length, ...keys, ...args)
          : c.call(command, head, keys.length, ...keys, ...args);
      try {
        return await send("evalsha", script.sha);
      } catch (err) {
        if (!(err as Error).message?.startsWith("NOSCRIPT")) throw err;
        return send("eval", script.source); // EVAL also caches it
      }
    });
  }

  /** MGET, in chunks of MGET_CHUNK keys sent together; null where a key is absent. */
  async mget(keys: readonly string[]): Promise<(string | null)[]> {
    const chunks: string[][] = [];
    for (let j = 0; j < keys.length; j += MGET_CHUNK) chunks.push(keys.slice(j, j + MGET_CHUNK));
    const replies = await Promise.all(chunks.map((chunk) => this.cmd((c) => c.mget(...chunk))));
    return replies.flat();
  }

  fail(err: unknown): StoreError {
    if (err instanceof StoreError) return err;
    const e = err as Error;
    const at = this.target.address;
    // A reply of the server's own: a database that does not exist, or a refusal in its words.
    const refused = (reply: Error, what: string) =>
      /DB index is out of range/i.test(reply.message)
        ? new StoreError(`Redis at ${at} has no database ${this.target.db} (the number after the port in store_path)`, {
            cause: err,
          })
        : new StoreError(`Redis at ${at} refused ${what}: ${reply.message}`, { cause: err });
    if (e.name === "ReplyError") return refused(e, "a command");
    let cause = e;
    let reason = e.message;
    if (/timed out|no answer within/i.test(reason)) reason = `no reply within ${this.timeoutMs} ms`;
    else if (/enableOfflineQueue|Connection is closed|max retries/i.test(reason)) {
      // The command only saw "not connected"; the connection's own last error says why.
      cause = this.errors.last ?? e;
      reason = this.errors.last
        ? `not connected (${this.errors.last.message})`
        : "the connection was lost; reconnecting";
    }
    if (cause.name === "ReplyError") return refused(cause, "the connection");
    if (/Unknown RESP type|Protocol error/i.test(cause.message))
      reason = "the server there does not speak the Redis protocol";
    if (
      this.target.tls &&
      /no reply|no answer|ETIMEDOUT|ECONNRESET|socket hang up|wrong version|SSL|TLS/i.test(reason)
    ) {
      reason += "; store_path says rediss:// (TLS): is the server really speaking TLS there?";
    }
    return new StoreError(`Redis at ${at} is unreachable: ${reason}`, { cause: err });
  }

  #corked = false;

  /**
   * Holds the socket's writes until the end of this turn of the event loop (setImmediate), so that
   * the turn's commands go out in one write. ioredis's own auto-pipelining does the same at a cost
   * per command (a Pipeline, a tick per reply) that made a lone caller 10 to 25% slower.
   */
  #cork(): void {
    const socket = this.client.stream as (Duplex & { cork?: () => void }) | undefined;
    if (this.#corked || !socket?.cork) return;
    this.#corked = true;
    socket.cork();
    const uncork = () => {
      this.#corked = false;
      socket.uncork();
    };
    setImmediate(uncork);
  }

  #closedError(cause?: unknown): StoreClosedError {
    return new StoreClosedError(`the Redis store at ${this.target.address} is closed`, { cause });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      // QUIT is written after every command issued before it (a corked socket keeps their order).
      if (this.client.status === "ready") await this.client.quit();
    } catch {
      // QUIT failed: the connection is dropped below
    } finally {
      this.client.disconnect();
    }
  }
}

export interface Script {
  source: string;
  sha: string;
}

export function script(source: string): Script {
  return { source, sha: sha1(source) };
}

/** The SHA-1 of a text or of raw bytes, in hex: as Redis's `redis.sha1hex` and script SHAs give it. */
export function sha1(data: string | Buffer): string {
  return createHash("sha1").update(data).digest("hex");
}

/**
 * What opening Redis from a configuration checks beyond the driver, so that a wrong store_path is
 * named as such rather than failing later or, worse, working on the wrong data:
 * - the database exists: ioredis selects it on connect and, when the server refuses (no such
 *   database), only emits an error event and carries on in database 0. One short-lived
 *   connection asks first, for databases other than 0 (which always exists).
 * - a connection that fails says whether TLS may be the cause: a rediss:// URL against a plaintext
 *   server only times out, and a redis:// URL against a TLS server sees a protocol error.
 */
import { ConfigError, StoreError } from "../core/errors.ts";
import { printable } from "../core/text.ts";
import { redactUrl, type RedisTarget } from "../store/redis-url.ts";

/** Throws ConfigError when `target.db` does not exist on the server (a no-op for database 0). */
export async function checkDatabase(url: string, target: RedisTarget, timeoutMs = 2000): Promise<void> {
  if (target.db === 0) return;
  const { Redis } = await import("ioredis");
  const client = new Redis({
    host: target.host,
    port: target.port,
    username: target.username,
    password: target.password,
    tls: target.tls ? {} : undefined,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    retryStrategy: () => null,
  });
  client.on("error", () => {}); // the outcome is the reply to SELECT below
  try {
    await client.connect();
    await client.select(target.db);
  } catch (err) {
    const e = err as Error;
    if (e.name === "ReplyError" && /DB index/i.test(e.message))
      throw new ConfigError(
        `store_path "${redactUrl(url)}" names database ${target.db}, which Redis at ${target.address} does not have ` +
          `(${printable(e.message)}; databases are numbered from 0 to the server's "databases" setting minus one)`,
      );
    // Anything else (unreachable, refused AUTH) is reported by the store's own open.
  } finally {
    client.disconnect();
  }
}

/** The store's connection error, with a word about TLS when the URL's scheme may be the cause. */
export function withTlsHint(err: unknown, url: string, target: RedisTarget): unknown {
  if (!(err instanceof StoreError) || !/unreachable|protocol/i.test(err.message)) return err;
  const hint = target.tls
    ? /ETIMEDOUT|no reply|no answer|timed out|ECONNRESET|wrong version|SSL|TLS/i.test(err.message)
      ? `store_path "${redactUrl(url)}" asks for TLS (rediss://): ` +
        `if the server at ${target.address} does not serve TLS, use redis://`
      : undefined
    : /does not speak the Redis protocol|ECONNRESET|socket hang up/i.test(err.message)
      ? `if the server at ${target.address} serves TLS, use rediss:// in store_path`
      : undefined;
  return hint ? new StoreError(`${err.message}; ${hint}`, { cause: err }) : err;
}

/** `redis://[user:password@]host[:port][/db]` → connection settings, with errors that never show the password. */
import { ConfigError } from "../core/errors.ts";

export const DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0";

export interface RedisTarget {
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
  tls: boolean;
  /** `host:port`, for messages (never the password). */
  address: string;
}

/** The URL with any user info replaced by `***`, safe to print. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^@/]*@/i, "$1***@");
}

export function parseRedisUrl(url: string): RedisTarget {
  const bad = (why: string) =>
    new ConfigError(
      `store_path "${redactUrl(url)}" is not a usable Redis URL: ${why} (expected redis://[user:password@]host[:port][/db])`,
    );
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw bad("it does not parse as a URL");
  }
  if (u.protocol !== "redis:" && u.protocol !== "rediss:")
    throw bad(`the scheme must be redis:// or rediss://, not ${u.protocol}//`);
  const host = u.hostname.replace(/^\[(.*)\]$/, "$1"); // IPv6 literals come bracketed
  if (!host) throw bad("the host is missing");
  const port = u.port === "" ? 6379 : Number(u.port);
  const path = u.pathname.replace(/^\//, "");
  if (path !== "" && !/^\d+$/.test(path)) throw bad(`the database "${path}" must be a number`);
  const db = path === "" ? 0 : Number(path);
  const target: RedisTarget = { host, port, db, tls: u.protocol === "rediss:", address: `${u.hostname}:${port}` };
  if (u.username) target.username = decodeURIComponent(u.username);
  if (u.password) target.password = decodeURIComponent(u.password);
  return target;
}

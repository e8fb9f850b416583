/** `redis://[user:password@]host[:port][/db]` → connection settings, with errors that never show the password. */
import { ConfigError } from "../core/errors.ts";
import { printable } from "../core/text.ts";

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

/** The URL with any user info replaced by `***` and control characters escaped, safe to print. */
export function redactUrl(url: string): string {
  return printable(url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^@/]*@/i, "$1***@"));
}

/** Redis numbers its databases from 0; SELECT takes a signed 32-bit integer. */
const MAX_DB = 2 ** 31 - 1;

export function parseRedisUrl(url: string): RedisTarget {
  const bad = (why: string) =>
    new ConfigError(
      `store_path "${redactUrl(url)}" is not a usable Redis URL: ${why} ` +
        "(expected redis://[user:password@]host[:port][/db])",
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
  if (path !== "" && !/^\d+$/.test(path)) throw bad(`the database "${printable(path)}" must be a number`);
  const db = path === "" ? 0 : Number(path);
  if (db > MAX_DB) throw bad(`the database ${printable(path)} is out of range`);
  // Settings Redis URLs sometimes carry elsewhere (?db=, ?tls=) would be ignored here: refuse them.
  if (u.search) throw bad("query parameters are not supported; give the database as the path (/db)");
  const target: RedisTarget = { host, port, db, tls: u.protocol === "rediss:", address: `${u.hostname}:${port}` };
  const decode = (part: string, what: string) => {
    try {
      return decodeURIComponent(part);
    } catch {
      throw bad(`the ${what} has a malformed %-escape (write a literal % as %25)`);
    }
  };
  if (u.username) target.username = decode(u.username, "user name");
  if (u.password) target.password = decode(u.password, "password");
  return target;
}

/**
 * The store a configuration asks for (keys of the seed manual): `store_backend` + `store_path`
 * (preferred), or the legacy `discovery_store` (`memory`, or a directory for a file store).
 * No store configured at all is a valid answer: the CLI then runs without discovery.
 *
 * This is configuration parsing, so it lives with the CLI's config. Each backend is imported only
 * when it is opened: a process that never opens Redis never loads ioredis.
 */
import { ConfigError } from "../core/errors.ts";
import { logger } from "../observability/log.ts";
import { DEFAULT_REDIS_URL, parseRedisUrl } from "../store/redis-url.ts";
import type { Store } from "../store/store.ts";
import { checkStorePath, expandPath, shown } from "./config.ts";

const log = logger("store");

export const STORE_BACKENDS = ["memory", "file", "sqlite", "redis"] as const;
export type StoreBackend = (typeof STORE_BACKENDS)[number];

export interface StoreConfig {
  store_backend?: unknown;
  store_path?: unknown;
  discovery_store?: unknown;
}

/** What to open, after validation. `location` is a directory, a database file or a Redis URL. */
export type StoreChoice =
  | { backend: "memory" }
  | { backend: "file" | "sqlite"; location: string }
  | { backend: "redis"; location: string };

/**
 * Validates the store keys; undefined when no store is configured. Throws ConfigError for bad
 * values; `warn` hears about keys that are ignored (openStore logs them, once).
 */
export function storeChoice(config: StoreConfig, warn: (message: string) => void = () => {}): StoreChoice | undefined {
  const backend = text(config, "store_backend");
  const path = text(config, "store_path");
  const legacy = text(config, "discovery_store");
  if (backend !== undefined) {
    if (legacy !== undefined) warn(`discovery_store is ignored because store_backend is set (to ${backend})`);
    return fromBackend(backend, path, warn);
  }
  if (path !== undefined)
    warn("store_path is ignored because store_backend is not set; set store_backend to file, sqlite or redis");
  if (legacy === undefined) return undefined;
  return legacy === "memory" ? { backend: "memory" } : { backend: "file", location: expandPath(legacy) };
}

/** Whether the configuration names a store at all (the CLI enables discovery only then). */
export function isStoreConfigured(config: StoreConfig): boolean {
  return storeChoice(config) !== undefined;
}

/**
 * Opens the configured store, or returns undefined when none is configured. ConfigError for bad
 * values, StoreError when it cannot be opened.
 */
export async function openStore(config: StoreConfig): Promise<Store | undefined> {
  const choice = storeChoice(config, (message) => log.warn(message));
  if (!choice) return undefined;
  const store = await openChoice(choice);
  log.debug("store opened", { store: store.description });
  return store;
}

export async function openChoice(choice: StoreChoice): Promise<Store> {
  switch (choice.backend) {
    case "memory":
      return new (await import("../store/memory.ts")).MemoryStore();
    case "file":
      return new (await import("../store/file.ts")).FileStore(choice.location);
    case "sqlite":
      return new (await import("../store/sqlite.ts")).SqliteStore(choice.location, sqliteTestOptions());
    case "redis":
      return openRedis(choice.location);
  }
}

/**
 * Test-only, undocumented on purpose: CONVERGE_TEST_SQLITE_MAX_PAGE_COUNT caps the pages this
 * process's connection may grow the file to (PRAGMA max_page_count), so that end-to-end tests can
 * make real writes fail with SQLite's own "database or disk is full" while small in-place writes
 * (the health probe) still succeed, as on a disk that is full.
 */
function sqliteTestOptions(): { maxPageCount?: number } {
  const pages = Number(process.env.CONVERGE_TEST_SQLITE_MAX_PAGE_COUNT);
  return Number.isSafeInteger(pages) && pages > 0 ? { maxPageCount: pages } : {};
}

async function openRedis(url: string): Promise<Store> {
  const [{ RedisStore }, checks] = await Promise.all([import("../store/redis.ts"), import("./redis-checks.ts")]);
  const target = parseRedisUrl(url);
  let store: Store;
  try {
    store = await RedisStore.open(url);
  } catch (err) {
    throw checks.withTlsHint(err, url, target);
  }
  try {
    await checks.checkDatabase(url, target);
  } catch (err) {
    await store.close();
    throw err;
  }
  return store;
}

function fromBackend(backend: string, path: string | undefined, warn: (message: string) => void): StoreChoice {
  switch (backend) {
    case "memory":
      if (path !== undefined) warn("store_path is ignored by the memory store");
      return { backend };
    case "file":
    case "sqlite":
      checkStorePath(backend, path);
      return { backend, location: expandPath(path!) };
    case "redis": {
      const url = path ?? DEFAULT_REDIS_URL;
      parseRedisUrl(url); // ConfigError now, not a connection error later
      return { backend, location: url };
    }
    default:
      throw new ConfigError(`store_backend must be one of ${STORE_BACKENDS.join(", ")}; got ${shown(backend)}`);
  }
}

/** A string setting, or undefined when unset or empty (an empty environment variable means unset). */
function text(config: StoreConfig, key: keyof StoreConfig): string | undefined {
  const v = config[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw new ConfigError(`${key} must be a string, got ${shown(v)}`);
  const t = v.trim();
  return t === "" ? undefined : t;
}

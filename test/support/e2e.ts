/**
 * The setup every end-to-end file repeats: a temporary directory and, if asked, a private
 * redis-server, started in beforeAll (never at module load, so a run that filters every test out
 * starts nothing and leaves nothing behind) and removed in afterAll after the file's own cleanup
 * (killing the processes its tests started) has run.
 *
 *   const { tmp, redis } = useE2eEnvironment({ prefix: "converge-e2e-x-", redis: true, cleanup: [killAll] });
 *   test("…", () => { join(tmp.path, "x.db"); redis.url; });
 *
 * `tmp` and `redis` are stable objects whose properties read the resources started in beforeAll;
 * reading them before that (at module load, in a describe body) throws.
 */
import { afterAll, beforeAll, setDefaultTimeout } from "bun:test";
import { startRedis, type RedisServer } from "./redis.ts";
import { tempDir } from "./tmp.ts";

export interface E2eOptions {
  /** Prefix of the temporary directory's name. */
  prefix: string;
  /** Start a private redis-server (see ./redis.ts) for the file. */
  redis?: boolean;
  /** More setup for beforeAll, run alongside starting Redis (after the directory exists). */
  before?: () => unknown;
  /** Run in order first thing in afterAll, before Redis stops and the directory goes: e.g. killAll, stopAll. */
  cleanup?: (() => unknown)[];
  /** beforeAll's timeout, for a slow `before` (building the binary). */
  timeoutMs?: number;
}

export interface TempDirView {
  readonly path: string;
}

export function useE2eEnvironment(options: E2eOptions & { redis: true }): { tmp: TempDirView; redis: RedisServer };
export function useE2eEnvironment(options: E2eOptions): { tmp: TempDirView };
export function useE2eEnvironment(options: E2eOptions): { tmp: TempDirView; redis?: RedisServer } {
  // Bun's default is 5 s per test, set per file: too short for several processes on a loaded machine.
  setDefaultTimeout(60_000);
  let dir: ReturnType<typeof tempDir> | undefined;
  let server: RedisServer | undefined;

  beforeAll(async () => {
    dir = tempDir(options.prefix);
    [server] = await Promise.all([options.redis ? startRedis() : undefined, options.before?.()]);
  }, options.timeoutMs);

  afterAll(async () => {
    try {
      for (const step of options.cleanup ?? []) await step();
    } finally {
      try {
        await server?.stop();
      } finally {
        dir?.cleanup();
      }
    }
  });

  const started = <T>(value: T | undefined, what: string): T => {
    if (value === undefined)
      throw new Error(`${what} is started in beforeAll: use it in a test or hook, not at module load`);
    return value;
  };
  const tmp: TempDirView = {
    get path() {
      return started(dir, "the temporary directory").path;
    },
  };
  if (!options.redis) return { tmp };
  const live = () => started(server, "redis-server");
  const redis: RedisServer = {
    get url() {
      return live().url;
    },
    get port() {
      return live().port;
    },
    stop: () => live().stop(),
    restart: () => live().restart(),
    pause: () => live().pause(),
    resume: () => live().resume(),
  };
  return { tmp, redis };
}

import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { withTlsHint } from "../../src/cli/redis-checks.ts";
import { ConfigError, StoreError } from "../../src/core/errors.ts";
import { parseRedisUrl } from "../../src/store/redis-url.ts";
import { FileStore } from "../../src/store/file.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import { isStoreConfigured, openStore, storeChoice } from "../../src/cli/store-config.ts";
import { RedisStore } from "../../src/store/redis.ts";
import { SqliteStore } from "../../src/store/sqlite.ts";
import { startRedis } from "../support/redis.ts";
import { tempDir } from "../support/tmp.ts";

const tmp = tempDir("converge-open-");
afterAll(() => tmp.cleanup());

test("no store keys means no store, so discovery stays off", async () => {
  expect(isStoreConfigured({})).toBe(false);
  expect(isStoreConfigured({ store_backend: "", discovery_store: "" })).toBe(false); // empty env vars mean unset
  expect(await openStore({})).toBeUndefined();
});

test("store_backend + store_path open each backend", async () => {
  const memory = await openStore({ store_backend: "memory" });
  expect(memory).toBeInstanceOf(MemoryStore);
  const file = await openStore({ store_backend: "file", store_path: join(tmp.path, "files") });
  expect(file).toBeInstanceOf(FileStore);
  const sqlite = await openStore({ store_backend: "sqlite", store_path: join(tmp.path, "db", "s.sqlite3") });
  expect(sqlite).toBeInstanceOf(SqliteStore);
  expect(sqlite!.description).toBe(`sqlite ${join(tmp.path, "db", "s.sqlite3")}`);
  for (const s of [memory, file, sqlite]) await s!.close();
});

test("store_backend redis opens the URL in store_path", async () => {
  const server = await startRedis();
  try {
    const store = await openStore({ store_backend: "redis", store_path: server.url });
    expect(store).toBeInstanceOf(RedisStore);
    await store!.put("k", 1);
    expect(await store!.get("k")).toBe(1);
    await store!.close();
  } finally {
    await server.stop();
  }
});

test("redis without store_path means redis://127.0.0.1:6379/0", () => {
  expect(storeChoice({ store_backend: "redis" })).toEqual({ backend: "redis", location: "redis://127.0.0.1:6379/0" });
});

test("legacy discovery_store: memory is the memory store, anything else a file store directory", () => {
  expect(storeChoice({ discovery_store: "memory" })).toEqual({ backend: "memory" });
  expect(storeChoice({ discovery_store: "/var/lib/converge" })).toEqual({
    backend: "file",
    location: "/var/lib/converge",
  });
});

test("store_backend wins over discovery_store, and the ignored key is reported", () => {
  const warnings: string[] = [];
  expect(
    storeChoice({ store_backend: "sqlite", store_path: "/tmp/x.db", discovery_store: "memory" }, (w) =>
      warnings.push(w),
    ),
  ).toEqual({ backend: "sqlite", location: "/tmp/x.db" });
  expect(warnings).toEqual(["discovery_store is ignored because store_backend is set (to sqlite)"]);
});

test("store_path without store_backend is reported as ignored", () => {
  const warnings: string[] = [];
  expect(storeChoice({ store_path: "/tmp/x.db" }, (w) => warnings.push(w))).toBeUndefined();
  expect(warnings[0]).toContain("store_path is ignored because store_backend is not set");
});

test("bad store settings are ConfigErrors that say what to change", () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ store_backend: "file" }, /store_backend file needs store_path \(a directory\)/],
    [{ store_backend: "sqlite" }, /store_backend sqlite needs store_path \(a database file\)/],
    [{ store_backend: "postgres" }, /store_backend must be one of memory, file, sqlite, redis; got "postgres"/],
    [{ store_backend: "redis", store_path: "http://127.0.0.1:6379" }, /scheme must be redis:\/\/ or rediss:\/\//],
    [{ store_backend: "redis", store_path: "not a url" }, /not a usable Redis URL/],
    [{ store_backend: "redis", store_path: "redis://127.0.0.1:6379/zero" }, /database "zero" must be a number/],
    [{ store_backend: 3 }, /store_backend must be a string/],
  ];
  for (const [config, message] of cases) {
    expect(() => storeChoice(config)).toThrow(ConfigError);
    expect(() => storeChoice(config)).toThrow(message);
  }
});

test("a malformed Redis URL never shows its password", () => {
  expect(() => storeChoice({ store_backend: "redis", store_path: "redis://u:hunter2@host:notaport/0" })).toThrow(
    ConfigError,
  );
  expect(() => storeChoice({ store_backend: "redis", store_path: "redis://u:hunter2@host:notaport/0" })).not.toThrow(
    /hunter2/,
  );
});

test("an unreachable Redis at open is one StoreError line within a couple of seconds", async () => {
  const t0 = Date.now();
  const err = await openStore({ store_backend: "redis", store_path: "redis://127.0.0.1:1/0" }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StoreError);
  expect((err as StoreError).exitCode).toBe(1);
  expect((err as Error).message).not.toContain("\n");
  expect(Date.now() - t0).toBeLessThan(2500);
});

test("when a process opens only SQLite, neither ioredis nor the Redis store is ever loaded", async () => {
  const db = join(tmp.path, "lazy.sqlite3");
  const code = `
    const { openStore } = await import(${JSON.stringify(join(import.meta.dir, "../../src/cli/store-config.ts"))});
    const store = await openStore({ store_backend: "sqlite", store_path: ${JSON.stringify(db)} });
    await store.close();
    const loaded = Object.keys(require.cache);
    console.log(JSON.stringify({
      sqlite: loaded.some((k) => k.endsWith("/src/store/sqlite.ts")),
      redis: loaded.filter((k) => /\\/ioredis\\/|\\/src\\/store\\/redis\\.ts$/.test(k)),
    }));`;
  const p = Bun.spawn([process.execPath, "-e", code], { stdout: "pipe", stderr: "pipe" });
  const [out, err, exit] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  expect({ exit, err }).toEqual({ exit: 0, err: "" });
  expect(JSON.parse(out)).toEqual({ sqlite: true, redis: [] });
});

describe("when a Redis store_path is wrong, opening it says so", () => {
  test("a database the server does not have is a ConfigError naming store_path, not database 0", async () => {
    const server = await startRedis();
    try {
      for (const db of [16, 99999]) {
        const url = server.url.replace(/\/0$/, `/${db}`);
        const err = await openStore({ store_backend: "redis", store_path: url }).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(ConfigError);
        expect((err as Error).message).toMatch(
          new RegExp(`^store_path "redis://127\\.0\\.0\\.1:${server.port}/${db}" names database ${db}, which Redis`),
        );
      }
      const last = await openStore({ store_backend: "redis", store_path: server.url.replace(/\/0$/, "/15") });
      expect(last!.description).toBe(`redis 127.0.0.1:${server.port}/15`);
      await last!.close();
    } finally {
      await server.stop();
    }
  });

  test("rediss:// against a plaintext server says TLS may be why it cannot connect", async () => {
    const server = await startRedis();
    try {
      const url = server.url.replace(/^redis:/, "rediss:");
      const err = await openStore({ store_backend: "redis", store_path: url }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(StoreError);
      expect((err as Error).message).toContain(`store_path "${url}" asks for TLS (rediss://)`);
      expect((err as Error).message).toContain("use redis://");
    } finally {
      await server.stop();
    }
  });

  test("redis:// against a server that answers in another protocol suggests rediss://", () => {
    const target = parseRedisUrl("redis://h:1/0");
    const plain = new StoreError("Redis at h:1 is unreachable: the server there does not speak the Redis protocol");
    expect((withTlsHint(plain, "redis://h:1/0", target) as Error).message).toMatch(
      /protocol; if the server at h:1 serves TLS, use rediss:\/\/ in store_path$/,
    );
    const refused = new StoreError("Redis at h:1 is unreachable: connect ECONNREFUSED");
    expect(withTlsHint(refused, "redis://h:1/0", target)).toBe(refused);
  });

  test("a malformed %-escape, a database out of range, a query string or a control character are ConfigErrors", () => {
    const cases: [string, RegExp][] = [
      [
        "redis://:%zz@127.0.0.1/0",
        /^store_path "redis:\/\/\*\*\*@127\.0\.0\.1\/0" .*password has a malformed %-escape/,
      ],
      ["redis://127.0.0.1/4294967296", /the database 4294967296 is out of range/],
      ["redis://127.0.0.1/0?db=3", /query parameters are not supported/],
      ["redis://127.0.0.1/a\u0000b", /^store_path "redis:\/\/127\.0\.0\.1\/a\\u0000b"/],
    ];
    for (const [url, message] of cases) {
      expect(() => storeChoice({ store_backend: "redis", store_path: url })).toThrow(ConfigError);
      expect(() => storeChoice({ store_backend: "redis", store_path: url })).toThrow(message);
    }
  });
});

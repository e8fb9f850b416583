import { afterAll, expect, test } from "bun:test";
import { readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { StoreError } from "../../src/core/errors.ts";
import { FileStore } from "../../src/store/file.ts";
import { fileNameOf } from "../../src/store/file-names.ts";
import { tempDir } from "../support/tmp.ts";
import { storeContract } from "./contract.ts";

storeContract(
  "file",
  async () => {
    const tmp = tempDir("converge-file-store-");
    const dir = join(tmp.path, "store");
    return {
      store: new FileStore(dir),
      peer: async () => new FileStore(dir),
      corrupt: async (key, raw) => writeFileSync(join(dir, fileNameOf(key).name), raw),
      cleanup: tmp.cleanup,
    };
  },
  { shared: true },
);

const tmp = tempDir("converge-file-names-");
afterAll(() => tmp.cleanup());

/** Every file under `dir`, relative paths. */
function walk(dir: string, base = ""): string[] {
  return readdirSync(dir).flatMap((name) => {
    const rel = base ? `${base}/${name}` : name;
    return statSync(join(dir, name)).isDirectory() ? walk(join(dir, name), rel) : [rel];
  });
}

test("no key escapes the store directory, every name fits the file system, and no temp file is left", async () => {
  const root = join(tmp.path, "escape");
  const store = new FileStore(join(root, "store"));
  const keys = [
    "../x",
    "../../escaped",
    "/etc/converge",
    "a/b/c",
    "..",
    ".",
    "a\u0000b",
    "\\..\\win",
    "x".repeat(5000),
    "ü".repeat(300),
  ];
  for (const k of keys) await store.put(k, k);
  await store.indexAdd("../idx", "m");
  await store.notify("../chan");
  const files = walk(root);
  expect(files.every((f) => f.startsWith("store/"))).toBe(true);
  expect(files.every((f) => f.split("/").every((part) => Buffer.byteLength(part) <= 255))).toBe(true);
  expect(files.filter((f) => f.endsWith(".tmp"))).toEqual([]);
  expect(files.filter((f) => !f.startsWith("store/.converge/")).length).toBe(keys.length);
  expect((await store.list("")).sort()).toEqual([...keys].sort());
  await store.close();
});

test("a record file is the value's JSON, readable by people and other tools", async () => {
  const dir = join(tmp.path, "plain");
  const store = new FileStore(dir);
  await store.put("task:1", { state: "pending" });
  expect(JSON.parse(await Bun.file(join(dir, "task%3A1.json")).text())).toEqual({ state: "pending" });
  await store.close();
});

test("a directory that cannot be created is a StoreError naming it", () => {
  const file = join(tmp.path, "a-file");
  writeFileSync(file, "x");
  expect(() => new FileStore(join(file, "sub"))).toThrow(StoreError);
  expect(() => new FileStore(join(file, "sub"))).toThrow(/a-file/);
});

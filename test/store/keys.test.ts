import { expect, test } from "bun:test";
import { decode, encode, fileNameOf, parseFileName } from "../../src/store/file-names.ts";
import { prefixUpperBound, sortKeys } from "../../src/store/keys.ts";

test("the prefix upper bound is the next string in code point order", () => {
  expect(prefixUpperBound("task:")).toBe("task;");
  expect(prefixUpperBound("a\uD7FF")).toBe("a\uE000"); // skips the surrogate block
  expect(prefixUpperBound("a\u{10FFFF}")).toBe("b"); // the last code point has no successor: carry
  expect(prefixUpperBound("\u{10FFFF}\u{10FFFF}")).toBeUndefined();
  expect(prefixUpperBound("x😀")).toBe("x😁");
});

test("keys sort by code point, so astral characters come after U+E000..U+FFFF", () => {
  expect(sortKeys(["😀", "\uFFFF", "a", "\uE000"])).toEqual(["a", "\uE000", "\uFFFF", "😀"]);
});

test("file names escape everything but [a-z0-9._-] and decode back exactly", () => {
  for (const key of ["task:1", "A/b", "../x", "a\u0000b", "ключ", "😀", "%41", "", "x-y_z.w"]) {
    const name = fileNameOf(key).name;
    expect(name).toMatch(/^(?:[a-z0-9._-]|%[0-9A-F]{2})*\.json$/);
    expect(parseFileName(name)).toEqual({ key, hashed: false });
  }
  expect(encode("A")).not.toBe(encode("a")); // distinct on case-insensitive file systems too
  expect(decode(encode("Ünïcode/..%"))).toBe("Ünïcode/..%");
});

test("long keys get a hashed name that fits and differs for keys sharing a long head", () => {
  const a = fileNameOf(`${"k".repeat(500)}a`);
  const b = fileNameOf(`${"k".repeat(500)}b`);
  expect(a.hashed && b.hashed).toBe(true);
  expect(a.name).not.toBe(b.name);
  expect(Buffer.byteLength(a.name)).toBeLessThanOrEqual(200);
  expect(parseFileName(a.name)).toEqual({ head: "k".repeat(120), hashed: true });
  expect(fileNameOf(`a${"%".repeat(100)}`).name).toMatch(/^a(%25)+~[0-9a-f]{40}\.json$/); // never cuts an escape in half
});

test("files that are not records are not mistaken for keys", () => {
  expect(parseFileName("task%3A1.json.123.4.tmp")).toBeUndefined();
  expect(parseFileName(".converge")).toBeUndefined();
  expect(parseFileName("Upper.json")).toBeUndefined();
});

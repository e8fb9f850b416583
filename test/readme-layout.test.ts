/** The README's layout table against the tree, so that the map cannot drift from the territory. */
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { readmeSection } from "./support/readme.ts";

const ROOT = join(import.meta.dir, "..");

/** Each row of the layout table: its directory and the backticked names in its description. */
function rows(): { dir: string; names: string[] }[] {
  const out: { dir: string; names: string[] }[] = [];
  for (const line of readmeSection("Layout").split("\n")) {
    const m = /^\| `([^`]+)` \| (.*) \|$/.exec(line);
    if (m) out.push({ dir: m[1]!, names: [...m[2]!.matchAll(/`([^`]+)`/g)].map((n) => n[1]!) });
  }
  return out;
}

describe("README layout", () => {
  test("when a row names a file or a directory of the tree, it exists there", () => {
    const missing: string[] = [];
    const table = rows();
    expect(table.length).toBeGreaterThan(10);
    for (const { dir, names } of table) {
      for (const name of names) {
        // Files (`name.ts`), folders (`bench/`) and paths from the root (`test/e2e`); other names are
        // identifiers, options and entry points (`sendSigned`, `--set`, `converge/sqlite`).
        const path = /\.(ts|js|yaml)$|\/$/.test(name) ? join(dir, name) : name.startsWith(`${dir}/`) ? name : undefined;
        if (path !== undefined && !existsSync(join(ROOT, path))) missing.push(`${dir}: ${name}`);
      }
    }
    expect(missing).toEqual([]);
  });

  test("when src, test or scripts has a directory or src has an entry point, the layout names it", () => {
    const table = rows();
    const dirs = new Set(table.map((r) => r.dir));
    const expected = ["src", "test", "scripts"];
    for (const e of readdirSync(join(ROOT, "src"), { withFileTypes: true }))
      if (e.isDirectory()) expected.push(`src/${e.name}`);
    expect(expected.filter((d) => !dirs.has(d))).toEqual([]);
    const src = table.find((r) => r.dir === "src")!.names;
    const entries = readdirSync(join(ROOT, "src")).filter((f) => f.endsWith(".ts"));
    expect(entries.filter((f) => !src.includes(f))).toEqual([]);
  });
});

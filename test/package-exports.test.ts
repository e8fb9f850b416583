/**
 * What the package exports (package.json `exports`, built from src/ by scripts/build-package.ts):
 * each subpath has its entry file and declarations, and every error class in the library is exported,
 * so that a user can tell errors apart with instanceof.
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import pkg from "../package.json" with { type: "json" };
import { ENTRIES } from "../scripts/build-package.ts";

const SRC = join(import.meta.dir, "..", "src");
const exportsMap = pkg.exports as Record<string, string | { types: string; default: string }>;
const subpaths = Object.entries(exportsMap).filter(([k]) => k !== "./package.json") as [
  string,
  { types: string; default: string },
][];

describe("the package's exports", () => {
  test("every subpath names the JavaScript and declarations built from one entry file in src/", () => {
    for (const [subpath, target] of subpaths) {
      const name = /^\.\/dist\/lib\/(\w+)\.js$/.exec(target.default)?.[1];
      expect(name, subpath).toBeDefined();
      expect(target.types, subpath).toBe(`./dist/lib/${name}.d.ts`);
      expect(ENTRIES, subpath).toContain(`${name}.ts`);
    }
    expect(subpaths.map(([k]) => k)).toEqual([".", "./sqlite", "./redis", "./stores", "./llm"]);
  });

  test("every error class in the library is exported by one of the entry points", async () => {
    const exported = new Set<unknown>();
    for (const [, target] of subpaths) {
      const mod = await import(join(SRC, target.default.replace(/^\.\/dist\/lib\//, "").replace(/\.js$/, ".ts")));
      for (const v of Object.values(mod)) exported.add(v);
    }
    const missing: string[] = [];
    let errorClasses = 0;
    for (const file of new Bun.Glob("**/*.ts").scanSync({ cwd: SRC })) {
      if (file.startsWith("cli/")) continue; // the command line, not the library
      const mod = await import(join(SRC, file));
      for (const [name, v] of Object.entries(mod)) {
        if (typeof v !== "function" || !(v.prototype instanceof Error)) continue;
        errorClasses++;
        if (!exported.has(v)) missing.push(`${name} (src/${file})`);
      }
    }
    expect(missing).toEqual([]);
    expect(errorClasses).toBeGreaterThan(10);
  });
});

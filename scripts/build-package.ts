/**
 * `bun run build:package` (and `npm pack`, through `prepack`): the library as the npm package ships
 * it, in dist/lib: compiled JavaScript for each entry point (`converge`, `converge/sqlite`,
 * `converge/redis`, `converge/stores`, `converge/llm`, and the CLI behind the `converge` bin), code they share in
 * chunks, dependencies left as imports; and `.d.ts` declarations from tsc (tsconfig.build.json).
 * Drivers stay behind their own entry points: a program that imports only `converge` loads neither
 * ioredis nor bun:sqlite.
 */
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildInfo, buildWithInfo, ROOT } from "./build.ts";

export const PACKAGE_DIR = join(ROOT, "dist", "lib");
/** Entry points, relative to src/. */
export const ENTRIES = ["index.ts", "sqlite.ts", "redis.ts", "stores.ts", "llm.ts", "cli/main.ts"];

export async function buildPackage(): Promise<void> {
  rmSync(PACKAGE_DIR, { recursive: true, force: true });
  await buildWithInfo(
    {
      entrypoints: ENTRIES.map((e) => join(ROOT, "src", e)),
      root: join(ROOT, "src"),
      outdir: PACKAGE_DIR,
      target: "bun",
      format: "esm",
      splitting: true,
      // Dependencies are the consumer's to install (package.json "dependencies"), never bundled.
      packages: "external",
    },
    buildInfo(),
    "package",
  );
  const tsc = Bun.spawnSync([join(ROOT, "node_modules", ".bin", "tsc"), "-p", join(ROOT, "tsconfig.build.json")], {
    cwd: ROOT,
    stdout: "pipe",
    stderr: "pipe",
  });
  if (tsc.exitCode !== 0) throw new Error(`tsc (declarations) failed:\n${tsc.stdout}${tsc.stderr}`);
  rewriteDeclarationImports(PACKAGE_DIR);
}

/**
 * tsc keeps our `./x.ts` import specifiers in the declarations it emits; a consumer's tsc (with
 * nodenext or bundler resolution, and without allowImportingTsExtensions) wants `./x.js`, which it
 * maps to `./x.d.ts`. Only relative specifiers in import/export clauses and `import("…")` types change.
 */
function rewriteDeclarationImports(dir: string): void {
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith(".d.ts")) continue;
    const file = join(entry.parentPath, entry.name);
    const text = readFileSync(file, "utf8");
    const fixed = text.replace(/((?:from|import)\s*\(?\s*["'])(\.\.?\/[^"']*?)\.ts(["'])/g, "$1$2.js$3");
    if (fixed !== text) writeFileSync(file, fixed);
  }
}

if (import.meta.main) {
  const t0 = performance.now();
  try {
    await buildPackage();
    console.log(`built the package in ${PACKAGE_DIR} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  } catch (err) {
    console.error(`build:package failed: ${(err as Error).message}`);
    process.exitCode = 1;
  }
}

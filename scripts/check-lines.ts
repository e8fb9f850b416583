/**
 * No line in src over 120 characters, strings and comments included (Biome's formatter wraps code
 * at 120 but leaves long strings and comments as they are). Prints `file:line: N characters` for
 * each offender and exits 1 when there is one; `.ci/run` and `bun run check` run it.
 *
 *   bun scripts/check-lines.ts [dir or file ...]   (default: src)
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

const MAX = 120;

function* files(path: string): Generator<string> {
  if (!statSync(path).isDirectory()) return yield path;
  for (const entry of readdirSync(path, { recursive: true, encoding: "utf8" }).sort()) {
    const file = join(path, entry);
    if (/\.(ts|js|mjs|cjs)$/.test(file) && statSync(file).isFile()) yield file;
  }
}

let offenders = 0;
for (const root of process.argv.length > 2 ? process.argv.slice(2) : ["src"]) {
  for (const file of files(root)) {
    readFileSync(file, "utf8")
      .split("\n")
      .forEach((line, i) => {
        // Characters as a reader counts them: code points, not UTF-16 units.
        const length = [...line].length;
        if (length <= MAX) return;
        offenders++;
        console.log(`${file}:${i + 1}: ${length} characters (at most ${MAX})`);
      });
  }
}
if (offenders > 0) {
  console.log(`${offenders} line${offenders === 1 ? "" : "s"} over ${MAX} characters`);
  process.exitCode = 1;
}

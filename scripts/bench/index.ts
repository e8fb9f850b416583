/**
 * `bun run bench [filter]`: runs every scripts/bench/*.bench.ts (or those whose name contains
 * the filter), one process each so that one benchmark's heap and timers never skew another's.
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";

const filter = process.argv[2] ?? "";
const dir = import.meta.dir;
const files = readdirSync(dir)
  .filter((f) => f.endsWith(".bench.ts") && f.includes(filter))
  .sort();
// The exit code is set, never forced with process.exit(): that could cut output still on its way
// into a pipe. Nothing is left running once the last benchmark has exited, so the process ends.
if (files.length === 0) {
  console.error(`no benchmark matches "${filter}"`);
  process.exitCode = 2;
} else {
  console.log(
    `converge benchmarks — ${new Date().toISOString()}, Bun ${Bun.version}, ${navigator.hardwareConcurrency} cores`,
  );
  let failed = 0;
  for (const f of files) {
    console.log(`\n## ${f.replace(".bench.ts", "")}`);
    const p = Bun.spawn([process.execPath, join(dir, f)], { stdout: "inherit", stderr: "inherit" });
    if ((await p.exited) !== 0) {
      failed++;
      console.log(`!! ${f} failed with exit code ${p.exitCode}`);
    }
  }
  process.exitCode = failed ? 1 : 0;
}

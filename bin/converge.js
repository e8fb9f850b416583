#!/usr/bin/env node
// The `converge` command of the npm package. converge runs on Bun, but a package manager may start
// this file with Node (npm and npx do), or Bun may be installed without being on the PATH. So this
// launcher, plain JavaScript that Node and Bun both run, finds a Bun (the one running it; the `bun`
// npm package next to converge; `bun` on the PATH; ~/.bun/bin/bun, where Bun's installer puts it),
// runs the compiled CLI with it, and exits with its exit code. Without one it says what to install.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { constants, homedir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const cli = fileURLToPath(new URL("../dist/lib/cli/main.js", import.meta.url));
const exe = process.platform === "win32" ? "bun.exe" : "bun";

function findBun() {
  if (process.versions.bun) return process.execPath;
  try {
    // The npm package keeps its binary in bin/bun.exe on every platform (a placeholder until its postinstall ran).
    const bin = join(dirname(createRequire(import.meta.url).resolve("bun/package.json")), "bin", "bun.exe");
    if (existsSync(bin)) return bin;
  } catch {
    // not installed
  }
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir && existsSync(join(dir, exe))) return join(dir, exe);
  }
  const installed = join(process.env.BUN_INSTALL ?? join(homedir(), ".bun"), "bin", exe);
  return existsSync(installed) ? installed : undefined;
}

const bun = findBun();
if (!bun) {
  process.stderr.write(
    "converge: needs Bun 1.4.5 or newer, and none was found (not on the PATH, not in ~/.bun/bin, no `bun` npm package);" +
      " install it with `npm install bun` or from https://bun.sh, or use the standalone converge binary, which needs nothing\n",
  );
  process.exitCode = 127;
} else {
  const child = spawn(bun, [cli, ...process.argv.slice(2)], { stdio: "inherit" });
  // Signals are passed on, as `bun run` and `npm exec` do: a signal sent to this process alone (kill PID, a
  // supervisor) must reach the CLI. Ctrl+C signals the whole process group, so the CLI may get it twice;
  // it takes one press as one stop (DESIGN.md, the command line).
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
    process.on(signal, () => {
      child.kill(signal);
    });
  }
  child.on("error", (err) => {
    process.stderr.write(`converge: could not start ${bun}: ${err.message}\n`);
    process.exitCode = 127;
  });
  child.on("exit", (code, signal) => {
    // Killed by a signal: exit as a shell reports it, 128 + the signal's number.
    process.exitCode = code ?? 128 + (constants.signals[signal] ?? 0);
  });
}

/**
 * What `converge --version` prints: the version, the git commit it was built from, and the target.
 * scripts/build.ts and scripts/build-package.ts set the three constants below with `define` when they
 * build; from source (`bun run converge`) they are undefined, so the version comes from package.json,
 * the commit from git, and the target says "source".
 */
import { join } from "node:path";
import pkg from "../../package.json" with { type: "json" };

declare const CONVERGE_VERSION: string | undefined;
declare const CONVERGE_COMMIT: string | undefined;
declare const CONVERGE_TARGET: string | undefined;

/** The short commit of the checkout at `dir` with "-dirty" when tracked files changed, or "unknown" without git. */
export function gitCommit(dir: string): string {
  const git = (...args: string[]) => {
    try {
      const p = Bun.spawnSync(["git", "-C", dir, ...args], { stdout: "pipe", stderr: "ignore" });
      return p.exitCode === 0 ? p.stdout.toString().trim() : undefined;
    } catch {
      return undefined; // no git on PATH
    }
  };
  const head = git("rev-parse", "--short=12", "HEAD");
  if (!head) return "unknown";
  return git("status", "--porcelain", "--untracked-files=no") ? `${head}-dirty` : head;
}

/**
 * e.g. `converge 0.1.0 (commit 1a2b3c4d5e6f, linux-x64, bun 1.4.5)` for a binary; the source and the
 * npm package run on whatever Bun and platform they find, so they name those:
 * `converge 0.1.0 (commit 1a2b3c4d5e6f, source, bun 1.4.5 on linux-x64)`.
 */
export function versionLine(): string {
  const version = typeof CONVERGE_VERSION === "string" ? CONVERGE_VERSION : pkg.version;
  const commit = typeof CONVERGE_COMMIT === "string" ? CONVERGE_COMMIT : gitCommit(join(import.meta.dir, "..", ".."));
  const target = typeof CONVERGE_TARGET === "string" ? CONVERGE_TARGET : "source";
  const binary = target !== "source" && target !== "package";
  const bun = binary ? `bun ${Bun.version}` : `bun ${Bun.version} on ${platformName()}-${process.arch}`;
  return `converge ${version} (commit ${commit}, ${target}, ${bun})`;
}

/** The platform as release targets name it: linux, darwin, windows. */
export function platformName(): string {
  return process.platform === "win32" ? "windows" : process.platform;
}

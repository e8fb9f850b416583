/**
 * `bun run build`: compiles the `converge` command into one standalone binary for this machine,
 * dist/converge. `compileBinary` is the one way a binary is built: scripts/release.ts calls it for
 * every release target.
 *
 * A binary must not read `.env`, `bunfig.toml`, `package.json` or `tsconfig.json` from the user's
 * working directory, so that a stray file there cannot change its behaviour. `converge --version`
 * says what it was built from: the version, the commit and the target are compiled in (`define`).
 */
import { join } from "node:path";
import pkg from "../package.json" with { type: "json" };
import { gitCommit, platformName } from "../src/cli/build-info.ts";

export const ROOT = join(import.meta.dir, "..");

/** This machine as release targets name it, e.g. linux-x64. */
export const NATIVE_TARGET = `${platformName()}-${process.arch}`;

export interface BuildInfo {
  version: string;
  commit: string;
}

/** The version in package.json and the commit of the checkout (with -dirty when tracked files changed). */
export function buildInfo(): BuildInfo {
  return { version: pkg.version, commit: gitCommit(ROOT) };
}

/**
 * Bun.build with what `converge --version` says compiled in (`define`, read by src/cli/build-info.ts):
 * the version, the commit and `target`. Throws with the build's messages when it fails.
 */
export async function buildWithInfo(config: Bun.BuildConfig, info: BuildInfo, target: string): Promise<void> {
  const result = await Bun.build({
    ...config,
    define: {
      CONVERGE_VERSION: JSON.stringify(info.version),
      CONVERGE_COMMIT: JSON.stringify(info.commit),
      CONVERGE_TARGET: JSON.stringify(target),
    },
    throw: false,
  });
  if (!result.success) throw new Error(result.logs.map((l) => String(l.message ?? l)).join("; "));
}

export interface BinaryOptions {
  outfile: string;
  /** A release target (linux-x64, darwin-arm64, windows-x64, ...); omitted: this machine, with the running Bun. */
  target?: string;
  info?: BuildInfo;
}

export interface Binary {
  outfile: string;
  target: string;
  size: number;
  seconds: number;
}

/**
 * Compiles src/cli/main.ts for `target`. Cross-compiling fetches that target's Bun runtime from the
 * npm registry (Bun caches it). Throws when the target cannot be built.
 */
export async function compileBinary(options: BinaryOptions): Promise<Binary> {
  const target = options.target ?? NATIVE_TARGET;
  const info = options.info ?? buildInfo();
  const t0 = performance.now();
  await buildWithInfo(
    {
      entrypoints: [join(ROOT, "src", "cli", "main.ts")],
      compile: {
        outfile: options.outfile,
        ...(options.target ? { target: `bun-${options.target}` as Bun.Build.CompileTarget } : {}),
        autoloadDotenv: false,
        autoloadBunfig: false,
        autoloadPackageJson: false,
        autoloadTsconfig: false,
      },
      minify: true,
      // Precompiled bytecode: most of the binary's startup was parsing its bundle (--help ~28 → ~9 ms CPU).
      // Bytecode is architecture-independent, so every target gets it.
      bytecode: true,
    },
    info,
    target,
  );
  return {
    outfile: options.outfile,
    target,
    size: Bun.file(options.outfile).size,
    seconds: (performance.now() - t0) / 1000,
  };
}

export function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

if (import.meta.main) {
  try {
    const b = await compileBinary({ outfile: join(ROOT, "dist", "converge") });
    console.log(`built ${b.outfile} (${b.target}, ${mib(b.size)}) in ${b.seconds.toFixed(1)} s`);
  } catch (err) {
    console.error(`build failed: ${(err as Error).message}`);
    process.exitCode = 1;
  }
}

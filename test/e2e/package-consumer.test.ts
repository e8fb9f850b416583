/**
 * End to end: the npm package as a separate Bun project gets it. `npm pack` (whose prepack builds
 * dist/lib), then a consumer project installs the tarball, type-checks a program that implements a
 * Store, a Transport and a decision handler (fixtures/package-consumer/consumer.ts) and the README's
 * two library programs under strict settings, and runs them; the package's `converge` command runs
 * with and without a Bun to find.
 *
 * Nothing is downloaded: the consumer's lockfile is this repository's package-lock.json cut down to
 * what the package needs (the versions every other test runs with), and `npm ci --offline` takes each
 * tarball from the local npm cache, which `npm install` / `npm ci` in this checkout filled.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import pkg from "../../package.json" with { type: "json" };
import lock from "../../package-lock.json" with { type: "json" };
import { outputOf, type RunResult, stopAll } from "../support/cli.ts";
import { readmePrograms } from "../support/readme.ts";
import { tempDir } from "../support/tmp.ts";

const ROOT = join(import.meta.dir, "..", "..");
const tmp = tempDir("converge-package-");
const app = join(tmp.path, "app");
const tarball = `converge-${pkg.version}.tgz`;
const programs = readmePrograms("The library");
/** Each test spawns tsc, bun or the launcher; under load on 2 cores that can take seconds. */
const SLOW = 30_000;

async function run(cmd: string[], options: { cwd?: string; env?: Record<string, string> } = {}): Promise<RunResult> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env))
    if (v !== undefined && !/^(CONVERGE_|NODE_PATH$)/.test(k)) env[k] = v;
  const p = Bun.spawn(cmd, {
    cwd: options.cwd ?? app,
    env: { ...env, NO_COLOR: "1", ...options.env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  return outputOf(p, 60_000);
}

function ok(r: RunResult, what: string): RunResult {
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}):\n${r.stdout}${r.stderr}`);
  return r;
}

type LockEntry = {
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  dev?: boolean;
};
const packages = lock.packages as unknown as Record<string, LockEntry>;

/** The lockfile path `name` resolves to from the package at `from`, as Node looks up node_modules. */
function resolveIn(from: string, name: string): string | undefined {
  for (let base = from; ; base = base.slice(0, Math.max(0, base.lastIndexOf("/node_modules/")))) {
    const key = `${base ? `${base}/` : ""}node_modules/${name}`;
    if (packages[key]) return key;
    if (!base) return undefined;
  }
}

/** The consumer's package-lock.json: converge from the tarball, and the closure of what it and the type-checker need. */
function consumerLock(devDependencies: Record<string, string>): object {
  const kept: Record<string, LockEntry> = {};
  const walk = (key: string | undefined, dev: boolean) => {
    if (!key || kept[key]) return;
    const entry = packages[key]!;
    kept[key] = { ...entry, dev: dev || undefined };
    for (const deps of [entry.dependencies, entry.optionalDependencies, entry.peerDependencies])
      for (const name of Object.keys(deps ?? {})) walk(resolveIn(key, name), dev);
  };
  for (const name of Object.keys(pkg.dependencies)) walk(resolveIn("", name), false);
  for (const name of Object.keys(devDependencies)) walk(resolveIn("", name), true);
  const { name, version, license, dependencies, bin, engines } = pkg;
  return {
    name: "app",
    lockfileVersion: 3,
    requires: true,
    packages: {
      "": { name: "app", dependencies: { converge: `file:${tarball}` }, devDependencies },
      "node_modules/converge": { name, version, resolved: `file:${tarball}`, license, dependencies, bin, engines },
      ...kept,
    },
  };
}

const strict = {
  target: "ESNext",
  lib: ["ESNext"],
  types: ["bun"],
  strict: true,
  noUncheckedIndexedAccess: true,
  noImplicitOverride: true,
  exactOptionalPropertyTypes: false,
  verbatimModuleSyntax: true,
  noEmit: true,
  skipLibCheck: false,
};

beforeAll(async () => {
  mkdirSync(app);
  const packed = ok(await run(["npm", "pack", "--silent", "--pack-destination", app], { cwd: ROOT }), "npm pack");
  expect(packed.stdout.trim().split("\n").at(-1)).toBe(tarball);
  const devDependencies = {
    typescript: pkg.devDependencies.typescript,
    "@types/bun": pkg.devDependencies["@types/bun"],
  };
  writeFileSync(
    join(app, "package.json"),
    JSON.stringify({
      name: "app",
      private: true,
      type: "module",
      dependencies: { converge: `file:${tarball}` },
      devDependencies,
    }),
  );
  writeFileSync(join(app, "package-lock.json"), JSON.stringify(consumerLock(devDependencies)));
  const installed = await run(["npm", "ci", "--offline", "--no-audit", "--no-fund", "--loglevel=error"]);
  if (installed.code !== 0)
    throw new Error(
      `npm ci --offline in the consumer project failed; it installs from the local npm cache, so run \`npm ci\` in this checkout first:\n${installed.stderr}`,
    );
  // Two consumers' settings: Bun's own (bundler resolution), and Node's ESM rules (nodenext).
  const files = ["consumer.ts", ...programs.keys()];
  writeFileSync(
    join(app, "tsconfig.json"),
    JSON.stringify({ compilerOptions: { ...strict, module: "Preserve", moduleResolution: "bundler" }, files }),
  );
  writeFileSync(
    join(app, "tsconfig.node.json"),
    JSON.stringify({ compilerOptions: { ...strict, module: "NodeNext", moduleResolution: "NodeNext" }, files }),
  );
  copyFileSync(join(import.meta.dir, "fixtures", "package-consumer", "consumer.ts"), join(app, "consumer.ts"));
  for (const [file, code] of programs) writeFileSync(join(app, file), code);
}, 120_000);

afterAll(async () => {
  await stopAll();
  tmp.cleanup();
});

const tsc = () => join(app, "node_modules", ".bin", "tsc");

describe("the npm package in a consumer project", () => {
  test("when packed, it holds only dist/lib, the launcher, README, LICENSE and package.json", () => {
    const dir = join(app, "node_modules", "converge");
    const files = readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => relative(dir, join(e.parentPath, e.name)));
    expect(
      files.filter((f) => !/^(dist\/lib\/.+\.(js|d\.ts)|bin\/converge\.js|README\.md|LICENSE|package\.json)$/.test(f)),
    ).toEqual([]);
    for (const entry of ["index", "sqlite", "redis", "stores"]) {
      expect(files).toContain(`dist/lib/${entry}.js`);
      expect(files).toContain(`dist/lib/${entry}.d.ts`);
    }
  });

  test("the README has the two library programs the tests run", () => {
    expect([...programs.keys()]).toEqual(["two-agents.ts", "producer-worker.ts"]);
  });

  for (const config of ["tsconfig.json", "tsconfig.node.json"]) {
    test(
      `under strict settings (${config}), tsc accepts the consumer program and the README's programs`,
      async () => {
        const r = await run([tsc(), "--noEmit", "-p", config]);
        expect({ code: r.code, out: r.stdout + r.stderr }).toEqual({ code: 0, out: "" });
      },
      SLOW,
    );
  }

  test(
    "the package's types are real: tsc refuses a program that misuses them",
    async () => {
      writeFileSync(
        join(app, "wrong.ts"),
        'import { MemoryStore, TaskManager } from "converge";\n' +
          "const tasks = new TaskManager(new MemoryStore());\n" +
          "await tasks.submit({ inputs: 42 });\n" +
          'const n: number = (await tasks.get("t"))!.objective;\n',
      );
      writeFileSync(
        join(app, "tsconfig.wrong.json"),
        JSON.stringify({
          compilerOptions: { ...strict, module: "Preserve", moduleResolution: "bundler", skipLibCheck: true },
          files: ["wrong.ts"],
        }),
      );
      const r = await run([tsc(), "--noEmit", "-p", "tsconfig.wrong.json"]);
      expect(r.code).not.toBe(0);
      expect(r.stdout).toContain("wrong.ts(3,");
      expect(r.stdout).toContain("wrong.ts(4,");
    },
    SLOW,
  );

  test(
    "the consumer program: two agents exchange a signed message, a third claims and reports a task",
    async () => {
      const r = ok(await run([process.execPath, "consumer.ts"]), "bun consumer.ts");
      expect(JSON.parse(r.stdout)).toEqual({
        said: "listener noted: hello from the package",
        signedByGreeter: true,
        task: { state: "completed", result: { doubled: 42 }, assignedTo: true },
        storeWrites: true,
        errorsAreConvergeErrors: true,
      });
    },
    SLOW,
  );

  test(
    "the README's two-agents.ts, run as written, gets a reply whose signature verifies",
    async () => {
      const r = ok(await run([process.execPath, "two-agents.ts"]), "bun two-agents.ts");
      expect(r.stdout).toMatch(/^reply \{"echo":"hello"\} from [0-9a-f]{12}, signature valid: true\n$/);
    },
    SLOW,
  );

  test(
    "the README's producer-worker.ts, run as written, gets every task done by the worker",
    async () => {
      const r = ok(await run([process.execPath, "producer-worker.ts"]), "bun producer-worker.ts");
      expect(r.stdout).toBe(
        [
          '1 doubled: {"doubled":2} (completed)',
          '2 doubled: {"doubled":4} (completed)',
          '3 doubled: {"doubled":6} (completed)',
          "",
        ].join("\n"),
      );
    },
    SLOW,
  );

  test(
    "importing converge loads no database driver; converge/redis and converge/sqlite load theirs",
    async () => {
      // Static imports reachable from each entry point of the installed package (dynamic imports load only when called).
      const lib = join(app, "node_modules", "converge", "dist", "lib");
      const transpiler = new Bun.Transpiler({ loader: "js" });
      const reachable = async (entry: string) => {
        const seen = new Set<string>();
        const external = new Set<string>();
        const visit = async (file: string) => {
          if (seen.has(file)) return;
          seen.add(file);
          for (const i of transpiler.scanImports(await Bun.file(file).text())) {
            if (i.kind !== "import-statement") continue;
            if (i.path.startsWith(".")) await visit(join(dirname(file), i.path));
            else external.add(i.path);
          }
        };
        await visit(join(lib, entry));
        return external;
      };
      const main = await reachable("index.js");
      expect(main.has("ioredis")).toBe(false);
      expect(main.has("bun:sqlite")).toBe(false);
      expect((await reachable("redis.js")).has("ioredis")).toBe(true);
      expect((await reachable("sqlite.js")).has("bun:sqlite")).toBe(true);
      // And at run time: a process that imports converge has no ioredis module loaded.
      const loaded = (entry: string) =>
        `await import("${entry}"); console.log(Object.keys(require.cache).some((k) => /[\\\\/]ioredis[\\\\/]/.test(k)))`;
      expect((await run([process.execPath, "-e", loaded("converge")])).stdout.trim()).toBe("false");
      expect((await run([process.execPath, "-e", loaded("converge/redis")])).stdout.trim()).toBe("true");
    },
    SLOW,
  );

  test(
    "the package's converge command runs the CLI with the Bun it finds, or says what to install",
    async () => {
      const node = Bun.which("node");
      if (!node) throw new Error("node is not on the PATH: this test runs the launcher as npm would, with Node");
      const nodeOnly = join(tmp.path, "node-only");
      const withBun = join(tmp.path, "with-bun");
      mkdirSync(nodeOnly);
      mkdirSync(withBun);
      symlinkSync(node, join(nodeOnly, "node"));
      symlinkSync(process.execPath, join(withBun, "bun"));
      const bin = join(app, "node_modules", ".bin", "converge");
      const home = { HOME: join(tmp.path, "home"), BUN_INSTALL: join(tmp.path, "home", ".bun") };

      const found = await run([bin, "--version"], { env: { ...home, PATH: `${nodeOnly}:${withBun}` } });
      expect(found).toMatchObject({ code: 0, stderr: "" });
      expect(found.stdout).toMatch(
        new RegExp(
          `^converge ${pkg.version.replaceAll(".", "\\.")} \\(commit \\S+, package, bun ${Bun.version} on \\S+\\)\\n$`,
        ),
      );

      const missing = await run([bin, "--version"], { env: { ...home, PATH: nodeOnly } });
      expect(missing.code).toBe(127);
      expect(missing.stdout).toBe("");
      expect(missing.stderr).toStartWith("converge: needs Bun 1.4.5 or newer, and none was found");
      expect(missing.stderr.trim().split("\n")).toHaveLength(1);
    },
    SLOW,
  );

  test(
    "when the package's converge command gets SIGINT, the CLI stops cleanly and the command exits 0",
    async () => {
      const bin = join(app, "node_modules", ".bin", "converge");
      const p = Bun.spawn([bin, "run"], { cwd: app, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
      try {
        const decoder = new TextDecoder();
        let out = "";
        for await (const chunk of p.stdout) {
          const running = out.includes("running, press Ctrl+C to stop");
          out += decoder.decode(chunk, { stream: true });
          if (!running && out.includes("running, press Ctrl+C to stop")) p.kill("SIGINT");
        }
        expect(await p.exited).toBe(0);
        expect(out).toMatch(/^stopped 1 agent after \d+\.\d s: /m);
      } finally {
        p.kill("SIGKILL"); // a no-op once it has exited
      }
    },
    SLOW,
  );
});

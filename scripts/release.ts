/**
 * `bun run release`: the binaries of a release page, dist/release/converge-<version>-<target>
 * (`.exe` for Windows) for every target below, built by the same `compileBinary` as `bun run build`,
 * plus SHA256SUMS in the format `sha256sum -c` reads. A target that cannot be built (its Bun runtime
 * cannot be fetched, say) is reported in one line and the others are still built. Then every binary's
 * header must match its target (format and architecture), and the one for this machine must print
 * its version and pass test/e2e/cli-binary.test.ts (the CLI as the source behaves, the seed manual's
 * example configs), with nothing on its PATH. Exit code 1 when a target is missing or a check fails.
 */
import { mkdirSync, rmSync } from "node:fs";
import { basename, join } from "node:path";
import { type Binary, buildInfo, compileBinary, mib, NATIVE_TARGET, ROOT } from "./build.ts";
import { expectedExecutable, readExecutable } from "./executable-format.ts";

export const TARGETS = [
  "linux-x64",
  // Since Bun 1.3 the x64 runtime selects AVX2 code paths at run time, so -baseline fetches the same
  // runtime; the name stays because it is what users of CPUs without AVX2 look for.
  "linux-x64-baseline",
  "linux-arm64",
  "darwin-arm64",
  "darwin-x64",
  "windows-x64",
];

const dir = join(ROOT, "dist", "release");
const info = buildInfo();
const fileName = (target: string) => `converge-${info.version}-${target}${target.startsWith("windows") ? ".exe" : ""}`;

rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
console.log(`converge ${info.version}, commit ${info.commit}, into ${dir}`);

const built: Binary[] = [];
let problems = 0;
for (const target of TARGETS) {
  try {
    const b = await compileBinary({ outfile: join(dir, fileName(target)), target, info });
    const found = await readExecutable(b.outfile);
    const want = expectedExecutable(target);
    const ok = found.format === want.format && found.arch === want.arch;
    console.log(
      `${ok ? "built" : "WRONG"} ${basename(b.outfile)}: ${found.format} ${found.arch}, ${mib(b.size)}, ${b.seconds.toFixed(1)} s` +
        (ok ? "" : ` (expected ${want.format} ${want.arch})`),
    );
    if (ok) built.push(b);
    else problems++;
  } catch (err) {
    problems++;
    const reason = (err as Error).message.split("\n")[0];
    console.log(`not built: ${fileName(target)}: ${reason}`);
  }
}

// SHA256SUMS, as `sha256sum` writes it: "<hex>  <file name>", one line per file, sorted by name.
const sums: string[] = [];
for (const b of built.sort((x, y) => (x.outfile < y.outfile ? -1 : 1))) {
  const hash = new Bun.CryptoHasher("sha256");
  for await (const chunk of Bun.file(b.outfile).stream()) hash.update(chunk);
  sums.push(`${hash.digest("hex")}  ${basename(b.outfile)}\n`);
}
await Bun.write(join(dir, "SHA256SUMS"), sums.join(""));
console.log(`wrote SHA256SUMS (${sums.length} file${sums.length === 1 ? "" : "s"})`);

// The binary for this machine must run on its own: no Bun or Node on its PATH.
const native = built.find((b) => b.target === NATIVE_TARGET);
if (native) {
  const p = Bun.spawnSync([native.outfile, "--version"], { env: { PATH: "" }, stdout: "pipe", stderr: "pipe" });
  const out = p.stdout.toString().trim();
  const expected = `converge ${info.version} (commit ${info.commit}, ${NATIVE_TARGET}, bun `;
  if (p.exitCode === 0 && out.startsWith(expected)) console.log(`ran ${basename(native.outfile)} --version: ${out}`);
  else {
    problems++;
    console.log(`${basename(native.outfile)} --version failed (exit ${p.exitCode}): ${out}${p.stderr.toString()}`);
  }
  const tests = Bun.spawnSync([process.execPath, "test", "test/e2e/cli-binary.test.ts"], {
    cwd: ROOT,
    env: { ...process.env, CONVERGE_TEST_BINARY: native.outfile },
    stdout: "pipe",
    stderr: "pipe",
  });
  const summary = `${tests.stderr}`
    .match(/^\s*\d+ pass\n\s*\d+ fail/m)?.[0]
    .replace(/\s+/g, " ")
    .trim();
  if (tests.exitCode === 0) console.log(`test/e2e/cli-binary.test.ts on ${basename(native.outfile)}: ${summary}`);
  else {
    problems++;
    console.log(`test/e2e/cli-binary.test.ts failed on ${basename(native.outfile)}:\n${tests.stdout}${tests.stderr}`);
  }
} else console.log(`no binary for this machine (${NATIVE_TARGET}) among the targets, so none was run`);

console.log(`${built.length} of ${TARGETS.length} targets built${problems ? `, ${problems} problem(s)` : ""}`);
process.exitCode = problems ? 1 : 0;

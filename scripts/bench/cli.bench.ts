/**
 * The compiled `dist/converge` (built first when missing or older than the sources): wall time of
 * `--help`, time from launch to "running" with 1 and 100 agents, and resident memory (VmRSS) while
 * idle with 1, 100 and 1,000 agents. Aims: --help < 50 ms, running within 150 ms for one agent,
 * < 60 MB idle for one agent. Each figure is the median of N fresh processes. Wall times suffer
 * when the machine is busy, so each comes with the CPU time the process used (all its threads),
 * which does not.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { freePort } from "../../test/support/cli.ts";
import { tempDir } from "../../test/support/tmp.ts";
import { percentile, report, rssMiB } from "./harness.ts";

const ROOT = join(import.meta.dir, "..", "..");
const BINARY = join(ROOT, "dist", "converge");

function newestSource(): number {
  let newest = 0;
  for (const f of new Bun.Glob("src/**/*.ts").scanSync({ cwd: ROOT }))
    newest = Math.max(newest, statSync(join(ROOT, f)).mtimeMs);
  return newest;
}

if (!existsSync(BINARY) || statSync(BINARY).mtimeMs < newestSource()) {
  const p = Bun.spawnSync([process.execPath, join(ROOT, "scripts", "build.ts")], {
    cwd: ROOT,
    stdout: "inherit",
    stderr: "inherit",
  });
  if (p.exitCode !== 0) throw new Error("bun scripts/build.ts failed");
}

const tmp = tempDir("converge-bench-cli-");
// No CONVERGE_* from the host; an empty PATH, as on a machine without Bun.
const baseEnv: Record<string, string> = { HOME: tmp.path, PATH: join(tmp.path, "no-bin"), NO_COLOR: "1" };
const median = (xs: number[]) =>
  percentile(
    [...xs].sort((a, b) => a - b),
    50,
  );
const spread = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return `min ${s[0]!.toFixed(1)}, p90 ${percentile(s, 90).toFixed(1)}`;
};

/** CPU time used so far by every thread of a live process, in ms (from /proc/<pid>/task/<tid>/schedstat, ns). */
function cpuMs(pid: number): number {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
    } catch {
      // the thread ended meanwhile
    }
  }
  return ns / 1e6;
}

/** Starts `dist/converge run`, resolves when stdout says "running", with ms since spawn and CPU ms used by then. */
async function launch(
  env: Record<string, string>,
): Promise<{ ms: number; cpu: number; proc: Bun.Subprocess<"ignore", "pipe", "pipe"> }> {
  const t0 = performance.now();
  const proc = Bun.spawn([BINARY, "run"], {
    env: { ...baseEnv, ...env },
    cwd: tmp.path,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const decoder = new TextDecoder();
  let out = "";
  for await (const chunk of proc.stdout) {
    out += decoder.decode(chunk, { stream: true });
    if (out.includes("running, press Ctrl+C")) return { ms: performance.now() - t0, cpu: cpuMs(proc.pid), proc };
  }
  throw new Error(
    `converge run exited (${await proc.exited}) before "running": ${out}${await new Response(proc.stderr).text()}`,
  );
}

async function stop(proc: Bun.Subprocess): Promise<void> {
  proc.kill("SIGINT");
  const timer = setTimeout(() => proc.kill("SIGKILL"), 20_000);
  await proc.exited;
  clearTimeout(timer);
}

const load = () => `load ${loadavg()[0]!.toFixed(1)} on ${navigator.hardwareConcurrency} cores`;

// --help
{
  const n = 30;
  const times: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < n + 3; i++) {
    const t0 = performance.now();
    const p = Bun.spawnSync([BINARY, "--help"], { env: baseEnv, stdout: "ignore", stderr: "ignore" });
    if (p.exitCode !== 0) throw new Error("converge --help failed");
    if (i < 3) continue; // warm-up: page cache
    times.push(performance.now() - t0);
    cpu.push(Number(p.resourceUsage!.cpuTime.user + p.resourceUsage!.cpuTime.system) / 1000);
  }
  report(
    "dist/converge --help, wall",
    median(times),
    "ms",
    `median of N=${n}, ${spread(times)}; aim < 50 ms; ${load()}`,
  );
  report("dist/converge --help, CPU", median(cpu), "ms", `median of N=${n}, ${spread(cpu)}; user + system`);
}

// Launch to "running"
const startups: [string, number, Record<string, string>][] = [
  ["launch to running, 1 agent", 15, {}],
  [
    "launch to running, 1 agent, TCP+SQLite",
    10,
    {
      CONVERGE_TRANSPORT: "tcp",
      CONVERGE_PORT: String(freePort()),
      CONVERGE_STORE_BACKEND: "sqlite",
      CONVERGE_STORE_PATH: join(tmp.path, "s.sqlite3"),
    },
  ],
  ["launch to running, 100 agents", 10, { CONVERGE_AGENTS: "100" }],
];
for (const [name, n, env] of startups) {
  const times: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < n + 1; i++) {
    const launched = await launch(env);
    await stop(launched.proc);
    if (i === 0) continue; // warm-up: page cache
    times.push(launched.ms);
    cpu.push(launched.cpu);
  }
  const what = env.CONVERGE_TRANSPORT
    ? "tcp transport, sqlite store (discovery on)"
    : "local transport, no store (memory for the pool/task managers when agents > 1)";
  report(
    `${name}, wall`,
    median(times),
    "ms",
    `median of N=${n}, ${spread(times)}; ${what}${name.endsWith(" 1 agent") ? "; aim < 150 ms" : ""}; ${load()}`,
  );
  report(`${name}, CPU`, median(cpu), "ms", `median of N=${n}, ${spread(cpu)}; all threads, until "running"`);
}

// Idle memory
for (const [agents, n] of [
  [1, 5],
  [100, 3],
  [1000, 3],
] as const) {
  const rss: number[] = [];
  for (let i = 0; i < n; i++) {
    const { proc } = await launch({ CONVERGE_AGENTS: String(agents) });
    await Bun.sleep(1000); // idle: nothing to do but wait for work
    rss.push(rssMiB(proc.pid));
    await stop(proc);
  }
  report(
    `idle RSS, ${agents} agent${agents === 1 ? "" : "s"}`,
    median(rss),
    "MiB",
    `VmRSS 1 s after "running", median of N=${n}, local transport${agents === 1 ? "; aim < 60 MB" : ""}`,
  );
}

tmp.cleanup();

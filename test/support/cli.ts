/**
 * Runs the real `converge` command (source through Bun, or the compiled binary) as a child
 * process, for end-to-end tests. Every process started here is killed by `stopAll()`.
 */
import type { Subprocess } from "bun";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..", "..");
export const MAIN = join(ROOT, "src", "cli", "main.ts");
/** The compiled binary under test: dist/converge, or another (a release binary) named by CONVERGE_TEST_BINARY. */
export const BINARY = process.env.CONVERGE_TEST_BINARY ?? join(ROOT, "dist", "converge");

/** How to invoke converge: via Bun on the source (default) or the compiled binary. */
export function converge(useBinary = false): string[] {
  return useBinary ? [BINARY] : [process.execPath, MAIN];
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

const live = new Set<Subprocess>();
/** Processes started as leaders of their own process group: stopAll kills the whole group. */
const leaders = new WeakSet<Subprocess>();

/** Runs a command to completion (with a deadline) and returns its exit code and output. */
export async function runCli(args: string[], options: SpawnOptions & { timeoutMs?: number } = {}): Promise<RunResult> {
  return outputOf(spawnCli(args, options), options.timeoutMs ?? 20_000);
}

/**
 * The exit code and output of a process started with piped stdout and stderr, once it ends; it is
 * killed after `timeoutMs`, and by stopAll() meanwhile.
 */
export async function outputOf(
  p: Subprocess<Bun.SpawnOptions.Writable, "pipe", "pipe">,
  timeoutMs: number,
): Promise<RunResult> {
  live.add(p);
  const timer = setTimeout(() => kill(p, "SIGKILL"), timeoutMs);
  try {
    const [stdout, stderr, code] = await Promise.all([
      new Response(p.stdout).text(),
      new Response(p.stderr).text(),
      p.exited,
    ]);
    return { code, stdout, stderr };
  } finally {
    clearTimeout(timer);
    live.delete(p);
  }
}

/** A long-running `converge run`, with its output collected as it comes. */
export class Running {
  stdout = "";
  stderr = "";
  readonly exited: Promise<number>;

  constructor(readonly proc: Subprocess<"ignore", "pipe", "pipe" | Bun.BunFile>) {
    live.add(proc);
    const collect = async (stream: ReadableStream<Uint8Array> | unknown, to: "stdout" | "stderr") => {
      if (!(stream instanceof ReadableStream)) return; // written to a file (`stderrTo`)
      const decoder = new TextDecoder();
      for await (const chunk of stream) this[to] += decoder.decode(chunk, { stream: true });
    };
    const out = collect(proc.stdout, "stdout");
    const err = collect(proc.stderr, "stderr");
    this.exited = Promise.all([proc.exited, out, err]).then(([code]) => {
      live.delete(proc);
      return code;
    });
  }

  /** Resolves once stdout (or `stream`) contains `text`; rejects if the process exits first or time runs out. */
  async waitFor(text: string, timeoutMs = 15_000, stream: "stdout" | "stderr" = "stdout"): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let exited = false;
    void this.exited.then(() => (exited = true));
    while (!this[stream].includes(text)) {
      if (exited)
        throw new Error(
          `converge exited before printing "${text}" on ${stream}\nstdout: ${this.stdout}\nstderr: ${this.stderr}`,
        );
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for "${text}"\nstdout: ${this.stdout}\nstderr: ${this.stderr}`);
      await Bun.sleep(10);
    }
  }

  /** Sends a signal and waits for the exit code. */
  async stop(signal: NodeJS.Signals = "SIGINT", timeoutMs = 20_000): Promise<number> {
    this.proc.kill(signal);
    return this.waitExit(timeoutMs);
  }

  /** Waits for the exit code; kills the process (and its group, if it leads one) after `timeoutMs`. */
  async waitExit(timeoutMs = 20_000): Promise<number> {
    const timer = setTimeout(() => kill(this.proc, "SIGKILL"), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Signals every process in the group this one leads (started with `group: true`), as a
   * terminal's Ctrl+C or systemd's stop does.
   */
  signalGroup(signal: NodeJS.Signals): void {
    if (!leaders.has(this.proc)) throw new Error("signalGroup needs a process started with { group: true }");
    process.kill(-this.proc.pid, signal);
  }
}

function kill(p: Subprocess, signal: NodeJS.Signals): void {
  try {
    if (leaders.has(p)) process.kill(-p.pid, signal);
    else p.kill(signal);
  } catch {
    /* already gone */
  }
}

export function startCli(args: string[], options: SpawnOptions = {}): Running {
  return new Running(spawnCli(args, options));
}

interface SpawnOptions {
  env?: Record<string, string>;
  cwd?: string;
  binary?: boolean;
  /** As `bun run converge ARGS` (the package script), the way the README says to start it. */
  bunRun?: boolean;
  /** In a process group of its own, which it leads (for `Running.signalGroup`). */
  group?: boolean;
  /** What the command reads on standard input (default: nothing). */
  stdin?: string;
  /** A file that takes stderr instead of a pipe to this process (`Running.stderr` stays empty). */
  stderrTo?: string;
}

/** converge with a clean environment (plus `env`), output piped, no input. */
function spawnCli(args: string[], options: SpawnOptions) {
  const cmd = options.bunRun ? [process.execPath, "run", "converge", ...args] : [...converge(options.binary), ...args];
  const p = Bun.spawn(cmd, {
    env: { ...cleanEnv(), ...options.env },
    cwd: options.cwd ?? ROOT,
    stdout: "pipe",
    stderr: options.stderrTo ? Bun.file(options.stderrTo) : "pipe",
    stdin: options.stdin === undefined ? "ignore" : Buffer.from(options.stdin),
    detached: options.group ?? false,
  });
  if (options.group) leaders.add(p);
  return p;
}

/** Kills every process still running; call from afterAll/afterEach. */
export async function stopAll(): Promise<void> {
  const procs = [...live];
  for (const p of procs) kill(p, "SIGKILL");
  await Promise.all(procs.map((p) => p.exited));
  live.clear();
}

/** The environment without any CONVERGE_* variable, so the host's settings never leak into a test. */
function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("CONVERGE_") && v !== undefined) env[k] = v;
  env.NO_COLOR = "1";
  return env;
}

/** A free TCP port on 127.0.0.1 (bound and released; good enough for tests that start at once). */
export function freePort(): number {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = s.port;
  s.stop(true);
  return port;
}

/** True when a TCP connection to host:port is accepted (a listener is there). */
export async function canConnect(port: number, host = "127.0.0.1", timeoutMs = 2000): Promise<boolean> {
  const attempt = Bun.connect({ hostname: host, port, socket: { data() {} } }).then(
    (s) => (s.end(), true),
    () => false,
  );
  return Promise.race([attempt, Bun.sleep(timeoutMs).then(() => false)]);
}

/**
 * A private redis-server for tests and benchmarks: a free port, no persistence, stopped when the
 * caller is done (and, as a safety net, when this process exits). Never touches port 6379.
 */
import { createServer, connect } from "node:net";
import type { Subprocess } from "bun";

export interface RedisServer {
  url: string;
  port: number;
  /** Stops the server and waits for it to exit; idempotent. */
  stop(): Promise<void>;
  /** Starts it again on the same port (after stop), and waits until it answers. */
  restart(): Promise<void>;
  /** Freezes the server (SIGSTOP): connections stay open but nothing answers. */
  pause(): void;
  /** Thaws a paused server (SIGCONT). */
  resume(): void;
}

/** A port that was free a moment ago (the OS picked it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** True when something on `port` answers PING with PONG. */
export function ping(port: number, timeoutMs = 200): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host: "127.0.0.1", port });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once("error", () => done(false));
    sock.once("connect", () => sock.write("PING\r\n"));
    sock.once("data", (d) => done(d.toString().startsWith("+PONG")));
  });
}

const running = new Set<Subprocess>();
process.on("exit", () => {
  for (const p of running) p.kill("SIGKILL");
});

function spawnOn(port: number, extra: readonly string[] = []): Subprocess {
  if (!Bun.which("redis-server"))
    throw new Error(
      "these tests start their own redis-server, and none is on the PATH: apt-get install redis-server (.ci/run does this)",
    );
  const proc = Bun.spawn(
    [
      "redis-server",
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--loglevel",
      "warning",
      ...extra,
    ],
    {
      stdout: "ignore",
      stderr: "ignore",
    },
  );
  running.add(proc);
  void proc.exited.then(() => running.delete(proc));
  return proc;
}

async function waitUntilUp(proc: Subprocess, port: number, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) return false; // e.g. the port was taken between freePort and spawn
    if (await ping(port)) return true;
    await Bun.sleep(10); // nothing to await: redis-server announces readiness only in its log
  }
  return false;
}

/** `args`: more redis-server options (e.g. cluster mode, with its config file in a temporary directory). */
export async function startRedis(args: readonly string[] = []): Promise<RedisServer> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    let proc = spawnOn(port, args);
    if (!(await waitUntilUp(proc, port))) {
      proc.kill("SIGKILL");
      await proc.exited;
      continue;
    }
    const stop = async () => {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill("SIGCONT"); // a paused server cannot handle SIGTERM
        proc.kill("SIGTERM");
      }
      await proc.exited;
    };
    return {
      url: `redis://127.0.0.1:${port}/0`,
      port,
      stop,
      async restart() {
        await stop();
        proc = spawnOn(port, args);
        if (!(await waitUntilUp(proc, port))) throw new Error(`redis-server did not come back on port ${port}`);
      },
      pause: () => proc.kill("SIGSTOP"),
      resume: () => proc.kill("SIGCONT"),
    };
  }
  throw new Error("could not start redis-server (is it installed? apt-get install redis-server)");
}

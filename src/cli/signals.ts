/**
 * SIGINT and SIGTERM for `converge run`: the first one asks for a clean stop; a deliberate second
 * one exits at once. A terminal's Ctrl+C (and systemd's stop, with KillMode=control-group) signals
 * every process in the group, and `bun run` forwards the signal to its child as well, so one press
 * reaches converge twice, a moment apart: a copy within SAME_PRESS_MS of the first is that same
 * press and is ignored.
 */
import { logger, stderrLine } from "../observability/log.ts";

/** Signals closer together than this are one press. */
export const SAME_PRESS_MS = 1000;
const SIGNALS = ["SIGINT", "SIGTERM"] as const;

/** What asked for a stop before stopSignal was listening, and how stopSignal hears one. */
let requested: string | undefined;
let hear: ((why: string) => void) | undefined;

/**
 * Asks `converge run` for the same clean stop as a first signal, for a reason that is not one (the
 * CLI's crash report: an unhandled rejection). Asked before the run listens, the run stops as soon
 * as it does; another command never listens, and ends with its own work.
 */
export function requestStop(why: string): void {
  if (hear) hear(why);
  else requested ??= why;
}

/**
 * Installs the handlers (call this before anything starts: a signal that came before them would
 * kill the process without a clean stop) and resolves with the first signal (or requestStop's reason).
 */
export function stopSignal(): Promise<string> {
  const log = logger("run");
  let first: { signal: string; at: number } | undefined;
  return new Promise((resolve) => {
    hear = (why) => {
      if (first) return;
      first = { signal: why, at: performance.now() };
      resolve(why);
    };
    if (requested) hear(requested);
    const on = (signal: NodeJS.Signals) => {
      const at = performance.now();
      if (!first) {
        first = { signal, at };
        resolve(signal);
      } else if (at - first.at < SAME_PRESS_MS) {
        log.debug(`${signal} again within ${SAME_PRESS_MS} ms of ${first.signal}: the same press, still stopping`);
      } else {
        stderrLine("warn", "run", "second signal, exiting now", { fields: { signal }, bare: true });
        dieOf(signal);
      }
    };
    for (const s of SIGNALS) process.on(s, on);
  });
}

/**
 * Ends the process now, as the signal's default action would (exit status 128 + its number: 130
 * for SIGINT, 143 for SIGTERM), so the parent sees how it ended. process.exit() is never used.
 */
function dieOf(signal: NodeJS.Signals): void {
  for (const s of SIGNALS) process.removeAllListeners(s);
  process.kill(process.pid, signal);
}

/**
 * `converge run --until-idle`: the fleet stops on its own once it has been idle for a quiet period:
 * no worker of this process runs a task, and no open task (pending, delayed, or held by anyone)
 * is visible to any of its agents. Held tasks count because a failed attempt comes back to be
 * retried, and delayed ones because they come due. Checked every CHECK_MS; while the store cannot
 * be read the fleet counts as busy (it never stops for what it could not see).
 */
import { logger, RateLimitedLog } from "../observability/log.ts";
import { canSee, type Visibility } from "../store/task-queue.ts";
import type { Fleet } from "./fleet.ts";

/** The quiet period when --idle-sec is not given. */
export const DEFAULT_IDLE_MS = 2000;
const CHECK_MS = 200;

/** Resolves once the fleet has been idle for `quietMs`; `cancel` stops watching (it then never resolves). */
export function untilIdle(fleet: Fleet, quietMs: number): { idle: Promise<void>; cancel(): void } {
  const failures = new RateLimitedLog(logger("run"), { level: "warn" });
  let timer: ReturnType<typeof setTimeout> | undefined;
  let cancelled = false;
  const idle = new Promise<void>((resolve) => {
    let lastBusy = performance.now();
    const check = async () => {
      try {
        if (await busy(fleet)) lastBusy = performance.now();
      } catch (err) {
        lastBusy = performance.now();
        failures.write("cannot tell whether the agents are idle (the store did not answer)", { err });
      }
      if (cancelled) return;
      if (performance.now() - lastBusy >= quietMs) resolve();
      else timer = setTimeout(check, CHECK_MS);
    };
    timer = setTimeout(check, CHECK_MS);
  });
  return {
    idle,
    cancel() {
      cancelled = true;
      clearTimeout(timer);
    },
  };
}

async function busy(fleet: Fleet): Promise<boolean> {
  if (fleet.runtimes.some((r) => (r.worker?.running.size ?? 0) > 0)) return true;
  const tm = fleet.tasks;
  if (!tm) return false;
  const scopes: Visibility[] = fleet.runtimes.map((r) => ({
    pools: r.memberships.ids,
    capabilities: new Set(r.agent.capabilities),
  }));
  // Cheap first (the best due pending task of each agent), then every open task.
  const now = await tm.now();
  for (const v of scopes) if ((await tm.queue.pending(v, now, 1)).length > 0) return true;
  const open = await tm.queue.open();
  return open.some((t) => scopes.some((v) => canSee(v, t.poolId, t.requiredCapabilities)));
}

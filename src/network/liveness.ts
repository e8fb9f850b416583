/**
 * Which `converge run` processes are alive, so that operator commands can tell a task held by a
 * live agent from one held by an agent whose process was killed outright (SIGKILL, power loss):
 * such a process never unregisters, so its agents' discovery descriptors stay behind.
 *
 * Each process keeps `discovery:process:<id>` → `{ id, pid, hostname, agents, startedAt,
 * heartbeatAt, heartbeatMs }` (ids in the index set `discovery:processes`), rewritten every
 * `heartbeatMs` with the store's clock and deleted on a clean stop. Once a record is older than
 * STALE_BEATS beats, the agents it lists count as gone, unless a fresh record lists them too (a
 * restart with the same identity_dir). The beat is a sixth of the claim TTL (at most 5 s), so a
 * dead holder shows as gone before the leases it held can expire.
 */
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { logger } from "../observability/log.ts";
import type { Store } from "../store/store.ts";

export const PROCESS_PREFIX = "discovery:process:";
export const PROCESS_INDEX = "discovery:processes";
const STALE_BEATS = 3;
/** Records of processes dead for this long are deleted by the next process that starts. */
const FORGET_AFTER_MS = 3_600_000;
const log = logger("network.liveness");

export interface ProcessRecord {
  id: string;
  pid: number;
  hostname: string;
  agents: string[];
  startedAt: number;
  heartbeatAt: number;
  heartbeatMs: number;
}

export function heartbeatMsFor(claimTtlSec: number): number {
  return Math.min(5000, Math.max(100, Math.round((claimTtlSec * 1000) / 6)));
}

export function isStale(r: ProcessRecord, now: number): boolean {
  return now - r.heartbeatAt > STALE_BEATS * r.heartbeatMs;
}

async function records(store: Store): Promise<{ id: string; record: ProcessRecord | undefined }[]> {
  const ids = await store.indexMembers(PROCESS_INDEX);
  return Promise.all(ids.map(async (id) => ({ id, record: await store.get<ProcessRecord>(PROCESS_PREFIX + id) })));
}

/** Writes this process's record now and every `heartbeatMs` until `stop()`, which deletes it. */
export async function startHeartbeat(
  store: Store,
  agents: string[],
  heartbeatMs: number,
): Promise<{ stop(): Promise<void> }> {
  const id = randomUUID();
  const startedAt = await store.now();
  const beat = async () =>
    store.put(PROCESS_PREFIX + id, {
      id,
      pid: process.pid,
      hostname: hostname(),
      agents,
      startedAt,
      heartbeatAt: await store.now(),
      heartbeatMs,
    } satisfies ProcessRecord);
  await store.indexAdd(PROCESS_INDEX, id);
  await beat();
  let failing = false;
  const timer = setInterval(() => {
    beat().then(
      () => (failing = false),
      (err) => {
        if (!failing)
          log.warn("heartbeat failed; operator commands may show this process's agents as gone until it succeeds", {
            err,
          });
        failing = true;
      },
    );
  }, heartbeatMs);
  // Forget processes dead for an hour, so records of crashed processes do not pile up.
  void (async () => {
    for (const { id: other, record } of await records(store)) {
      if (record && startedAt - record.heartbeatAt < FORGET_AFTER_MS) continue;
      await store.delete(PROCESS_PREFIX + other);
      await store.indexRemove(PROCESS_INDEX, other);
    }
  })().catch((err) => log.debug("could not forget old process records", { err }));
  return {
    async stop() {
      clearInterval(timer);
      await store.delete(PROCESS_PREFIX + id);
      await store.indexRemove(PROCESS_INDEX, id);
    },
  };
}

/**
 * A predicate: is this agent gone? True when it is not registered in discovery, or when every
 * process record that lists it has stopped beating.
 */
export async function goneAgents(store: Store, registered: Iterable<string>): Promise<(agentId: string) => boolean> {
  const live = new Set(registered);
  const now = await store.now();
  const fresh = new Set<string>();
  const stale = new Set<string>();
  for (const { record } of await records(store)) {
    if (!record) continue;
    for (const a of record.agents) (isStale(record, now) ? stale : fresh).add(a);
  }
  return (agentId) => !live.has(agentId) || (stale.has(agentId) && !fresh.has(agentId));
}

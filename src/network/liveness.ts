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
 *
 * A store can lose its data under a running fleet (Redis FLUSHALL, or a restart without
 * persistence). Each beat therefore also checks that this process's record and its agents'
 * discovery records are still there; when one is missing it logs one line and calls `restore`,
 * which registers the agents again (discovery, pool membership), and then rewrites its own record.
 */
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { logger } from "../observability/log.ts";
import { getMany, type Store } from "../store/store.ts";
import { DISCOVERY_PREFIX } from "./discovery.ts";

const PROCESS_PREFIX = "discovery:process:";
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

function isStale(r: ProcessRecord, now: number): boolean {
  return now - r.heartbeatAt > STALE_BEATS * r.heartbeatMs;
}

async function records(store: Store): Promise<{ id: string; record: ProcessRecord | undefined }[]> {
  const ids = await store.indexMembers(PROCESS_INDEX);
  const recs = await getMany<ProcessRecord>(
    store,
    ids.map((id) => PROCESS_PREFIX + id),
  );
  return ids.map((id, i) => ({ id, record: recs[i] }));
}

export interface HeartbeatOptions {
  /**
   * Puts back what this process registered, after the store lost it: called by the first beat
   * that finds this process's record or one of its agents' discovery records missing.
   */
  restore?: () => Promise<void>;
}

export interface Heartbeat {
  /** Stops beating (waiting for a beat in flight) and deletes this process's record. */
  stop(): Promise<void>;
}

/** Writes this process's record now and every `heartbeatMs` until `stop()`, which deletes it. */
export async function startHeartbeat(
  store: Store,
  agents: string[],
  heartbeatMs: number,
  options: HeartbeatOptions = {},
): Promise<Heartbeat> {
  const id = randomUUID();
  const startedAt = await store.now();
  const write = async () =>
    store.put(PROCESS_PREFIX + id, {
      id,
      pid: process.pid,
      hostname: hostname(),
      agents,
      startedAt,
      heartbeatAt: await store.now(),
      heartbeatMs,
    } satisfies ProcessRecord);
  const ownKeys = [PROCESS_PREFIX + id, ...agents.map((a) => DISCOVERY_PREFIX + a)];
  const { restore } = options;
  const beat = async () => {
    if (restore) {
      const missing = (await getMany(store, ownKeys)).filter((v) => v === undefined).length;
      if (missing > 0) {
        log.warn(
          `${missing} of this process's records vanished from ${store.description} (flushed, or restarted ` +
            `without persistence?); registering its ${agents.length} agent${agents.length === 1 ? "" : "s"} again`,
        );
        await restore();
        await store.indexAdd(PROCESS_INDEX, id);
      }
    }
    await write();
  };
  await store.indexAdd(PROCESS_INDEX, id);
  await write();
  let failing = false;
  let stopped = false;
  let inFlight: Promise<void> = Promise.resolve();
  let timer: ReturnType<typeof setTimeout> | undefined;
  // One beat at a time: the next is scheduled when the last has finished, so a slow store never
  // piles beats (or restorations) on top of each other.
  const schedule = () => {
    timer = setTimeout(() => {
      inFlight = beat().then(
        () => void (failing = false),
        (err) => {
          if (!failing)
            log.warn("heartbeat failed; operator commands may show this process's agents as gone until it succeeds", {
              err,
            });
          failing = true;
        },
      );
      void inFlight.then(() => stopped || schedule());
    }, heartbeatMs);
  };
  schedule();
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
      stopped = true;
      clearTimeout(timer);
      await inFlight;
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

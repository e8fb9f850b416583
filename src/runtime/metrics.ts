/**
 * The runtime's counters, gauges and histograms, gathered from every runtime in the process on
 * demand; and the store's task counts by state (`StoreTaskCounts`), cached so that a storm of
 * scrapes costs the store one query a second.
 */
import type { TaskManager } from "../coordination/task-manager.ts";
import { TASK_STATES, type TaskState } from "../core/task.ts";
import { Metrics } from "../observability/metrics.ts";
import type { InboundGuard } from "../transport/inbound.ts";
import type { AgentRuntime } from "./runtime.ts";
import { MAX_CAPABILITY_SETS, OTHER_SET, type Outcome } from "./task-timings.ts";

const TASK_DURATION = "converge_task_duration_seconds";
const TASK_QUEUE_WAIT = "converge_task_queue_wait_seconds";

export function collectMetrics(runtimes: readonly AgentRuntime[]): Metrics {
  const m = new Metrics()
    .gauge("converge_agents", "Agents running in this process")
    .counter("converge_messages_received_total", "Messages delivered to agents' inboxes")
    .counter("converge_messages_dropped_total", "Messages dropped because an inbox was full")
    .counter("converge_messages_sent_total", "Messages signed and sent by agents")
    .counter("converge_decisions_total", "Decisions executed, by type and outcome")
    .counter("converge_tasks_claimed_total", "Tasks claimed by workers")
    .counter("converge_tasks_completed_total", "Tasks completed by workers")
    .counter("converge_tasks_failed_total", "Tasks that ended failed")
    .counter("converge_tasks_retried_total", "Failed attempts sent back for a retry")
    .counter("converge_tasks_released_total", "Tasks handed back to pending on shutdown")
    .counter("converge_leases_renewed_total", "Lease renewals")
    .counter("converge_leases_lost_total", "Leases lost to expiry and takeover")
    .gauge("converge_inbox_depth", "Messages waiting in inboxes")
    .gauge("converge_tasks_running", "Task handlers running now")
    .counter("converge_messages_verified_total", "Messages delivered whose signature verified against the sender's key")
    .counter(
      "converge_messages_unverified_total",
      "Messages delivered unverified (sender not registered, or checks off)",
    )
    .counter("converge_messages_clock_skewed_total", "Messages delivered with a timestamp beyond max_clock_skew_sec")
    .counter("converge_messages_refused_total", "Messages refused before the inbox, by reason")
    .counter("converge_replay_window_evictions_total", "Ids forgotten early because the replay window was full")
    .gauge("converge_inbound_connections", "Open connections to the agents' listeners")
    .gauge("converge_inbound_buffered_bytes", "Bytes held by unfinished inbound frames")
    .counter("converge_connections_closed_total", "Inbound connections closed or refused by the listener, by reason")
    .histogram(TASK_DURATION, "Claim to recorded outcome of task attempts run here, by capability set and outcome")
    .histogram(TASK_QUEUE_WAIT, "Submit to first claim of tasks claimed here, by capability set");
  m.set("converge_agents", runtimes.filter((r) => r.running).length);
  let depth = 0;
  let running = 0;
  let connections = 0;
  let buffered = 0;
  const sets = new Set<string>();
  for (const r of runtimes) {
    const g = r.gate.stats;
    m.increment("converge_messages_verified_total", undefined, g.verified);
    m.increment("converge_messages_unverified_total", undefined, g.unverified);
    m.increment("converge_messages_clock_skewed_total", undefined, g.skewed);
    m.increment("converge_replay_window_evictions_total", undefined, g.replayEvictions);
    for (const [reason, n] of Object.entries(g.refused))
      if (n > 0) m.increment("converge_messages_refused_total", { reason }, n);
    const inbound = (r.options.transport as { inbound?: InboundGuard } | undefined)?.inbound;
    if (inbound) {
      connections += inbound.size;
      buffered += inbound.budget.used;
      const { accepted: _, refusedMessages, ...closed } = inbound.stats;
      if (refusedMessages > 0)
        m.increment("converge_messages_refused_total", { reason: "invalid_ids" }, refusedMessages);
      for (const [reason, n] of Object.entries(closed))
        if (n > 0) m.increment("converge_connections_closed_total", { reason }, n);
    }
    m.increment("converge_messages_received_total", undefined, r.inbox.received);
    m.increment("converge_messages_dropped_total", undefined, r.inbox.dropped);
    m.increment("converge_messages_sent_total", undefined, r.messagesSent);
    for (const [type, c] of r.executor.counts) {
      if (c.ok) m.increment("converge_decisions_total", { type, outcome: "ok" }, c.ok);
      if (c.failed) m.increment("converge_decisions_total", { type, outcome: "failed" }, c.failed);
    }
    const w = r.worker?.stats;
    if (w) {
      m.increment("converge_tasks_claimed_total", undefined, w.claimed);
      m.increment("converge_tasks_completed_total", undefined, w.completed);
      m.increment("converge_tasks_failed_total", undefined, w.failed);
      m.increment("converge_tasks_retried_total", undefined, w.retried);
      m.increment("converge_tasks_released_total", undefined, w.released);
      m.increment("converge_leases_renewed_total", undefined, w.leasesRenewed);
      m.increment("converge_leases_lost_total", undefined, w.leasesLost);
      for (const t of r.worker!.timings.all) {
        // The process names at most MAX_CAPABILITY_SETS sets too, whatever each worker saw.
        const named = t.capabilities !== OTHER_SET && (sets.has(t.capabilities) || sets.size < MAX_CAPABILITY_SETS);
        if (named) sets.add(t.capabilities);
        const capabilities = named ? t.capabilities : OTHER_SET;
        if (t.wait.count > 0) m.addHistogram(TASK_QUEUE_WAIT, t.wait, { capabilities });
        for (const outcome of OUTCOMES)
          if (t.duration[outcome].count > 0)
            m.addHistogram(TASK_DURATION, t.duration[outcome], { capabilities, outcome });
      }
    }
    depth += r.inbox.size;
    running += r.worker?.running.size ?? 0;
  }
  m.set("converge_inbox_depth", depth);
  m.set("converge_inbound_connections", connections);
  m.set("converge_inbound_buffered_bytes", buffered);
  m.set("converge_tasks_running", running);
  return m;
}

const OUTCOMES: readonly Outcome[] = ["completed", "failed", "retried"];

/** How long a count of the store's tasks is reused, and how long a scrape waits for one (ms). */
const COUNTS_TTL_MS = 1000;
const COUNTS_TIMEOUT_MS = 1000;

/**
 * `converge_store_tasks{state}`: the tasks in the store by state, the whole fleet's (one HGETALL
 * on Redis, one indexed query on SQLite). Concurrent scrapes share one query, and its answer
 * serves every scrape for a second. When the store does not answer in time the gauge is left out
 * of that scrape (a stale count would look current).
 */
export class StoreTaskCounts {
  #at = -Infinity;
  #pending: Promise<Record<TaskState, number> | undefined> | undefined;
  #last: Record<TaskState, number> | undefined;

  constructor(private readonly tasks: TaskManager) {}

  async addTo(m: Metrics): Promise<void> {
    m.gauge("converge_store_tasks", "Tasks in the store by state: the whole fleet's, not only this process's");
    const counts = await this.#counts();
    if (!counts) return;
    for (const state of TASK_STATES) m.set("converge_store_tasks", counts[state] ?? 0, { state });
  }

  #counts(): Promise<Record<TaskState, number> | undefined> {
    if (performance.now() - this.#at < COUNTS_TTL_MS) return Promise.resolve(this.#last);
    this.#pending ??= (async () => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<undefined>((resolve) => {
        timer = setTimeout(() => resolve(undefined), COUNTS_TIMEOUT_MS);
      });
      try {
        this.#last = await Promise.race([this.tasks.counts(), late]);
      } catch {
        this.#last = undefined; // the store's trouble shows in converge_store_healthy and /healthz
      } finally {
        clearTimeout(timer);
        this.#at = performance.now();
        this.#pending = undefined;
      }
      return this.#last;
    })();
    return this.#pending;
  }
}

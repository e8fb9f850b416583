/** The runtime's counters and gauges, gathered from every runtime in the process on demand. */
import { Metrics } from "../observability/metrics.ts";
import type { AgentRuntime } from "./runtime.ts";

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
    .gauge("converge_tasks_running", "Task handlers running now");
  m.set("converge_agents", runtimes.filter((r) => r.running).length);
  let depth = 0;
  let running = 0;
  for (const r of runtimes) {
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
    }
    depth += r.inbox.size;
    running += r.worker?.running.size ?? 0;
  }
  m.set("converge_inbox_depth", depth);
  m.set("converge_tasks_running", running);
  return m;
}

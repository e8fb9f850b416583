/** The runtime's counters and gauges, gathered from every runtime in the process on demand. */
import { Metrics } from "../observability/metrics.ts";
import type { InboundGuard } from "../transport/inbound.ts";
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
    .counter("converge_connections_closed_total", "Inbound connections closed or refused by the listener, by reason");
  m.set("converge_agents", runtimes.filter((r) => r.running).length);
  let depth = 0;
  let running = 0;
  let connections = 0;
  let buffered = 0;
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

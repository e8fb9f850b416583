/**
 * `converge run`: starts the agents the config describes and runs until SIGINT or SIGTERM, then
 * stops everything cleanly and exits 0. A second signal during shutdown exits at once, unless it
 * comes within a second of the first: that is the same press delivered twice (signals.ts). With
 * --until-idle it also stops on its own once idle (until-idle.ts), and exits 1 if a task it
 * handled ended failed. With a `retention` config the fleet cleans finished tasks (coordination/retention.ts).
 *
 * Its status lines on stdout ("agent 1/2 …", "running, press Ctrl+C to stop …", "stopped …") are
 * text, or with --log-format json one JSON object each, with a fixed `msg` per kind of line and
 * its data in fields (statusLine in observability/log.ts).
 */
import { defineCommand } from "citty";
import { formatDuration, parseDuration } from "../core/duration.ts";
import { ConfigError } from "../core/errors.ts";
import { describeRule } from "../coordination/retention.ts";
import { logger, statusLine } from "../observability/log.ts";
import { CONFIG_DOCS } from "./config.ts";
import { commonArgs, setup, type CommonArgs } from "./common.ts";
import { setHelpFooter } from "./dispatch.ts";
import type { Fleet } from "./fleet.ts";
import { SAME_PRESS_MS, stopSignal } from "./signals.ts";
import { DEFAULT_IDLE_MS, untilIdle } from "./until-idle.ts";

const width = Math.max(...Object.keys(CONFIG_DOCS).map((k) => k.length));
const footer = [
  "CONFIG KEYS (in the file, or as CONVERGE_<KEY> in the environment; the file wins, and --set KEY=VALUE wins",
  "over both; a leading ~ in a path is the home directory)",
  "",
  ...Object.entries(CONFIG_DOCS).map(([k, v]) => `  ${k.padEnd(width)}  ${v.doc}`),
  "",
  "SIGINT (Ctrl+C) or SIGTERM stops cleanly: agents drain, leases go back, discovery records are removed.",
  `A second signal ${SAME_PRESS_MS / 1000} s or more after the first exits at once (status 130 for SIGINT, 143 for`,
  "SIGTERM); a copy within that second is the same press (a terminal and `bun run` each deliver one).",
].join("\n");

export const IDLE_HINT =
  "hint: nothing can reach these agents (local transport, no shared store); for a worker that takes tasks: " +
  "converge run -c examples/worker.yaml, then converge tasks submit (README, Quick start)";

export const runAgentsCommand = defineCommand({
  meta: {
    name: "run",
    description: "Start one or more agents and run until Ctrl+C or SIGTERM",
  },
  args: {
    ...commonArgs,
    "until-idle": {
      type: "boolean",
      description:
        "Stop cleanly once idle for the quiet period (--idle-sec): no task running here and no open task " +
        "(pending, delayed or held by anyone) visible to these agents; exit 0, or 1 if a task handled here " +
        "ended failed",
    },
    "idle-sec": {
      type: "string",
      valueHint: "SEC",
      description:
        "With --until-idle: the quiet period, seconds or a duration such as 30s " +
        `(default ${DEFAULT_IDLE_MS / 1000})`,
    },
  },
  async run({ args }) {
    const config = setup(args as CommonArgs);
    const untilIdleSet = args["until-idle"] === true;
    if (args["idle-sec"] !== undefined && !untilIdleSet)
      throw new ConfigError("--idle-sec needs --until-idle (it is how long the agents must be idle)");
    const quietMs =
      args["idle-sec"] !== undefined
        ? parseDuration(args["idle-sec"], "--idle-sec", { bareSeconds: true })
        : DEFAULT_IDLE_MS;
    const log = logger("run");
    const t0 = performance.now();
    // Handlers go in before anything starts; the first signal stops (after start completes, if it
    // comes during start).
    const signalled = stopSignal();
    // Loaded here, not at the top: `converge run --help` then never evaluates the runtime.
    const { startFleet } = await import("./fleet.ts");
    const fleet = await startFleet(config);
    printStarted(fleet, config.agents);
    // The embedded default: nothing outside this process can give these agents anything to do.
    if (config.transport === "local" && !config.agent && (fleet.store?.description ?? "memory") === "memory")
      out(IDLE_HINT, "hint", { hint: IDLE_HINT.slice("hint: ".length) });
    // The fleet cleans finished tasks (one process of it at a time), even with one plain agent.
    if (fleet.retention) {
      const rules = config.retention!.rules.map(describeRule).join(", ");
      const every = formatDuration(config.retention!.intervalMs);
      out(`retention: ${rules}, every ${every} (one process at a time)`, "retention", { rules, every });
    }
    const startupMs = Math.round(performance.now() - t0);
    out(`running, press Ctrl+C to stop (started in ${startupMs} ms)`, "running, press Ctrl+C to stop", {
      startup_ms: startupMs,
    });
    const idle = untilIdleSet ? untilIdle(fleet, quietMs) : undefined;
    if (idle) log.info(`stopping once idle for ${formatDuration(quietMs)} (--until-idle)`);
    const why = await Promise.race([
      signalled,
      idle ? idle.idle.then(() => "idle" as const) : new Promise<never>(() => {}),
    ]);
    idle?.cancel();
    if (why === "idle")
      log.info(`idle for ${formatDuration(quietMs)}: no open task is visible to these agents; stopping`);
    else log.info(`${why} received, stopping`);
    const ranFor = (performance.now() - t0) / 1000;
    await fleet.stop();
    printSummary(fleet, ranFor);
    // --until-idle is how a CI job runs its workers: a task that ended failed fails the job.
    return untilIdleSet && failedTasks(fleet) > 0 ? 1 : 0;
  },
});

const out = (text: string, msg: string, fields?: Record<string, unknown>) => statusLine("run", text, msg, fields);

function failedTasks(fleet: Fleet): number {
  return fleet.runtimes.reduce((n, r) => n + (r.worker?.stats.failed ?? 0), 0);
}

setHelpFooter(runAgentsCommand, footer);

function printStarted(fleet: Fleet, n: number): void {
  for (const [i, r] of fleet.runtimes.entries()) {
    const address = r.options.transport?.address ?? null;
    out(`agent ${i + 1}/${n} ${r.id} ${address ?? "(no transport)"}`, "agent started", {
      agent: i + 1,
      agents: n,
      id: r.id,
      address,
    });
  }
  const store = fleet.store?.description ?? null;
  out(`store: ${store ?? "none"}${fleet.discovery ? " (discovery on)" : ""}`, "store", {
    store,
    discovery: fleet.discovery !== undefined,
  });
  if (fleet.schedules) out("schedules: this process submits the tasks of due schedules", "schedules", {});
  if (fleet.poolId)
    out(`pool: ${fleet.poolId} (${count(n, "agent")} joined)`, "pool joined", { pool: fleet.poolId, agents: n });
  if (fleet.agentModule) out(`agent module: ${fleet.agentModule}`, "agent module", { module: fleet.agentModule });
  if (fleet.llm) out(`llm: ${fleet.llm}`, "llm", { llm: fleet.llm });
  if (fleet.httpUrl)
    out(`health and metrics: ${fleet.httpUrl}/healthz /readyz /metrics`, "health and metrics", { url: fleet.httpUrl });
}

function printSummary(fleet: Fleet, seconds: number): void {
  let received = 0;
  let sent = 0;
  let completed = 0;
  let failed = 0;
  for (const r of fleet.runtimes) {
    received += r.inbox.received;
    sent += r.messagesSent;
    completed += r.worker?.stats.completed ?? 0;
    failed += r.worker?.stats.failed ?? 0;
  }
  const worker = Boolean(fleet.agentModule || fleet.llm);
  const tasks = worker ? `, ${count(completed, "task")} completed, ${failed} failed` : "";
  const [agents, messages] = [count(fleet.runtimes.length, "agent"), count(received, "message")];
  out(`stopped ${agents} after ${seconds.toFixed(1)} s: ${messages} received, ${sent} sent${tasks}`, "stopped", {
    agents: fleet.runtimes.length,
    seconds: Math.round(seconds * 10) / 10,
    received,
    sent,
    ...(worker ? { completed, failed } : {}),
  });
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

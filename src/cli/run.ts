/**
 * `converge run`: starts the agents the config describes and runs until SIGINT or SIGTERM, then
 * stops everything cleanly and exits 0. A second signal during shutdown exits at once, unless it
 * comes within a second of the first: that is the same press delivered twice (signals.ts). With
 * --until-idle it also stops on its own once idle (until-idle.ts), and exits 1 if a task it
 * handled ended failed. With a `retention` config it cleans finished tasks (coordination/retention.ts).
 */
import { defineCommand } from "citty";
import { formatDuration, parseDuration } from "../core/duration.ts";
import { ConfigError } from "../core/errors.ts";
import { describeRule, RetentionLoop } from "../coordination/retention.ts";
import { logger } from "../observability/log.ts";
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
    const out = (line: string) => process.stdout.write(`${line}\n`);
    printStarted(fleet, config.agents, out);
    // The embedded default: nothing outside this process can give these agents anything to do.
    if (config.transport === "local" && !config.agent && (fleet.store?.description ?? "memory") === "memory")
      out(IDLE_HINT);
    // One process of the fleet at a time cleans (a lease in the store); every process may try.
    // (A fleet without a task manager of its own, e.g. one plain agent, still cleans the shared store.)
    let cleaner = fleet.tasks;
    if (config.retention && !cleaner && fleet.store)
      cleaner = new (await import("../coordination/task-manager.ts")).TaskManager(fleet.store);
    const retention = config.retention && cleaner ? new RetentionLoop(cleaner, config.retention) : undefined;
    if (retention) {
      const rules = config.retention!.rules.map(describeRule).join(", ");
      out(`retention: ${rules}, every ${formatDuration(config.retention!.intervalMs)} (one process at a time)`);
      retention.start();
    }
    out(`running, press Ctrl+C to stop (started in ${Math.round(performance.now() - t0)} ms)`);
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
    await retention?.stop();
    await fleet.stop();
    out(summary(fleet, ranFor));
    // --until-idle is how a CI job runs its workers: a task that ended failed fails the job.
    return untilIdleSet && failedTasks(fleet) > 0 ? 1 : 0;
  },
});

function failedTasks(fleet: Fleet): number {
  return fleet.runtimes.reduce((n, r) => n + (r.worker?.stats.failed ?? 0), 0);
}

setHelpFooter(runAgentsCommand, footer);

function printStarted(fleet: Fleet, n: number, out: (s: string) => void): void {
  for (const [i, r] of fleet.runtimes.entries()) {
    out(`agent ${i + 1}/${n} ${r.id} ${r.options.transport?.address ?? "(no transport)"}`);
  }
  out(`store: ${fleet.store?.description ?? "none"}${fleet.discovery ? " (discovery on)" : ""}`);
  if (fleet.poolId) out(`pool: ${fleet.poolId} (${n} agent${n === 1 ? "" : "s"} joined)`);
  if (fleet.agentModule) out(`agent module: ${fleet.agentModule}`);
  if (fleet.llm) out(`llm: ${fleet.llm}`);
  if (fleet.httpUrl) out(`health and metrics: ${fleet.httpUrl}/healthz /readyz /metrics`);
}

function summary(fleet: Fleet, seconds: number): string {
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
  const tasks = fleet.agentModule || fleet.llm ? `, ${count(completed, "task")} completed, ${failed} failed` : "";
  const [agents, messages] = [count(fleet.runtimes.length, "agent"), count(received, "message")];
  return `stopped ${agents} after ${seconds.toFixed(1)} s: ${messages} received, ${sent} sent${tasks}`;
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

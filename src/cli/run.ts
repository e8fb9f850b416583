/**
 * `converge run`: starts the agents the config describes and runs until SIGINT or SIGTERM, then
 * stops everything cleanly and exits 0. A second signal during shutdown exits at once.
 */
import { defineCommand } from "citty";
import { logger } from "../observability/log.ts";
import { CONFIG_DOCS } from "./config.ts";
import { commonArgs, setup, type CommonArgs } from "./common.ts";
import { setHelpFooter } from "./dispatch.ts";
import type { Fleet } from "./fleet.ts";

const width = Math.max(...Object.keys(CONFIG_DOCS).map((k) => k.length));
const footer = [
  "CONFIG KEYS (in the file, or as CONVERGE_<KEY> in the environment; the file wins)",
  "",
  ...Object.entries(CONFIG_DOCS).map(([k, v]) => `  ${k.padEnd(width)}  ${v.doc}`),
  "",
  "SIGINT (Ctrl+C) or SIGTERM stops cleanly; a second one exits at once.",
].join("\n");

export const runCommand = defineCommand({
  meta: {
    name: "run",
    description: "Start one or more agents and run until Ctrl+C or SIGTERM",
  },
  args: commonArgs,
  async run({ args }) {
    const config = setup(args as CommonArgs);
    const log = logger("run");
    const t0 = performance.now();
    // Signal handlers go in before anything starts: Bun installs them asynchronously, and a
    // signal that came before them would kill the process without a clean stop. The first
    // signal stops (after start completes, if it comes during start); a second exits at once.
    let first: NodeJS.Signals | undefined;
    const signalled = new Promise<NodeJS.Signals>((resolve) => {
      const on = (s: NodeJS.Signals) => {
        if (first) {
          process.stderr.write("converge: second signal, exiting now\n");
          process.exit(130);
        }
        first = s;
        resolve(s);
      };
      process.on("SIGINT", on);
      process.on("SIGTERM", on);
    });
    // Loaded here, not at the top: `converge run --help` then never evaluates the runtime.
    const { startFleet } = await import("./fleet.ts");
    const fleet = await startFleet(config);
    const out = (line: string) => process.stdout.write(`${line}\n`);
    printStarted(fleet, config.agents, out);
    out(`running, press Ctrl+C to stop (started in ${Math.round(performance.now() - t0)} ms)`);
    const signal = await signalled;
    log.info(`${signal} received, stopping`);
    const ranFor = (performance.now() - t0) / 1000;
    await fleet.stop();
    out(summary(fleet, ranFor));
    return 0;
  },
});

setHelpFooter(runCommand, footer);

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
  return `stopped ${count(fleet.runtimes.length, "agent")} after ${seconds.toFixed(1)} s: ${count(received, "message")} received, ${sent} sent${tasks}`;
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

#!/usr/bin/env bun
/** The `converge` command: entry point of `bun run converge` and of the compiled binary. */
import { defineCommand } from "citty";
import pkg from "../../package.json" with { type: "json" };
import { versionLine } from "./build-info.ts";
import { dispatch, reportError, reportUnhandled } from "./dispatch.ts";
import { requestStop } from "./signals.ts";

const meta = {
  name: "converge",
  version: pkg.version,
  description: "Run networks of autonomous agents: signed messages, shared pools and tasks, exactly-once claims.",
};

export const root = defineCommand({
  meta,
  args: {
    version: { type: "boolean", alias: "V", description: "Print the version and exit" },
  },
  // Each command is loaded only when used, so `--help` and `--version` start fast.
  subCommands: {
    run: () => import("./run.ts").then((m) => m.runAgentsCommand),
    tasks: () => import("./tasks.ts").then((m) => m.tasksCommand),
    schedules: () => import("./schedules.ts").then((m) => m.schedulesCommand),
    pools: () => import("./pools.ts").then((m) => m.poolsCommand),
    agents: () => import("./agents.ts").then((m) => m.agentsCommand),
    send: () => import("./send.ts").then((m) => m.sendCommand),
  },
});

const summaries = {
  run: "Start agents from the config and run until Ctrl+C or SIGTERM",
  tasks: "Submit, list, inspect, cancel, retry, wait for and clean up tasks in the shared store",
  schedules: "Add, list and remove repeating tasks (cron or interval) in the shared store",
  pools: "List pools in the shared store",
  agents: "List agents registered in discovery",
  send: "Send one signed message to an agent over TCP",
};

// The exit code is set, never forced with process.exit(): that would cut whatever stdout has not yet
// written into a pipe. Every command closes what it opened, so the process ends once output is out.
if (import.meta.main) {
  // A promise nobody awaited failed: a crash, reported after the lines held so far. It ends in exit 1
  // all the same, but `converge run` first stops cleanly (tasks handed back) rather than dying.
  let crashed = false;
  process.on("unhandledRejection", (reason) => {
    reportUnhandled(reason, "converge");
    crashed = true;
    process.exitCode = 1;
    requestStop("unhandled rejection");
  });
  dispatch(root, process.argv.slice(2), {
    name: "converge",
    version: pkg.version,
    versionLine,
    description: meta.description,
    summaries,
  }).then(
    (code) => {
      process.exitCode = crashed ? 1 : code;
    },
    (err) => {
      process.exitCode = reportError(err, "converge");
    },
  );
}

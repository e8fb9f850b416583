#!/usr/bin/env bun
/** The `converge` command: entry point of `bun run converge` and of the compiled binary. */
import { defineCommand } from "citty";
import pkg from "../../package.json" with { type: "json" };
import { dispatch, reportError } from "./dispatch.ts";

export const root = defineCommand({
  meta: {
    name: "converge",
    version: pkg.version,
    description: "Run networks of autonomous agents: signed messages, shared pools and tasks, exactly-once claims.",
  },
  args: {
    version: { type: "boolean", alias: "V", description: "Print the version and exit" },
  },
  // Each command is loaded only when used, so `--help` and `--version` start fast.
  subCommands: {
    run: () => import("./run.ts").then((m) => m.runCommand),
    tasks: () => import("./tasks.ts").then((m) => m.tasksCommand),
    pools: () => import("./pools.ts").then((m) => m.poolsCommand),
    agents: () => import("./agents.ts").then((m) => m.agentsCommand),
    send: () => import("./send.ts").then((m) => m.sendCommand),
  },
});

if (import.meta.main) {
  dispatch(root, process.argv.slice(2), { name: "converge", version: pkg.version })
    .then((code) => process.exit(code))
    .catch((err) => process.exit(reportError(err, "converge")));
}

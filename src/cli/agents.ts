/** `converge agents list`: the agents registered in discovery, filtered by topic or capability. */
import { outputLine } from "../observability/log.ts";
import { defineCommand } from "citty";
import { DiscoveryService } from "../network/discovery.ts";
import { commonArgs, setup, withStore, type CommonArgs } from "./common.ts";
import { table } from "./table.ts";
import { commaList } from "./task-spec.ts";

const list = defineCommand({
  meta: { name: "list", description: "List registered agents: id, endpoint, capabilities, topics" },
  args: {
    ...commonArgs,
    topic: {
      type: "string",
      valueHint: "a,b",
      description: "Only agents with any of these topics (namespaces or full topic strings)",
    },
    capability: { type: "string", valueHint: "a,b", description: "Only agents with all of these capabilities" },
    json: { type: "boolean", description: "JSON lines, one descriptor each" },
  },
  async run({ args }) {
    const config = setup(args as CommonArgs);
    const agents = await withStore(config, (store) =>
      new DiscoveryService(store).query({ topics: commaList(args.topic), capabilities: commaList(args.capability) }),
    );
    if (args.json) {
      for (const a of agents) outputLine(JSON.stringify(a));
      return;
    }
    const rows = agents.map((a) => [
      a.id,
      a.endpoint ?? "-",
      a.capabilities.join(","),
      a.topics.map((t) => t.namespace).join(","),
      new Date(a.startedAt).toISOString(),
    ]);
    outputLine(table(["ID", "ENDPOINT", "CAPABILITIES", "TOPICS", "STARTED"], rows));
  },
});

export const agentsCommand = defineCommand({
  meta: { name: "agents", description: "Inspect agents registered in discovery" },
  subCommands: { list },
});

/** `converge pools list`: the pools in the shared store and their members. */
import { outputLine } from "../observability/log.ts";
import { defineCommand } from "citty";
import { PoolManager } from "../coordination/pool-manager.ts";
import { commonArgs, setup, withStore, type CommonArgs } from "./common.ts";
import { table } from "./table.ts";

const list = defineCommand({
  meta: { name: "list", description: "List pools with their admission policy and members" },
  args: { ...commonArgs, json: { type: "boolean", description: "JSON lines, one pool record each" } },
  async run({ args }) {
    const config = setup(args as CommonArgs);
    const pools = await withStore(config, (store) => new PoolManager(store).list());
    if (args.json) {
      for (const p of pools) outputLine(JSON.stringify(p));
      return;
    }
    const rows = pools.map((p) => [
      p.id,
      p.admission.type,
      String(p.agents.length),
      p.agents.map((a) => a.slice(0, 12)).join(","),
    ]);
    outputLine(table(["ID", "ADMISSION", "AGENTS", "MEMBERS"], rows));
  },
});

export const poolsCommand = defineCommand({
  meta: { name: "pools", description: "Inspect pools in the shared store" },
  subCommands: { list },
});

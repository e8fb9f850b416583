/** `converge tasks submit|list|get|cancel|retry`: operate on the tasks in the shared store. */
import { defineCommand } from "citty";
import { ConfigError, NotFoundError } from "../core/errors.ts";
import { printable, quoted } from "../core/text.ts";
import { isTaskState, type Task } from "../core/task.ts";
import { TaskManager } from "../coordination/task-manager.ts";
import { DiscoveryService } from "../network/discovery.ts";
import { commonArgs, jsonObjectArg, setup, withStore, type CommonArgs } from "./common.ts";
import { goneAgents } from "../network/liveness.ts";
import { ago, table } from "./table.ts";

const print = (s: string) => process.stdout.write(`${s}\n`);

function list(text: string | undefined): string[] {
  return (text ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

function positiveNumber(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0)
    throw new ConfigError(`--${name} must be a number of at least 0, got ${quoted(text)}`);
  return n;
}

const submit = defineCommand({
  meta: { name: "submit", description: "Submit a task to the shared store and print its id" },
  args: {
    ...commonArgs,
    objective: { type: "string", description: "What the task is for (free text)" },
    inputs: {
      type: "string",
      valueHint: "JSON|@FILE|-",
      description: "The task's inputs, a JSON object (default {}); @FILE reads it from a file, - from standard input",
    },
    id: {
      type: "string",
      description:
        "Task id (default: a new UUID); an existing id, an empty one or one with control characters is refused",
    },
    pool: { type: "string", description: "Only members of this pool may claim it" },
    capabilities: {
      type: "string",
      valueHint: "a,b",
      description: "Only agents with all of these capabilities may claim it",
    },
    constraints: {
      type: "string",
      valueHint: "JSON|@FILE|-",
      description: 'Constraints, a JSON object, e.g. \'{"claim_ttl_sec": 30, "max_retries": 2}\'; or @FILE, or -',
    },
    "claim-ttl-sec": {
      type: "string",
      description: "Lease length; an expired claim goes back to pending (constraint claim_ttl_sec)",
    },
    "max-retries": { type: "string", description: "Failed attempts retried this many times (constraint max_retries)" },
  },
  async run({ args }) {
    const config = setup(args as CommonArgs);
    const constraints = await jsonObjectArg("constraints", args.constraints, '{"max_retries": 2}');
    const inputs = await jsonObjectArg("inputs", args.inputs, '{"x": 1}');
    const ttl = positiveNumber("claim-ttl-sec", args["claim-ttl-sec"]);
    const retries = positiveNumber("max-retries", args["max-retries"]);
    if (ttl !== undefined) constraints.claim_ttl_sec = ttl;
    if (retries !== undefined) constraints.max_retries = Math.floor(retries);
    const task = await withStore(config, (store) =>
      new TaskManager(store).submit({
        id: args.id,
        objective: args.objective ?? "",
        inputs,
        poolId: args.pool ?? null,
        requiredCapabilities: list(args.capabilities),
        constraints,
      }),
    );
    print(task.id);
  },
});

const listTasks = defineCommand({
  meta: { name: "list", description: "List tasks: state, attempts, holder and time left on its lease" },
  args: {
    ...commonArgs,
    state: {
      type: "string",
      description: "Only tasks in this state: pending, assigned, running, completed, failed, cancelled",
    },
    json: { type: "boolean", description: "JSON lines, one task record each" },
  },
  async run({ args }) {
    const config = setup(args as CommonArgs);
    if (args.state !== undefined && !isTaskState(args.state))
      throw new ConfigError(
        `--state must be one of pending, assigned, running, completed, failed, cancelled; got ${quoted(args.state)}`,
      );
    await withStore(config, async (store) => {
      const tasks = await new TaskManager(store).list(args.state as Task["state"] | undefined);
      if (args.json) {
        for (const t of tasks) print(JSON.stringify(t));
        return;
      }
      const gone = await goneAgents(
        store,
        (await new DiscoveryService(store).list()).map((d) => d.id),
      );
      const now = await store.now();
      const rows = tasks.map((t) => {
        const held = t.assignedTo !== null && (t.state === "assigned" || t.state === "running");
        const holder = held ? `${t.assignedTo!.slice(0, 12)}${gone(t.assignedTo!) ? " (gone)" : ""}` : "";
        const lease =
          held && t.leaseExpiresAt ? (t.leaseExpiresAt > now ? ago(t.leaseExpiresAt - now) : "expired") : "";
        return [t.id, t.state, String(t.attempts), holder, lease, t.error ?? t.objective];
      });
      print(table(["ID", "STATE", "ATTEMPTS", "HOLDER", "LEASE LEFT", "OBJECTIVE / ERROR"], rows));
      print(`${tasks.length} task${tasks.length === 1 ? "" : "s"}`);
    });
  },
});

/**
 * A command on one task by id: `act` does it through a TaskManager and says what to print. A task
 * that does not exist is a NotFoundError (exit 3) for every one of them.
 */
function byId(name: string, description: string, act: (tasks: TaskManager, task: Task) => Promise<string>) {
  return defineCommand({
    meta: { name, description },
    args: { ...commonArgs, id: { type: "positional", description: "Task id", required: true } },
    async run({ args }) {
      const config = setup(args as CommonArgs);
      const out = await withStore(config, async (store) => {
        const tasks = new TaskManager(store);
        const task = await tasks.get(args.id);
        if (!task) throw new NotFoundError(`task ${printable(args.id)} does not exist`);
        return act(tasks, task);
      });
      print(out);
    },
  });
}

const get = byId("get", "Print one task record as JSON", async (_, task) => JSON.stringify(task, null, 2));
const cancel = byId(
  "cancel",
  "Cancel a task that is not finished",
  async (tasks, task) => `${(await tasks.cancel(task.id)).id} cancelled`,
);
const retry = byId(
  "retry",
  "Put a failed or cancelled task back to pending",
  async (tasks, task) => `${(await tasks.retry(task.id)).id} pending`,
);

export const tasksCommand = defineCommand({
  meta: { name: "tasks", description: "Submit, list, inspect, cancel and retry tasks in the shared store" },
  subCommands: { submit, list: listTasks, get, cancel, retry },
});

/** `converge tasks submit|list|get|cancel|retry|wait|clean`: operate on the tasks in the shared store. */
import { randomUUID } from "node:crypto";
import { defineCommand } from "citty";
import { ConfigError, ConvergeError, NotFoundError } from "../core/errors.ts";
import { parseDuration } from "../core/duration.ts";
import { printable, quoted } from "../core/text.ts";
import { FINAL_STATE_LIST, type FinalState, isTaskState, type Task, type TaskInit } from "../core/task.ts";
import { cleanFinished, describeRule, type RetentionRule } from "../coordination/retention.ts";
import { TaskManager } from "../coordination/task-manager.ts";
import { capabilityWarnings } from "../coordination/task-warnings.ts";
import { DiscoveryService } from "../network/discovery.ts";
import { goneAgents } from "../network/liveness.ts";
import { outputLine, stderrLine } from "../observability/log.ts";
import type { Store } from "../store/store.ts";
import { repeatable } from "./args.ts";
import { commonArgs, jsonObjectArg, setup, withStore, type CommonArgs } from "./common.ts";
import { ago, table } from "./table.ts";
import { readTaskFile } from "./task-file.ts";
import {
  commaList,
  initOf,
  parseClaimTtl,
  parseDelay,
  parseMaxRetries,
  parsePriority,
  parseTime,
  type TaskSpec,
} from "./task-spec.ts";
import { summarise, waitForTasks } from "./task-wait.ts";
import { fairTurn } from "../core/fair-turn.ts";

const print = outputLine;
/** Tasks per submitMany of a file (one batch of the store each). */
const FILE_BATCH = 500;

/** Warnings on stderr, as config warnings are (a log line with --log-format json). */
const warn = (message: string) => stderrLine("warn", "tasks", message);
/** A bad line of a task file on stderr (a log line with --log-format json). */
const badLine = (message: string) => stderrLine("error", "tasks", message);

function timeoutOf(text: string | undefined): number | undefined {
  return text === undefined ? undefined : parseDuration(text, "--timeout", { bareSeconds: true });
}

const submitArgs = {
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
    description:
      "Only agents with all of these capabilities may claim it (a warning when no registered agent has them)",
  },
  constraints: {
    type: "string",
    valueHint: "JSON|@FILE|-",
    description:
      'Constraints, a JSON object, e.g. \'{"claim_ttl_sec": 30, "max_retries": 2, "timeout_sec": 60}\'; or @FILE, ' +
      "or -; keys converge does not know draw a warning (they are kept for agents)",
  },
  "claim-ttl-sec": {
    type: "string",
    description: "Lease length; an expired claim goes back to pending (constraint claim_ttl_sec)",
  },
  "max-retries": { type: "string", description: "Failed attempts retried this many times (constraint max_retries)" },
  priority: {
    type: "string",
    valueHint: "N",
    description: "An integer; among tasks an agent may take, higher runs first, ties in submit order (default 0)",
  },
  delay: {
    type: "string",
    valueHint: "SEC",
    description: "Not claimable until this long from now: seconds, or a duration such as 90s, 15m, 2h",
  },
  "not-before": {
    type: "string",
    valueHint: "TIME",
    description: "Not claimable before this time: ISO 8601 (2030-01-02T03:04:05Z; UTC without a zone) or epoch ms",
  },
  file: {
    type: "string",
    valueHint: "FILE|-",
    description:
      "Submit JSON Lines, one task per line (fields as the options: objective, inputs, id, pool, capabilities, " +
      "constraints, priority, delay, not_before, claim_ttl_sec, max_retries); - reads standard input. Every line is " +
      "checked first: one bad line and nothing is submitted. The other options are defaults for every line. " +
      "Prints one id per line",
  },
  wait: {
    type: "boolean",
    description:
      "Wait until the task is finished: print its result (JSON) and exit 0 when completed, 1 when failed or " +
      "cancelled, 124 on --timeout; with --file, wait for them all and print a summary as tasks wait does",
  },
  timeout: {
    type: "string",
    valueHint: "SEC",
    description: "With --wait: give up after this long (seconds, or a duration such as 5m) and exit 124",
  },
} as const;

type SubmitArgs = CommonArgs & { [K in keyof typeof submitArgs]?: K extends "wait" ? boolean : string };

/** The options' task fields (defaults for every line of a file). */
async function optionSpec(args: SubmitArgs): Promise<TaskSpec> {
  const spec: TaskSpec = {};
  if (args.pool !== undefined) spec.pool = args.pool;
  if (args.capabilities !== undefined) spec.capabilities = commaList(args.capabilities);
  if (args.constraints !== undefined)
    spec.constraints = await jsonObjectArg("constraints", args.constraints, '{"max_retries": 2}');
  if (args["claim-ttl-sec"] !== undefined) spec.claimTtlSec = parseClaimTtl(args["claim-ttl-sec"], "--claim-ttl-sec");
  if (args["max-retries"] !== undefined)
    spec.maxRetries = Math.floor(parseMaxRetries(args["max-retries"], "--max-retries"));
  if (args.priority !== undefined) spec.priority = parsePriority(args.priority, "--priority");
  if (args.delay !== undefined && args["not-before"] !== undefined)
    throw new ConfigError("give --delay or --not-before, not both");
  if (args.delay !== undefined) spec.delayMs = parseDelay(args.delay, "--delay");
  if (args["not-before"] !== undefined) spec.notBefore = parseTime(args["not-before"], "--not-before");
  return spec;
}

function checkSubmitOptions(args: SubmitArgs): void {
  if (args.timeout !== undefined && !args.wait) throw new ConfigError("--timeout needs --wait (how long to wait)");
  if (args.file === undefined) return;
  for (const own of ["objective", "inputs", "id"] as const)
    if (args[own] !== undefined)
      throw new ConfigError(`--file takes each task's ${own} from its line; --${own} cannot be combined with it`);
  if (args.file === "-" && args.constraints === "-")
    throw new ConfigError("--file - and --constraints - cannot both read standard input");
}

/** Warns of capability sets no live registered agent has (one read of discovery, only when a task needs any). */
async function warnCapabilities(store: Store, inits: TaskInit[], warn: (m: string) => void): Promise<void> {
  if (!inits.some((i) => (i.requiredCapabilities ?? []).length > 0)) return;
  const agents = await new DiscoveryService(store).list();
  const gone = await goneAgents(
    store,
    agents.map((a) => a.id),
  );
  const live = agents.filter((a) => !gone(a.id));
  const tasks = inits.map((i) => ({ id: i.id!, requiredCapabilities: i.requiredCapabilities }));
  for (const w of capabilityWarnings(tasks, live)) warn(w.message);
}

const submit = defineCommand({
  meta: { name: "submit", description: "Submit a task (or a file of them) to the shared store and print its id" },
  args: submitArgs,
  async run({ args }) {
    const a = args as SubmitArgs;
    const config = setup(a);
    checkSubmitOptions(a);
    const defaults = await optionSpec(a);
    const timeoutMs = timeoutOf(a.timeout);
    // A file is read and checked whole before the store is opened: a bad line submits nothing.
    const lines = a.file !== undefined ? await readTaskFile(a.file, defaults, badLine) : undefined;
    const single: TaskSpec | undefined = lines
      ? undefined
      : { objective: a.objective, id: a.id, inputs: await jsonObjectArg("inputs", a.inputs, '{"x": 1}') };
    return withStore(config, async (store) => {
      const tm = new TaskManager(store, { onWarning: (w) => warn(w.message) });
      const now = await tm.now();
      const inits = (lines?.map((l) => l.spec) ?? [single!]).map((spec) => ({
        ...initOf(spec, defaults, now),
        id: spec.id ?? randomUUID(),
      }));
      await warnCapabilities(store, inits, warn);
      if (!lines) {
        const task = await tm.submit(inits[0]!);
        print(task.id);
        return a.wait ? printOutcome(await tm.waitFor(task.id, { timeoutMs })) : 0;
      }
      const existed = await submitLines(tm, inits, lines, warn);
      const code = a.wait
        ? summarise(
            await waitForTasks(
              tm,
              inits.map((i) => i.id!),
              timeoutMs,
            ),
            print,
            timeoutMs,
          )
        : 0;
      if (existed > 0)
        throw new ConvergeError(
          `${existed} line${existed === 1 ? "" : "s"} named a task that already existed; left as it was (see above)`,
        );
      return code;
    });
  },
});

/** Submits a file's tasks in batches, printing each batch's ids; returns how many ids already existed. */
async function submitLines(
  tm: TaskManager,
  inits: TaskInit[],
  lines: { line: number }[],
  warn: (m: string) => void,
): Promise<number> {
  let existed = 0;
  for (let i = 0; i < inits.length; i += FILE_BATCH) {
    const turn = fairTurn(); // a second Ctrl+C must still be heard during a long file
    if (turn) await turn;
    let results: Awaited<ReturnType<TaskManager["submitMany"]>>;
    try {
      results = await tm.submitMany(inits.slice(i, i + FILE_BATCH));
    } catch (err) {
      const done = i === 0 ? "nothing was submitted" : `lines up to ${lines[i - 1]!.line} were submitted (ids above)`;
      throw new ConvergeError(
        `${done}; from line ${lines[i]!.line} on, the tasks may not have been: ${(err as Error).message}. ` +
          "Submitting the file again is safe for lines with an id (existing tasks are left as they are)",
        { cause: err },
      );
    }
    for (const [j, r] of results.entries()) {
      if (r.created) continue;
      existed++;
      warn(`line ${lines[i + j]!.line}: task ${quoted(r.task.id, 80)} already exists; left as it is`);
    }
    print(results.map((r) => r.task.id).join("\n"));
  }
  return existed;
}

/** `submit --wait`: the result on stdout and exit 0, or why not and exit 1. */
function printOutcome(task: Task): number {
  if (task.state === "completed") {
    print(JSON.stringify(task.result ?? null));
    return 0;
  }
  const after = task.attempts > 0 ? ` after ${task.attempts} attempt${task.attempts === 1 ? "" : "s"}` : "";
  const why =
    task.state === "failed" ? `failed${after}: ${printable(task.error ?? "no reason given")}` : "was cancelled";
  throw new ConvergeError(`task ${quoted(task.id, 80)} ${why}`);
}

const listTasks = defineCommand({
  meta: {
    name: "list",
    description: "List tasks: state, priority, attempts, holder, time left on its lease, when a delayed one is due",
  },
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
        const due = t.state === "pending" && t.notBefore !== null && t.notBefore > now ? ago(t.notBefore - now) : "";
        return [t.id, t.state, String(t.priority), String(t.attempts), holder, lease, due, t.error ?? t.objective];
      });
      const headers = ["ID", "STATE", "PRIORITY", "ATTEMPTS", "HOLDER", "LEASE LEFT", "DUE IN", "OBJECTIVE / ERROR"];
      print(table(headers, rows));
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

const wait = defineCommand({
  meta: {
    name: "wait",
    description:
      "Wait until the named tasks (or, without --id, every open task) are finished; print what did not " +
      "complete and the counts; exit 0 when all completed, 1 when any failed or was cancelled, 124 on --timeout",
  },
  args: {
    ...commonArgs,
    id: repeatable({ type: "string", valueHint: "ID", description: "A task to wait for (repeatable)" }),
    timeout: {
      type: "string",
      valueHint: "SEC",
      description: "Give up after this long (seconds, or a duration such as 5m) and exit 124",
    },
  },
  async run({ args }) {
    const config = setup(args as CommonArgs);
    const timeoutMs = timeoutOf(args.timeout as string | undefined);
    const ids = args.id as string[] | undefined;
    return withStore(config, async (store) => {
      const result = await waitForTasks(new TaskManager(store), ids?.length ? ids : undefined, timeoutMs);
      if (result.tasks.size === 0) {
        print("0 tasks: none open");
        return 0;
      }
      return summarise(result, print, timeoutMs);
    });
  },
});

const clean = defineCommand({
  meta: {
    name: "clean",
    description: "Remove finished tasks older than a duration (or all but the newest N), in batches; print how many",
  },
  args: {
    ...commonArgs,
    state: {
      type: "string",
      valueHint: "completed|failed|cancelled",
      required: true,
      description: "Which finished tasks: completed, failed or cancelled (comma-separated for several)",
    },
    "older-than": {
      type: "string",
      valueHint: "DURATION",
      description: "Remove those finished longer ago than this: 30s, 15m, 12h, 7d, 2w",
    },
    keep: { type: "string", valueHint: "N", description: "Instead: keep the newest N of each state, remove the rest" },
  },
  async run({ args }) {
    const config = setup(args as CommonArgs);
    const states = commaList(args.state as string);
    for (const s of states)
      if (!(FINAL_STATE_LIST as readonly string[]).includes(s))
        throw new ConfigError(`--state must be completed, failed or cancelled (comma-separated), got ${quoted(s)}`);
    if (states.length === 0) throw new ConfigError("--state needs at least one of completed, failed, cancelled");
    const older = args["older-than"] as string | undefined;
    const keep = args.keep as string | undefined;
    if ((older === undefined) === (keep === undefined))
      throw new ConfigError("converge tasks clean needs one of --older-than DURATION or --keep N");
    if (keep !== undefined && !/^\d+$/.test(keep.trim()))
      throw new ConfigError(`--keep must be a whole number of tasks to keep, got ${quoted(keep)}`);
    const limit = older !== undefined ? { olderThanMs: parseDuration(older, "--older-than") } : { keep: Number(keep) };
    await withStore(config, async (store) => {
      const tm = new TaskManager(store);
      for (const state of [...new Set(states)] as FinalState[]) {
        const rule = { state, ...limit } as RetentionRule;
        const n = await cleanFinished(tm, rule);
        print(`removed ${n} ${describeRule(rule).replace(/^(\w+) tasks/, n === 1 ? "$1 task" : "$1 tasks")}`);
      }
    });
  },
});

export const tasksCommand = defineCommand({
  meta: {
    name: "tasks",
    description: "Submit, list, inspect, cancel, retry, wait for and clean up tasks in the shared store",
  },
  subCommands: { submit, list: listTasks, get, cancel, retry, wait, clean },
});

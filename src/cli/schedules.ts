/** `converge schedules add|list|remove`: repeating tasks in the shared store (coordination/schedules.ts). */
import { outputLine } from "../observability/log.ts";
import { defineCommand } from "citty";
import { ConfigError } from "../core/errors.ts";
import { quoted } from "../core/text.ts";
import { type Schedule, ScheduleManager } from "../coordination/schedules.ts";
import { TaskManager } from "../coordination/task-manager.ts";
import { commonArgs, jsonObjectArg, setup, withStore, type CommonArgs } from "./common.ts";
import { formatDuration, parseDuration } from "../core/duration.ts";
import type { Store } from "../store/store.ts";
import { table } from "./table.ts";
import { commaList } from "./task-spec.ts";

const print = outputLine;

function managerOn(store: Store): ScheduleManager {
  return new ScheduleManager(new TaskManager(store));
}

function integer(name: string, text: string | undefined, min: number): number | undefined {
  if (text === undefined) return undefined;
  if (!/^-?\d{1,10}$/.test(text.trim()) || Number(text) < min)
    throw new ConfigError(`--${name} must be a whole number${min === 0 ? " of at least 0" : ""}, got ${quoted(text)}`);
  return Number(text);
}

/** Epoch ms as this machine's local time with its UTC offset: 2026-03-01 09:00:00 +01:00. */
function localTime(ms: number): string {
  const d = new Date(ms);
  const two = (n: number) => String(n).padStart(2, "0");
  const off = -d.getTimezoneOffset();
  const sign = off < 0 ? "-" : "+";
  const zone = `${sign}${two(Math.floor(Math.abs(off) / 60))}:${two(Math.abs(off) % 60)}`;
  const date = `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}`;
  return `${date} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())} ${zone}`;
}

/** Epoch ms in UTC, without milliseconds when there are none: 2026-03-01T08:00:00Z. */
function utcTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.000Z$/, "Z");
}

function describeTiming(s: Schedule): string {
  const timing = s.everyMs !== null ? `every ${formatDuration(s.everyMs)}` : `cron ${s.cron} ${s.timezone}`;
  return s.catchUp > 0 ? `${timing}, catch-up ${s.catchUp}` : timing;
}

const add = defineCommand({
  meta: {
    name: "add",
    description:
      "Add a schedule that submits a task each time it is due (exactly once per due time, however many " +
      "converge run processes run the schedules); prints its id and next run",
  },
  args: {
    ...commonArgs,
    id: {
      type: "string",
      required: true,
      description: "Schedule id: 1 to 128 letters, digits, '.', '_' or '-'; each run's task is <id>@<due time in UTC>",
    },
    cron: {
      type: "string",
      valueHint: "EXPR",
      description:
        "Cron expression: 5 fields (minute hour day month weekday), 6 with seconds first, or @hourly, " +
        "@daily, @weekly, @monthly, @yearly",
    },
    timezone: {
      type: "string",
      valueHint: "TZ",
      description: "IANA time zone the cron expression is read in, e.g. Europe/Berlin (default: this machine's)",
    },
    every: {
      type: "string",
      valueHint: "DURATION",
      description: "Or an interval such as 30s, 5m, 1h30m, 1d (at least 1s), aligned to the Unix epoch in UTC",
    },
    "catch-up": {
      type: "string",
      valueHint: "N",
      description: "After downtime, also submit up to N missed runs (default 0: only the latest due one; at most 1000)",
    },
    objective: { type: "string", description: "What each task is for (free text)" },
    inputs: {
      type: "string",
      valueHint: "JSON|@FILE|-",
      description: "Each task's inputs, a JSON object (default {}); @FILE reads it from a file, - from standard input",
    },
    pool: { type: "string", description: "Only members of this pool may claim the tasks" },
    capabilities: {
      type: "string",
      valueHint: "a,b",
      description: "Only agents with all of these capabilities may claim the tasks",
    },
    constraints: {
      type: "string",
      valueHint: "JSON|@FILE|-",
      description: "Each task's constraints, a JSON object, e.g. '{\"max_retries\": 2}'; or @FILE, or -",
    },
    priority: { type: "string", valueHint: "N", description: "Each task's priority, an integer (higher runs first)" },
  },
  async run({ args }) {
    const config = setup(args as CommonArgs);
    if (args.cron === undefined && args.every === undefined)
      throw new ConfigError(
        "converge schedules add needs --cron EXPR or --every DURATION; see converge schedules add --help",
      );
    if (args.cron !== undefined && args.every !== undefined)
      throw new ConfigError("--cron and --every cannot both be given: a schedule has one timing");
    const everyMs = args.every === undefined ? undefined : parseDuration(args.every, "--every");
    const catchUp = integer("catch-up", args["catch-up"], 0);
    const priority = integer("priority", args.priority, -Infinity);
    const inputs = await jsonObjectArg("inputs", args.inputs, '{"x": 1}');
    const constraints = await jsonObjectArg("constraints", args.constraints, '{"max_retries": 2}');
    const s = await withStore(config, (store) =>
      managerOn(store).add({
        id: args.id,
        cron: args.cron,
        timezone: args.timezone,
        everyMs,
        catchUp,
        template: {
          objective: args.objective ?? "",
          inputs,
          constraints,
          poolId: args.pool ?? null,
          requiredCapabilities: commaList(args.capabilities),
          priority,
        },
      }),
    );
    print(`${s.id} next run ${s.nextRunAt === null ? "never" : `${localTime(s.nextRunAt)} (${utcTime(s.nextRunAt)})`}`);
  },
});

const listSchedules = defineCommand({
  meta: { name: "list", description: "List schedules: timing, next run (local time and UTC), last run and last task" },
  args: { ...commonArgs, json: { type: "boolean", description: "JSON lines, one schedule record each" } },
  async run({ args }) {
    const config = setup(args as CommonArgs);
    const schedules = await withStore(config, (store) => managerOn(store).list());
    if (args.json) {
      for (const s of schedules) print(JSON.stringify(s));
      return;
    }
    const rows = schedules.map((s) => [
      s.id,
      describeTiming(s),
      s.nextRunAt === null ? "never" : localTime(s.nextRunAt),
      s.nextRunAt === null ? "" : utcTime(s.nextRunAt),
      s.lastRunAt === null ? "" : utcTime(s.lastRunAt),
      s.lastTaskId ?? "",
    ]);
    print(table(["ID", "SCHEDULE", "NEXT RUN (LOCAL)", "NEXT RUN (UTC)", "LAST RUN (UTC)", "LAST TASK"], rows));
    print(`${schedules.length} schedule${schedules.length === 1 ? "" : "s"}`);
  },
});

const remove = defineCommand({
  meta: { name: "remove", description: "Remove a schedule (the tasks it submitted stay); exit 3 if there is none" },
  args: { ...commonArgs, id: { type: "positional", description: "Schedule id", required: true } },
  async run({ args }) {
    const config = setup(args as CommonArgs);
    await withStore(config, (store) => managerOn(store).remove(args.id));
    print(`${args.id} removed`);
  },
});

export const schedulesCommand = defineCommand({
  meta: {
    name: "schedules",
    description: "Add, list and remove repeating tasks (cron or interval) in the shared store",
  },
  subCommands: { add, list: listSchedules, remove },
});

/**
 * `converge tasks submit --file F` (or `-` for standard input): JSON Lines, one task per line, with
 * the fields of task-spec.ts. The whole file is read and checked before anything is submitted: a
 * bad line (not JSON, an unknown field, a bad value, an id that repeats) is reported with its line
 * number, and then nothing of the file is submitted, so a file is never half taken because of a
 * typo in line 9,000. Blank lines are skipped. The size is bounded (MAX_TASK_FILE_BYTES), and so
 * is each line (MAX_JSON_ARG_BYTES, as for an option's JSON).
 */
import { ConfigError } from "../core/errors.ts";
import { newTask } from "../core/task.ts";
import { printable, quoted } from "../core/text.ts";
import { boundedFileStream, MAX_JSON_ARG_BYTES } from "./common.ts";
import { initOf, specOfLine, type TaskSpec } from "./task-spec.ts";

/** The largest task file read (a million small tasks fit). */
export const MAX_TASK_FILE_BYTES = 256 * 1024 * 1024;
/** Bad lines shown one by one before the count. */
const SHOWN_BAD_LINES = 20;

export interface TaskLine {
  /** 1-based, as editors count. */
  line: number;
  spec: TaskSpec;
}

/**
 * Every non-blank line of `source` as a checked spec (with `defaults`, the command's options, for
 * the checks). A bad line is reported through `report` (the first SHOWN_BAD_LINES of them) and the
 * whole file is refused with a ConfigError that says how many were bad and that nothing was submitted.
 */
export async function readTaskFile(
  source: string,
  defaults: TaskSpec,
  report: (message: string) => void,
): Promise<TaskLine[]> {
  const name = source === "-" ? "standard input" : printable(source);
  const out: TaskLine[] = [];
  const ids = new Map<string, number>();
  let bad = 0;
  const fail = (message: string) => {
    if (++bad <= SHOWN_BAD_LINES) report(message);
  };
  let lineNo = 0;
  const take = (text: string) => {
    lineNo++;
    const where = `${name} line ${lineNo}`;
    if (text.trim() === "") return;
    if (text.length > MAX_JSON_ARG_BYTES) return fail(`${where} holds more than ${MAX_JSON_ARG_BYTES} bytes`);
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      return fail(`${where} is not JSON: ${printable((err as Error).message)}`);
    }
    try {
      const spec = specOfLine(value, where);
      newTask(initOf(spec, defaults, Date.now())); // every check submit would make
      if (spec.id !== undefined) {
        const first = ids.get(spec.id);
        if (first !== undefined) return fail(`${where}: id ${quoted(spec.id, 80)} is already the id of line ${first}`);
        ids.set(spec.id, lineNo);
      }
      out.push({ line: lineNo, spec });
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      fail(err.message.startsWith(where) ? err.message : `${where}: ${err.message}`);
    }
  };
  await readLines(source, name, take);
  if (bad > 0) {
    const more = bad > SHOWN_BAD_LINES ? ` (the first ${SHOWN_BAD_LINES} are shown)` : "";
    throw new ConfigError(
      `${name}: ${bad} of ${lineNo} line${lineNo === 1 ? " is" : "s are"} bad${more}; nothing was submitted`,
    );
  }
  if (out.length === 0) throw new ConfigError(`${name} holds no task (one JSON object per line)`);
  return out;
}

/** Calls `take` with each line of the file or standard input (without its line break), refusing more than the limit. */
async function readLines(source: string, name: string, take: (line: string) => void): Promise<void> {
  const stream = source === "-" ? Bun.stdin.stream() : boundedFileStream(source, `--file ${name}`, MAX_TASK_FILE_BYTES);
  const decoder = new TextDecoder();
  let total = 0;
  let rest = "";
  try {
    for await (const chunk of stream) {
      total += chunk.length;
      if (total > MAX_TASK_FILE_BYTES)
        throw new ConfigError(`--file ${name} holds more than ${MAX_TASK_FILE_BYTES} bytes; refusing it`);
      rest += decoder.decode(chunk, { stream: true });
      let nl = rest.indexOf("\n");
      let start = 0;
      for (; nl >= 0; nl = rest.indexOf("\n", start)) {
        take(stripCr(rest.slice(start, nl)));
        start = nl + 1;
      }
      rest = rest.slice(start);
      // A line still unfinished at this length is refused (with the file) before it grows further.
      if (rest.length > MAX_JSON_ARG_BYTES + 1)
        throw new ConfigError(`--file ${name}: a line holds more than ${MAX_JSON_ARG_BYTES} bytes; refusing the file`);
    }
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`--file ${name}: cannot read it: ${printable((err as Error).message)}`);
  }
  rest += decoder.decode();
  if (rest !== "") take(stripCr(rest));
}

function stripCr(line: string): string {
  return line.endsWith("\r") ? line.slice(0, -1) : line;
}

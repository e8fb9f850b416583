/**
 * Warnings at submit: tasks that are accepted but probably not what their submitter meant. A
 * constraint key converge does not know (constraints stay open: agents read keys of their own,
 * so it is only a warning) and a set of required capabilities that no registered agent has (the
 * task waits until one registers). Each problem is one warning for a whole batch, naming the first
 * task it concerns and how many more, so that a bulk submit says it once rather than per task.
 *
 * The constraint check needs nothing but the tasks; the capability check needs discovery, so it
 * runs where discovery is at hand (the CLI reads it once per command), never per task in submit.
 */
import { hasAllCapabilities } from "../core/capability.ts";
import { quoted } from "../core/text.ts";

/** The constraint keys converge, its LLM agents and its safety policy act on. */
export const KNOWN_CONSTRAINTS = [
  "claim_ttl_sec",
  "max_retries",
  "retry_backoff_ms",
  "timeout_sec",
  "output_schema",
  "cpu",
  "memory_mb",
] as const;
const KNOWN: ReadonlySet<string> = new Set(KNOWN_CONSTRAINTS);

export interface SubmitWarning {
  kind: "constraint" | "capabilities";
  /** The tasks it concerns, in submit order. */
  taskIds: string[];
  /** One line for people (outside values escaped). */
  message: string;
}

function tasksPhrase(ids: readonly string[]): string {
  const first = `task ${quoted(ids[0]!, 80)}`;
  return ids.length === 1 ? first : `${first} and ${ids.length - 1} more`;
}

/** One warning per constraint key that converge does not know, across these tasks. */
export function constraintWarnings(
  tasks: readonly { id: string; constraints?: Record<string, unknown> }[],
): SubmitWarning[] {
  const byKey = new Map<string, string[]>();
  for (const t of tasks) {
    for (const key of Object.keys(t.constraints ?? {})) {
      if (KNOWN.has(key)) continue;
      const ids = byKey.get(key) ?? [];
      if (ids.length === 0) byKey.set(key, ids);
      ids.push(t.id);
    }
  }
  return [...byKey].map(([key, ids]) => ({
    kind: "constraint",
    taskIds: ids,
    message:
      `unknown constraint key ${quoted(key, 80)} in ${tasksPhrase(ids)} (kept for agents that read it); ` +
      `converge knows ${KNOWN_CONSTRAINTS.join(", ")}`,
  }));
}

/**
 * One warning per set of required capabilities that no agent in `agents` has all of, across these
 * tasks (still accepted: a worker with them may register later).
 */
export function capabilityWarnings(
  tasks: readonly { id: string; requiredCapabilities?: readonly string[] }[],
  agents: readonly { capabilities: readonly string[] }[],
): SubmitWarning[] {
  const sets = agents.map((a) => new Set(a.capabilities));
  const bySet = new Map<string, { caps: string[]; ids: string[] }>();
  const served = new Map<string, boolean>();
  for (const t of tasks) {
    const caps = [...new Set(t.requiredCapabilities ?? [])].sort();
    if (caps.length === 0) continue;
    const key = JSON.stringify(caps);
    let ok = served.get(key);
    if (ok === undefined) served.set(key, (ok = sets.some((s) => hasAllCapabilities(s, caps))));
    if (ok) continue;
    const entry = bySet.get(key) ?? { caps, ids: [] };
    if (entry.ids.length === 0) bySet.set(key, entry);
    entry.ids.push(t.id);
  }
  return [...bySet.values()].map(({ caps, ids }) => ({
    kind: "capabilities",
    taskIds: ids,
    message:
      `no registered agent has ${caps.length === 1 ? "the capability" : "all of the capabilities"} ` +
      `${caps.map((c) => quoted(c, 80)).join(", ")} that ${tasksPhrase(ids)} ${ids.length === 1 ? "needs" : "need"}; ` +
      `accepted, ${ids.length === 1 ? "it waits" : "they wait"} until such an agent registers`,
  }));
}

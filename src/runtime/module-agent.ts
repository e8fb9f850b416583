/**
 * An Agent made from a plain object, the shape an agent module exports:
 * `{ capabilities?, topics?, decide?, onTask?, onMessage?, onStart?, onStop? }`.
 * Plain objects need no imports, so a module works inside the compiled binary too.
 */
import { Agent, type Decisions, type MessageContext, type TaskContext } from "../core/agent.ts";
import { ConfigError } from "../core/errors.ts";
import type { Identity } from "../core/identity.ts";
import type { Message } from "../core/message.ts";
import type { Task } from "../core/task.ts";
import { topic, type Topic } from "../core/topic.ts";

export interface AgentSpec {
  capabilities?: string[];
  topics?: (string | Topic)[];
  decide?(messages: readonly Message[], tasks: readonly Task[], agent: { id: string }): Decisions | Promise<Decisions>;
  onTask?(task: Task, ctx: TaskContext): unknown;
  onMessage?(message: Message, ctx: MessageContext): unknown;
  onStart?(agent: { id: string }): unknown;
  onStop?(agent: { id: string }): unknown;
}

const HOOKS = ["decide", "onTask", "onMessage", "onStart", "onStop"] as const;
const FIELDS = new Set<string>(["capabilities", "topics", ...HOOKS]);

function kindOf(v: unknown): string {
  return Array.isArray(v) ? "an array" : v === null ? "null" : `a ${typeof v}`;
}

/** Checks an agent module's export; throws ConfigError naming what is wrong. */
export function checkAgentSpec(spec: unknown, source: string): AgentSpec {
  if (typeof spec !== "object" || spec === null || Array.isArray(spec)) {
    throw new ConfigError(
      `agent module ${source} must export an object ` +
        "{ capabilities?, topics?, decide?, onTask?, onMessage?, onStart?, onStop? } " +
        `(or a function returning one, or an Agent subclass); got ${kindOf(spec)}`,
    );
  }
  const s = spec as Record<string, unknown>;
  for (const k of Object.keys(s)) {
    if (!FIELDS.has(k))
      throw new ConfigError(
        `agent module ${source} exports an unknown field "${k}"; allowed: ${[...FIELDS].join(", ")}`,
      );
  }
  for (const h of HOOKS) {
    if (s[h] !== undefined && typeof s[h] !== "function")
      throw new ConfigError(`agent module ${source}: ${h} must be a function, got ${typeof s[h]}`);
  }
  for (const list of ["capabilities", "topics"] as const) {
    const v = s[list];
    if (v === undefined) continue;
    if (!Array.isArray(v)) throw new ConfigError(`agent module ${source}: ${list} must be a list, got ${typeof v}`);
    if (list === "capabilities" && !v.every((x) => typeof x === "string"))
      throw new ConfigError(`agent module ${source}: capabilities must be a list of strings`);
    if (
      list === "topics" &&
      !v.every(
        (x) =>
          typeof x === "string" || (typeof x === "object" && x !== null && typeof (x as Topic).namespace === "string"),
      )
    ) {
      throw new ConfigError(
        `agent module ${source}: topics must be namespaces (strings) or { namespace, attributes?, version? }`,
      );
    }
  }
  if (!s.decide && !s.onTask && !s.onMessage) {
    throw new ConfigError(
      `agent module ${source} defines none of decide, onTask or onMessage, so its agents would do nothing`,
    );
  }
  return s as AgentSpec;
}

export class ModuleAgent extends Agent {
  constructor(
    readonly spec: AgentSpec,
    identity: Identity,
    extra: { capabilities?: string[]; topics?: string[] } = {},
  ) {
    super({
      identity,
      capabilities: [...new Set([...(spec.capabilities ?? []), ...(extra.capabilities ?? [])])],
      topics: [...(spec.topics ?? []), ...(extra.topics ?? [])].map((t) =>
        typeof t === "string" ? topic(t) : topic(t.namespace, t.attributes ?? {}, t.version ?? "1.0"),
      ),
    });
    // Only the hooks the module defines exist, so the runtime knows a worker from a decider.
    if (spec.onTask) this.onTask = (task, ctx) => spec.onTask!(task, ctx);
    if (spec.onMessage) this.onMessage = async (m, ctx) => void (await spec.onMessage!(m, ctx));
    if (spec.decide) this.decide = (messages, tasks) => spec.decide!(messages, tasks, { id: this.id });
  }

  override async onStart(): Promise<void> {
    await this.spec.onStart?.({ id: this.id });
  }

  override async onStop(): Promise<void> {
    await this.spec.onStop?.({ id: this.id });
  }
}

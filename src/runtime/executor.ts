/**
 * Carries out an agent's decisions through the network and the managers. Guards (action policy,
 * resource limits) are checked first; a decision that fails is logged with its reason and the rest
 * of the batch goes on. Every decision gets a result, so the agent sees, for instance, whether its
 * ClaimTask won: only a won claim (a lease held here) lets it report or fail that task.
 */
import type { Agent } from "../core/agent.ts";
import type { CustomDecision, Decision } from "../core/decisions.ts";
import { ConvergeError, TimeoutError } from "../core/errors.ts";
import { Message } from "../core/message.ts";
import type { ToolRegistry } from "../core/tools.ts";
import type { PoolManager } from "../coordination/pool-manager.ts";
import type { Lease, TaskManager } from "../coordination/task-manager.ts";
import { logger, type Logger } from "../observability/log.ts";
import type { LeaseRegistry } from "./leases.ts";
import type { Memberships } from "./memberships.ts";

export type AnyDecision = Decision | CustomDecision;

export type DecisionResult =
  | { decision: AnyDecision; ok: true; value: unknown }
  | { decision: AnyDecision; ok: false; error: string };

/** Returns a reason to refuse the decision, or undefined to let it through. */
export type DecisionGuard = (
  decision: AnyDecision,
  ctx: ExecutionContext,
) => string | undefined | Promise<string | undefined>;

export type DecisionHandler = (decision: AnyDecision, ctx: ExecutionContext) => unknown | Promise<unknown>;

export interface ExecutionContext {
  readonly agent: Agent;
  /** Signs (as the agent) and sends. */
  send(message: Message): Promise<void>;
  readonly taskManager?: TaskManager;
  readonly poolManager?: PoolManager;
  readonly tools?: ToolRegistry;
  /** Tool names the agent may invoke; every registered tool when omitted. */
  readonly toolAllowlist?: readonly string[];
  /** Pools this agent belongs to (JoinPool and LeavePool go through it). */
  readonly memberships: Memberships;
  /** Leases this agent holds, by task id (its worker's and its decisions'). */
  readonly leases: LeaseRegistry;
}

export class DecisionError extends ConvergeError {}

const DEFAULT_TOOL_TIMEOUT_MS = 30_000;

export class Executor {
  readonly #handlers = new Map<string, DecisionHandler>();
  readonly #guards: DecisionGuard[];
  readonly #log: Logger;
  readonly counts = new Map<string, { ok: number; failed: number }>();

  constructor(
    readonly ctx: ExecutionContext,
    options: { guards?: DecisionGuard[]; handlers?: Record<string, DecisionHandler> } = {},
  ) {
    this.#guards = options.guards ?? [];
    this.#log = logger("executor").child({ agent: ctx.agent.id.slice(0, 12) });
    for (const [type, h] of Object.entries(builtins)) this.#handlers.set(type, h);
    for (const [type, h] of Object.entries(options.handlers ?? {})) this.#handlers.set(type, h);
  }

  /** Adds or replaces the handler for a decision type (custom types, protocol decisions). */
  handle(type: string, handler: DecisionHandler): void {
    this.#handlers.set(type, handler);
  }

  async execute(decision: AnyDecision): Promise<DecisionResult> {
    let result: DecisionResult;
    try {
      if (typeof decision !== "object" || decision === null || typeof decision.type !== "string") {
        throw new DecisionError(`not a decision: ${JSON.stringify(decision)?.slice(0, 80)}`);
      }
      for (const guard of this.#guards) {
        const reason = await guard(decision, this.ctx);
        if (reason) throw new DecisionError(`refused by policy: ${reason}`);
      }
      const handler = this.#handlers.get(decision.type);
      if (!handler) throw new DecisionError(`no handler for decision type "${decision.type}"`);
      result = { decision, ok: true, value: await handler(decision, this.ctx) };
      this.#log.debug("executed decision", { type: decision.type });
    } catch (err) {
      const error = (err as Error)?.message ?? String(err);
      result = { decision, ok: false, error };
      this.#log.warn("decision failed", { type: (decision as { type?: unknown })?.type, reason: error });
    }
    const type = String((decision as { type?: unknown })?.type);
    const c = this.counts.get(type) ?? { ok: 0, failed: 0 };
    result.ok ? c.ok++ : c.failed++;
    this.counts.set(type, c);
    return result;
  }

  /** Executes in order; one failure never stops the rest. */
  async executeAll(decisions: readonly AnyDecision[]): Promise<DecisionResult[]> {
    const out: DecisionResult[] = [];
    for (const d of decisions) out.push(await this.execute(d));
    return out;
  }
}

function need<T>(v: T | undefined, what: string): T {
  if (v === undefined) throw new DecisionError(`no ${what} is configured for this agent`);
  return v;
}

/** A decision's field of the given type (strings non-empty), or a DecisionError naming it. */
export function field<T>(d: AnyDecision, name: string, type: "string" | "number" | "object"): T {
  const v = (d as Record<string, unknown>)[name];
  if (typeof v !== type || v === null || v === "") throw new DecisionError(`${d.type} needs a ${type} "${name}"`);
  return v as T;
}

const str = (d: AnyDecision, name: string): string => field<string>(d, name, "string");

function heldLease(ctx: ExecutionContext, taskId: string): Lease {
  const lease = ctx.leases.get(taskId);
  if (!lease) throw new DecisionError(`this agent holds no lease on task ${taskId} (its claim was lost or never made)`);
  return lease;
}

const builtins: Record<string, DecisionHandler> = {
  async SendMessage(d, ctx) {
    const m = (d as { message?: unknown }).message;
    if (typeof m !== "object" || m === null) throw new DecisionError("SendMessage needs a message");
    const message = m instanceof Message ? m : new Message(m as ConstructorParameters<typeof Message>[0]);
    await ctx.send(message);
    return message.id;
  },
  async CreatePool(d, ctx) {
    const pool = (d as { pool?: { id?: string } }).pool;
    if (!pool?.id) throw new DecisionError("CreatePool needs pool.id");
    const created = await need(ctx.poolManager, "pool manager").create(pool as { id: string });
    return created.id;
  },
  async JoinPool(d, ctx) {
    const poolId = str(d, "poolId");
    need(ctx.poolManager, "pool manager");
    await ctx.memberships.join(poolId, (d as { token?: string }).token);
    return poolId;
  },
  async LeavePool(d, ctx) {
    const poolId = str(d, "poolId");
    need(ctx.poolManager, "pool manager");
    await ctx.memberships.leave(poolId);
    return poolId;
  },
  async SubmitTask(d, ctx) {
    const task = (d as { task?: unknown }).task;
    if (typeof task !== "object" || task === null) throw new DecisionError("SubmitTask needs a task");
    return (await need(ctx.taskManager, "task manager").submit(task as object)).id;
  },
  async ClaimTask(d, ctx) {
    const taskId = str(d, "taskId");
    const lease = await need(ctx.taskManager, "task manager").claim(taskId, ctx.agent.id);
    if (!lease) throw new DecisionError(`claim on task ${taskId} lost: it is no longer pending`);
    ctx.leases.set(lease);
    return lease;
  },
  async ReportTask(d, ctx) {
    const taskId = str(d, "taskId");
    const lease = heldLease(ctx, taskId);
    try {
      await need(ctx.taskManager, "task manager").report(taskId, (d as { result?: unknown }).result ?? null, {
        agentId: ctx.agent.id,
        token: lease.token,
      });
    } finally {
      ctx.leases.delete(taskId);
    }
    return taskId;
  },
  async FailTask(d, ctx) {
    const taskId = str(d, "taskId");
    const lease = heldLease(ctx, taskId);
    try {
      const after = await need(ctx.taskManager, "task manager").fail(
        taskId,
        String((d as { error?: unknown }).error ?? "failed"),
        { agentId: ctx.agent.id, token: lease.token },
      );
      return after.state;
    } finally {
      ctx.leases.delete(taskId);
    }
  },
  async InvokeTool(d, ctx) {
    const name = str(d, "tool");
    const tools = need(ctx.tools, "tool registry");
    if (ctx.toolAllowlist && !ctx.toolAllowlist.includes(name))
      throw new DecisionError(`tool "${name}" is not in this agent's tool allowlist`);
    const tool = tools.get(name);
    if (!tool) throw new DecisionError(`no tool named "${name}" (registered: ${tools.list().join(", ") || "none"})`);
    const timeoutMs = Number((d as { timeoutMs?: unknown }).timeoutMs ?? DEFAULT_TOOL_TIMEOUT_MS);
    const abort = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        abort.abort();
        reject(new TimeoutError(`tool "${name}" did not finish within ${timeoutMs} ms`));
      }, timeoutMs);
    });
    try {
      return await Promise.race([
        Promise.resolve(tool.fn((d as { args?: Record<string, unknown> }).args ?? {}, abort.signal)),
        timeout,
      ]);
    } finally {
      clearTimeout(timer);
    }
  },
};

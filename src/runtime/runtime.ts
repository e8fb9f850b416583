/**
 * AgentRuntime runs one agent: start (agent.onStart, transport, discovery), a receive loop that
 * feeds a bounded inbox, and a decide loop — wait for a message, a task event or the poll timeout;
 * take the inbox and the pending tasks the agent may claim; call `agent.decide`; execute the
 * decisions. When it has a task manager it also releases expired claims periodically (the task
 * manager runs one reaper however many runtimes share it). `stop()` is idempotent and undoes
 * start in reverse.
 */
import { Agent, type MessageContext, type Verification } from "../core/agent.ts";
import { fairTurn } from "../core/fair-turn.ts";
import type { Message, MessageInit } from "../core/message.ts";
import type { ToolRegistry } from "../core/tools.ts";
import type { PoolManager } from "../coordination/pool-manager.ts";
import { TASKS_CHANNEL, type TaskManager } from "../coordination/task-manager.ts";
import type { AgentDescriptor, DiscoveryService } from "../network/discovery.ts";
import { sendSigned } from "../network/network.ts";
import { type Logger, logger, RateLimitedLog } from "../observability/log.ts";
import type { Store } from "../store/store.ts";
import type { KeyLookup, Transport } from "../transport/transport.ts";
import { Executor, type DecisionGuard, type DecisionHandler, type DecisionResult } from "./executor.ts";
import { Inbox } from "./inbox.ts";
import { LeaseRegistry } from "./leases.ts";
import { Memberships } from "./memberships.ts";
import { MessageGate, verificationOf, type VerifyMode } from "./message-gate.ts";
import { protocolHandlers, protocolManagers, type ProtocolManagers } from "./protocols.ts";
import { Scheduler } from "./scheduler.ts";
import { type Timers, TaskWorker } from "./worker.ts";

export interface RuntimeOptions {
  transport?: Transport;
  taskManager?: TaskManager;
  poolManager?: PoolManager;
  discovery?: DiscoveryService;
  /** Registered on start (with the transport's address as endpoint when it has none). */
  descriptor?: AgentDescriptor;
  /**
   * Senders' public keys for checking arrivals (message-gate.ts). When given without
   * `verifyMessages`, the mode is "strict": only messages whose signature verifies against the
   * sender's registered key are delivered (what this option has always meant).
   */
  identityRegistry?: KeyLookup;
  /**
   * How arrivals are checked against registered keys: "known" (default: a registered sender must
   * have signed; unknown senders are delivered unverified), "strict" (verified only), "off".
   * Keys come from `keys`, else `identityRegistry` then `discovery`.
   */
  verifyMessages?: VerifyMode;
  /** Where senders' keys are found, e.g. one `discovery.keys()` shared by a process's runtimes. */
  keys?: KeyLookup;
  /** How long delivered message ids are remembered to refuse replays (ms, default 600 000; 0: off). */
  replayWindowMs?: number;
  /** Timestamps further than this from now are refused under strict, flagged otherwise (ms, default 300 000). */
  maxClockSkewMs?: number;
  inboxSize?: number;
  /** Longest wait between decide passes when nothing happens (ms). */
  pollIntervalMs?: number;
  /** How often expired claims are released (ms). */
  releaseIntervalMs?: number;
  /** Writes `checkpoint:<agentId>` = { lastActivityTs } every `checkpointIntervalMs`. */
  checkpointStore?: Store;
  checkpointIntervalMs?: number;
  tools?: ToolRegistry;
  toolAllowlist?: string[];
  guards?: DecisionGuard[];
  handlers?: Record<string, DecisionHandler>;
  /** Managers for bids, votes, negotiation and delegation; made over the task manager's store when omitted. */
  protocols?: ProtocolManagers;
  /** Called once the runtime has started; and with every decide pass's results. */
  onReady?: () => void;
  /** For agents with `onTask`: where lease renewals, timeouts and the drain are timed (tests: a fake clock). */
  timers?: Timers;
  /** For agents with `onTask`: tasks run at once (default 1). */
  concurrency?: number;
  /**
   * For agents with `onTask`: how long running handlers may finish on stop before they are aborted
   * and their tasks handed back (ms, default 10 000).
   */
  shutdownGraceMs?: number;
  onResults?: (results: DecisionResult[]) => void;
  /**
   * Where failing decide passes are logged (one line, then at most one per 10 s with a count).
   * Give every runtime of a process the same one, so a store outage is one line, not one per agent.
   */
  passFailures?: RateLimitedLog;
}

export class AgentRuntime {
  readonly agent: Agent;
  readonly inbox: Inbox<Message>;
  /** Checks every arrival (signature, replay, clock skew) before the inbox. */
  readonly gate: MessageGate;
  readonly executor: Executor;
  /** Present when the agent has `onTask` and the runtime has a task manager. */
  readonly worker: TaskWorker | undefined;
  /** The pools this agent belongs to. */
  readonly memberships: Memberships;
  /** The leases this agent holds (its worker's and its decisions'). */
  readonly leases = new LeaseRegistry();
  readonly #scheduler = new Scheduler();
  readonly #passFailures: RateLimitedLog;
  #reaping = false;
  readonly #log: Logger;
  #state: "new" | "starting" | "running" | "stopping" | "stopped" = "new";
  #loops: Promise<void>[] = [];
  #timers: ReturnType<typeof setInterval>[] = [];
  #unsubscribe: (() => void) | undefined;
  #detach: (() => void) | undefined;
  #stopping: Promise<void> | undefined;
  #lastActivity = Date.now();
  decidePasses = 0;
  messagesSent = 0;

  constructor(
    agent: Agent,
    readonly options: RuntimeOptions = {},
  ) {
    this.agent = agent;
    this.inbox = new Inbox(options.inboxSize ?? 1000);
    this.#log = logger("runtime").child({ agent: agent.id.slice(0, 12) });
    this.memberships = new Memberships(agent.id, options.poolManager);
    this.#passFailures = options.passFailures ?? new RateLimitedLog(logger("runtime"), { level: "error" });
    this.gate = new MessageGate({
      mode: options.verifyMessages ?? (options.identityRegistry ? "strict" : "known"),
      keys: options.keys ?? chainKeys(options.identityRegistry, options.discovery?.keys()),
      replayWindowMs: options.replayWindowMs,
      maxClockSkewMs: options.maxClockSkewMs,
      log: logger("runtime.gate").child({ agent: agent.id.slice(0, 12) }),
    });
    this.executor = new Executor(
      {
        agent,
        send: (m) => this.send(m),
        taskManager: options.taskManager,
        poolManager: options.poolManager,
        tools: options.tools,
        toolAllowlist: options.toolAllowlist,
        memberships: this.memberships,
        leases: this.leases,
      },
      { guards: options.guards, handlers: { ...this.#protocolHandlers(), ...options.handlers } },
    );
    const tm = options.taskManager;
    this.worker =
      agent.onTask && tm
        ? new TaskWorker(
            agent as Agent & { onTask: NonNullable<Agent["onTask"]> },
            tm,
            {
              send: (m) => this.send(m),
              wake: () => this.wake(),
              scope: () => ({ pools: this.memberships.ids, capabilities: this.agent.capabilities }),
              leases: this.leases,
            },
            { concurrency: options.concurrency, timers: options.timers },
          )
        : undefined;
  }

  #protocolHandlers(): Record<string, DecisionHandler> {
    const managers =
      this.options.protocols ??
      (this.options.taskManager ? protocolManagers(this.options.taskManager.store) : undefined);
    return managers ? protocolHandlers(managers) : {};
  }

  /** Signs as this agent and sends through its transport. */
  async send(message: Message | MessageInit): Promise<void> {
    const transport = this.options.transport;
    if (!transport) throw new Error(`agent ${this.id.slice(0, 12)} has no transport to send with`);
    await sendSigned(transport, this.agent.identity, message);
    this.messagesSent++;
  }

  get id(): string {
    return this.agent.id;
  }

  get running(): boolean {
    return this.#state === "running";
  }

  /** Wakes the decide loop now (e.g. after submitting work in this process). */
  wake(): void {
    this.#scheduler.wake();
  }

  /**
   * Registers the descriptor in discovery, with the transport's address as endpoint when it has
   * none (a no-op without discovery or a descriptor). start() does it; call it again to register
   * anew, e.g. after the store lost its data.
   */
  async register(): Promise<void> {
    const { discovery, descriptor, transport } = this.options;
    if (!discovery || !descriptor) return;
    await discovery.register({ ...descriptor, endpoint: descriptor.endpoint ?? transport?.address ?? null });
  }

  async start(): Promise<void> {
    if (this.#state !== "new") throw new Error(`runtime for agent ${this.id.slice(0, 12)} was already started`);
    this.#state = "starting";
    const { transport, taskManager, poolManager } = this.options;
    const reaperLog = logger("runtime.reaper");
    await this.agent.onStart();
    try {
      if (transport) await transport.start();
      if (poolManager) await this.memberships.load();
      await this.register();
    } catch (err) {
      this.#state = "stopped";
      await transport?.stop().catch(() => {});
      await Promise.resolve(this.agent.onStop()).catch(() => {});
      throw err;
    }
    if (taskManager) {
      this.#unsubscribe = taskManager.store.subscribe(TASKS_CHANNEL, () => this.#scheduler.wake());
      this.#reaping = true;
      taskManager.startReaper(this.options.releaseIntervalMs ?? 1000, (ids, err) =>
        err
          ? reaperLog.warn("releasing expired claims failed", { err })
          : reaperLog.info("released expired claims", { count: ids.length }),
      );
    }
    if (this.options.checkpointStore) {
      const store = this.options.checkpointStore;
      this.#timers.push(
        setInterval(
          () =>
            void store
              .put(`checkpoint:${this.id}`, { lastActivityTs: this.#lastActivity })
              .catch((err) => this.#log.warn("checkpoint failed", { err })),
          this.options.checkpointIntervalMs ?? 5000,
        ),
      );
    }
    this.#state = "running";
    if (transport) this.#listen(transport);
    // The first pass runs at once: work that is already pending (after a restart, or submitted
    // before our wake-up subscription took effect) must not wait for the first poll timeout.
    this.#scheduler.wake();
    this.#loops.push(this.#decideLoop());
    this.options.onReady?.();
  }

  /** Arrivals go into the inbox once the gate has checked them (a sender's messages in order). */
  #listen(transport: Transport): void {
    const accept = (m: Message, v: Verification) => {
      this.#lastActivity = Date.now();
      // Log the first drop of a burst and then every 1000th, not one line per message.
      if (!this.inbox.push(m) && this.inbox.dropped % 1000 === 1)
        this.#log.warn("inbox full, messages dropped", { size: this.inbox.maxSize, dropped: this.inbox.dropped });
      if (this.#log.enabled("debug"))
        this.#log.debug("received message", {
          id: m.id,
          sender: m.sender.slice(0, 12),
          verified: v.status === "unknown sender" ? v.status : v.verified,
          ...(v.clockSkewMs !== null ? { clockSkewMs: v.clockSkewMs } : {}),
        });
      this.#scheduler.wake();
    };
    this.#detach = transport.onMessage((m) => this.gate.submit(m, accept));
  }

  async #decideLoop(): Promise<void> {
    const poll = this.options.pollIntervalMs ?? 1000;
    while (this.#state === "running") {
      await this.#scheduler.wait(poll);
      const turn = fairTurn(); // a wake-up may come from this chain itself (a worker's free slot)
      if (turn) await turn;
      if (this.#state !== "running") break;
      try {
        await this.pass();
      } catch (err) {
        this.#passFailures.write("decide pass failed", { err });
        await Bun.sleep(Math.min(poll, 250));
      }
    }
  }

  /** One decide pass: tick, gather, decide, execute. Public so tests and embedders can drive it. */
  async pass(): Promise<DecisionResult[]> {
    await this.agent.onTick();
    const messages = this.inbox.drain();
    if (this.agent.onMessage) for (const m of messages) await this.#deliver(m);
    const tm = this.options.taskManager;
    // Only an agent with a decide of its own looks at pending work; a worker claims what is best.
    const tasks =
      tm && this.agent.decide !== Agent.prototype.decide
        ? await tm.pendingFor(this.id, this.memberships.ids, this.agent.capabilities)
        : [];
    const decisions = await this.agent.decide(messages, tasks);
    this.decidePasses++;
    let results: DecisionResult[] = [];
    if (Array.isArray(decisions) && decisions.length > 0) {
      this.#lastActivity = Date.now();
      results = await this.executor.executeAll(decisions);
      this.options.onResults?.(results);
    }
    if (this.worker) await this.worker.fill();
    return results;
  }

  async #deliver(m: Message): Promise<void> {
    const verification = verificationOf(m) ?? NOT_CHECKED;
    const ctx: MessageContext = {
      agentId: this.id,
      verified: verification.verified,
      verification,
      reply: (payload) => this.send({ recipient: m.sender, payload, taskId: m.taskId }),
      send: (message) => this.send(message),
    };
    try {
      await this.agent.onMessage!(m, ctx);
    } catch (err) {
      this.#log.warn("onMessage failed", { id: m.id, err });
    }
  }

  /** Stops the loops, unregisters from discovery, stops the transport, calls onStop. Idempotent. */
  stop(): Promise<void> {
    if (!this.#stopping) this.#stopping = this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    const wasStarted = this.#state === "running";
    this.#state = "stopping";
    this.#scheduler.wake();
    if (this.worker) {
      const { finished, released } = await this.worker.drain(this.options.shutdownGraceMs ?? 10_000);
      if (finished || released) this.#log.info("worker drained", { finished, released });
    }
    this.#unsubscribe?.();
    this.#detach?.();
    this.gate.flush();
    for (const t of this.#timers) clearInterval(t);
    if (this.#reaping) this.options.taskManager?.stopReaper();
    this.#reaping = false;
    await Promise.allSettled(this.#loops);
    if (wasStarted) {
      const { discovery, transport } = this.options;
      if (discovery && this.options.descriptor)
        await discovery
          .unregister(this.id)
          .catch((err) => this.#log.warn("could not unregister from discovery", { err }));
      await transport?.stop().catch((err) => this.#log.warn("transport stop failed", { err }));
      await Promise.resolve(this.agent.onStop()).catch((err) => this.#log.warn("onStop failed", { err }));
    }
    this.#state = "stopped";
  }
}

/** For a message that reached the inbox some other way (pushed by an embedder). */
const NOT_CHECKED: Verification = Object.freeze({ verified: false, status: "not checked", clockSkewMs: null });

/** Keys from `first`, then `second` for senders `first` does not know. */
function chainKeys(first: KeyLookup | undefined, second: KeyLookup | undefined): KeyLookup | undefined {
  if (!first || !second) return first ?? second;
  return {
    get: (id) => {
      const k = first.get(id);
      if (k instanceof Promise) return k.then((found) => found ?? second.get(id));
      return k ?? second.get(id);
    },
  };
}

/**
 * Builds and starts what `converge run` hosts, in the manual's order: the store, discovery when a
 * store is configured, shared pool and task managers when there are several agents, a pool or a
 * worker module, the pool (created if absent), then for each agent an identity, an Agent, a
 * transport, a descriptor and an AgentRuntime; all started together. `stop()` undoes it all.
 */
import { hostname, networkInterfaces } from "node:os";
import { resolve } from "node:path";
import { Agent } from "../core/agent.ts";
import { ConvergeError } from "../core/errors.ts";
import { Identity } from "../core/identity.ts";
import { topic } from "../core/topic.ts";
import { PoolManager } from "../coordination/pool-manager.ts";
import { RetentionLoop } from "../coordination/retention.ts";
import { ScheduleManager } from "../coordination/schedules.ts";
import { TaskManager } from "../coordination/task-manager.ts";
import { DiscoveryService, descriptorFor, endpointResolver } from "../network/discovery.ts";
import { IdentityRegistry } from "../network/identity-registry.ts";
import { HealthWatch } from "../observability/health-watch.ts";
import { type HealthServer, startHealthServer } from "../observability/http.ts";
import { logger, RateLimitedLog } from "../observability/log.ts";
import { ProcessMetrics } from "../observability/process-metrics.ts";
import { collectMetrics, StoreTaskCounts } from "../runtime/metrics.ts";
import { AgentRuntime } from "../runtime/runtime.ts";
import { MemoryStore } from "../store/memory.ts";
import { openStore } from "./store-config.ts";
import type { Store } from "../store/store.ts";
import { LocalTransport } from "../transport/local.ts";
import { TcpTransport } from "../transport/tcp.ts";
import type { Transport } from "../transport/transport.ts";
import { loadAgentModule, type AgentFactory } from "./agent-module.ts";
import type { LlmSetup } from "../llm/setup.ts";
import type { Config } from "./config.ts";
import { type Heartbeat, heartbeatMsFor, startHeartbeat } from "../network/liveness.ts";
import { listenerLimits, messageChecks, tlsOptions } from "./transport-config.ts";

const log = logger("run");

export interface Fleet {
  readonly runtimes: AgentRuntime[];
  readonly store: Store | undefined;
  readonly discovery: DiscoveryService | undefined;
  readonly tasks: TaskManager | undefined;
  readonly pools: PoolManager | undefined;
  readonly poolId: string | undefined;
  readonly agentModule: string | undefined;
  /** What the `llm` mapping set up, e.g. "openai gpt-4o-mini, worker". */
  readonly llm: string | undefined;
  /** http://host:port of /healthz, /readyz and /metrics when http_port is set. */
  readonly httpUrl: string | undefined;
  /** The schedule runner, on whenever a shared store is configured (config key `schedules`). */
  readonly schedules: ScheduleManager | undefined;
  /** Removing finished tasks (config key `retention`), on whenever it is configured and there is a store. */
  readonly retention: RetentionLoop | undefined;
  stop(): Promise<void>;
}

/**
 * What other machines should dial: the listening address, except that an agent bound to every
 * interface (0.0.0.0, ::) advertises this host's first external IPv4 address (or its hostname);
 * null lets the runtime take the transport's own address.
 */
export function advertisedEndpoint(host: string, port: number, scheme = "tcp"): string | null {
  if (host !== "0.0.0.0" && host !== "::") return null;
  const external = Object.values(networkInterfaces())
    .flat()
    .find((a) => a && a.family === "IPv4" && !a.internal);
  return `${scheme}://${external?.address ?? hostname()}:${port}`;
}

/** Agent i's TCP port: `port + i`, or 0 (the kernel picks a free one for each agent) when port is 0. */
export function agentPort(config: Pick<Config, "port">, i: number): number {
  return config.port === 0 ? 0 : config.port + i;
}

/** Agent i keeps its identity in `<dir>/agent-<i>.key`, created on first use. */
export function identityFor(config: Config, i: number): Identity {
  if (!config.identity_dir) return Identity.generate();
  // Like `agent`, a relative identity_dir is relative to the config file (else the working directory).
  const file = resolve(config.configDir ?? process.cwd(), config.identity_dir, `agent-${i}.key`);
  try {
    return Identity.load(file);
  } catch (err) {
    if (!(err as Error).message.includes("does not exist")) throw err;
    const id = Identity.generate();
    id.save(file);
    return id;
  }
}

/** What start registered, registered again: each running agent's descriptor, and pool membership. */
async function registerAgain(
  runtimes: AgentRuntime[],
  pool: { pools: PoolManager; poolId: string } | undefined,
): Promise<void> {
  for (const r of runtimes) if (r.running) await r.register();
  if (!pool) return;
  await pool.pools.create({ id: pool.poolId });
  for (const r of runtimes) if (r.running) await r.memberships.join(pool.poolId);
}

export async function startFleet(config: Config): Promise<Fleet> {
  let make: AgentFactory;
  let agentModule: string | undefined;
  const extra = { capabilities: config.capabilities, topics: config.topics };
  // The LLM part is loaded only when configured; its key and files are checked before anything starts.
  const llm: LlmSetup | undefined = config.llm
    ? (await import("../llm/setup.ts")).prepareLlm(config.llm, process.env)
    : undefined;
  if (config.agent) {
    const loaded = await loadAgentModule(config.agent, config.configDir ?? process.cwd(), extra, llm?.api);
    make = loaded.make;
    agentModule = loaded.file;
  } else if (llm) {
    make = (identity) => llm.agentFor(identity, extra);
  } else {
    make = (identity) =>
      new Agent({ identity, capabilities: [...extra.capabilities], topics: extra.topics.map((t) => topic(t)) });
  }

  // Read before the store opens: a missing certificate file is one line, with nothing to undo.
  const tcp = config.transport === "tcp" ? { tls: tlsOptions(config), limits: listenerLimits(config) } : undefined;
  const configured = await openStore(config);
  const needsManagers =
    config.agents > 1 || config.pool_id !== undefined || config.agent !== undefined || llm !== undefined;
  const store = configured ?? (needsManagers ? new MemoryStore() : undefined);
  const runtimes: AgentRuntime[] = [];
  const transports: Transport[] = [];
  // While the store is down every agent's pass fails: one line for the process, not one per agent.
  const passFailures = new RateLimitedLog(logger("runtime"), { level: "error" });
  let joined = false;
  /** Why /readyz is 503: "starting" until every agent runs, "draining" from the moment stop begins. */
  let notReady: string | null = "starting";
  let http: HealthServer | undefined;
  let heartbeat: Heartbeat | undefined;
  const discovery = configured ? new DiscoveryService(configured) : undefined;
  const tasks = needsManagers ? new TaskManager(store!, { defaultClaimTtlSec: config.claim_ttl_sec }) : undefined;
  const pools = needsManagers ? new PoolManager(store!) : undefined;
  // Every process on a shared store may run the schedules: each due run is submitted once anyway.
  const runSchedules = configured !== undefined && configured.description !== "memory" && config.schedules;
  // One task manager for the schedule runner and retention: the agents' own, or (for one plain
  // agent, which needs none) one of their own on the configured store.
  const storeTasks =
    tasks ??
    (configured && (runSchedules || config.retention)
      ? new TaskManager(configured, { defaultClaimTtlSec: config.claim_ttl_sec })
      : undefined);
  const schedules = runSchedules ? new ScheduleManager(storeTasks!) : undefined;
  // One process of the fleet at a time cleans (a lease in the store); every process may try.
  const retention = config.retention && storeTasks ? new RetentionLoop(storeTasks, config.retention) : undefined;
  // Said in the log when the store turns unhealthy or recovers, with or without http_port.
  const health = store?.health ? new HealthWatch({ check: () => store.health!(), log: logger("health") }) : undefined;
  const processMetrics = config.http_port !== undefined ? new ProcessMetrics() : undefined;
  const taskCounts = tasks ? new StoreTaskCounts(tasks) : undefined;

  // The reverse of start: runtimes (drain, unregister, transport), pool membership, store.
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      notReady = "draining";
      const step = (what: string) => (err: unknown) => log.warn(`${what} failed during shutdown`, { err });
      await retention?.stop().catch(step("stopping retention"));
      await schedules?.stop().catch(step("stopping the schedule runner"));
      processMetrics?.stop();
      // Before anything closes: a store closing is not a store turning unhealthy.
      await health?.stop();
      // First, so that no beat mistakes the agents unregistering below for a store that lost them.
      await heartbeat?.stop().catch(step("removing this process's heartbeat"));
      await Promise.all(runtimes.map((r) => r.stop().catch(step("stopping an agent"))));
      await llm?.close().catch(step("stopping the MCP servers"));
      // Those bound before their runtime started (a runtime stops its own; stopping twice is a no-op).
      await Promise.all(transports.map((t) => t.stop().catch(step("stopping a transport"))));
      if (joined)
        await Promise.all(runtimes.map((r) => pools!.leave(config.pool_id!, r.id).catch(step("leaving the pool"))));
      await http?.stop().catch(step("stopping the health server"));
      // The last reports' wake-up of waiters elsewhere (held back at most 10 ms) goes out first.
      await tasks?.settle().catch(step("announcing the last finished tasks"));
      await store?.close().catch(step("closing the store"));
    })());

  // Every arrival is checked against the senders' keys: this process's own agents, then discovery.
  const registry = new IdentityRegistry();
  const keys = discovery ? discovery.keys(registry) : registry;
  const checks = messageChecks(config);

  try {
    if (config.http_port !== undefined) {
      http = startHealthServer({
        host: config.host,
        port: config.http_port,
        // The store says whether real writes succeed and what its backend alone can see (store/front.ts).
        health: store?.health ? () => store.health!() : undefined,
        ready: () => notReady,
        metrics: async () => {
          const m = collectMetrics(runtimes);
          await taskCounts?.addTo(m);
          health?.addTo(m);
          processMetrics?.addTo(m);
          llm?.addMetrics(m);
          return m.render();
        },
      });
      processMetrics?.start();
    }
    if (config.pool_id) await pools!.create({ id: config.pool_id });
    await llm?.bind(store!);
    for (let i = 0; i < config.agents; i++) {
      const agent = make(identityFor(config, i));
      registry.register(agent.identity);
      let transport: Transport;
      let endpoint: string | null = null;
      if (tcp) {
        const listener = new TcpTransport({
          host: config.host,
          port: agentPort(config, i),
          resolve: discovery ? endpointResolver(discovery) : undefined,
          ...tcp,
        });
        // Bound now, before any agent starts: a port in use fails at once, and with port 0 the
        // kernel's choice is known for the endpoint advertised in discovery.
        transports.push(listener);
        await listener.start();
        endpoint = advertisedEndpoint(config.host, listener.port, listener.scheme);
        transport = listener;
      } else {
        transport = new LocalTransport({ agentId: agent.id, subscriptions: agent.topics });
      }
      runtimes.push(
        new AgentRuntime(agent, {
          transport,
          taskManager: tasks,
          poolManager: pools,
          discovery,
          descriptor: discovery ? descriptorFor(agent, endpoint) : undefined,
          verifyMessages: checks.mode,
          keys,
          replayWindowMs: checks.replayWindowMs,
          maxClockSkewMs: checks.maxClockSkewMs,
          concurrency: config.concurrency,
          shutdownGraceMs: config.shutdown_grace_sec * 1000,
          passFailures,
        }),
      );
    }
    const started = await Promise.allSettled(runtimes.map((r) => r.start()));
    const failed = started.find((s) => s.status === "rejected") as PromiseRejectedResult | undefined;
    if (failed) throw failed.reason;
    if (config.pool_id) {
      joined = true;
      for (const r of runtimes) await r.memberships.join(config.pool_id);
    }
    // So that operator commands can tell agents of a killed process from live ones, and so that a
    // store that lost its data gets this process's registrations back (see network/liveness.ts).
    if (discovery)
      heartbeat = await startHeartbeat(
        configured!,
        runtimes.map((r) => r.id),
        heartbeatMsFor(config.claim_ttl_sec),
        {
          restore: () => registerAgain(runtimes, joined ? { pools: pools!, poolId: config.pool_id! } : undefined),
        },
      );
    schedules?.start();
    retention?.start();
  } catch (err) {
    await stop();
    if (err instanceof ConvergeError) throw err;
    throw new ConvergeError(`could not start: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }
  notReady = null;
  health?.start();
  return {
    runtimes,
    store,
    discovery,
    tasks,
    pools,
    poolId: config.pool_id,
    agentModule,
    llm: llm?.description,
    httpUrl: http?.url,
    schedules,
    retention,
    stop,
  };
}

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
import { TaskManager } from "../coordination/task-manager.ts";
import { DiscoveryService, descriptorFor, endpointResolver } from "../network/discovery.ts";
import { IdentityRegistry } from "../network/identity-registry.ts";
import { startHealthServer } from "../observability/http.ts";
import { logger } from "../observability/log.ts";
import { collectMetrics } from "../runtime/metrics.ts";
import { AgentRuntime } from "../runtime/runtime.ts";
import { MemoryStore } from "../store/memory.ts";
import { openStore } from "../store/open.ts";
import type { Store } from "../store/store.ts";
import { LocalTransport } from "../transport/local.ts";
import { TcpTransport } from "../transport/tcp.ts";
import type { Transport } from "../transport/transport.ts";
import { loadAgentModule, type AgentFactory } from "./agent-module.ts";
import type { Config } from "./config.ts";
import { heartbeatMsFor, startHeartbeat } from "./liveness.ts";
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
  /** http://host:port of /healthz, /readyz and /metrics when http_port is set. */
  readonly httpUrl: string | undefined;
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

export async function startFleet(config: Config): Promise<Fleet> {
  let make: AgentFactory;
  let agentModule: string | undefined;
  const extra = { capabilities: config.capabilities, topics: config.topics };
  if (config.agent) {
    const loaded = await loadAgentModule(config.agent, config.configDir ?? process.cwd(), extra);
    make = loaded.make;
    agentModule = loaded.file;
  } else {
    make = (identity) =>
      new Agent({ identity, capabilities: [...extra.capabilities], topics: extra.topics.map((t) => topic(t)) });
  }

  // Read before the store opens: a missing certificate file is one line, with nothing to undo.
  const tcp = config.transport === "tcp" ? { tls: tlsOptions(config), limits: listenerLimits(config) } : undefined;
  const configured = await openStore(config);
  const needsManagers = config.agents > 1 || config.pool_id !== undefined || config.agent !== undefined;
  const store = configured ?? (needsManagers ? new MemoryStore() : undefined);
  const runtimes: AgentRuntime[] = [];
  let joined = false;
  let ready = false;
  let http: ReturnType<typeof startHealthServer> | undefined;
  let heartbeat: { stop(): Promise<void> } | undefined;
  const discovery = configured ? new DiscoveryService(configured) : undefined;
  const tasks = needsManagers ? new TaskManager(store!, { defaultClaimTtlSec: config.claim_ttl_sec }) : undefined;
  const pools = needsManagers ? new PoolManager(store!) : undefined;

  // The reverse of start: runtimes (drain, unregister, transport), pool membership, store.
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      const step = (what: string) => (err: unknown) => log.warn(`${what} failed during shutdown`, { err });
      await Promise.all(runtimes.map((r) => r.stop().catch(step("stopping an agent"))));
      await heartbeat?.stop().catch(step("removing this process's heartbeat"));
      if (joined)
        await Promise.all(runtimes.map((r) => pools!.leave(config.pool_id!, r.id).catch(step("leaving the pool"))));
      await http?.stop().catch(step("stopping the health server"));
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
        store,
        ready: () => ready,
        metrics: () => collectMetrics(runtimes).render(),
      });
    }
    if (config.pool_id) await pools!.create({ id: config.pool_id });
    for (let i = 0; i < config.agents; i++) {
      const agent = make(identityFor(config, i));
      registry.register(agent.identity);
      const transport: Transport = tcp
        ? new TcpTransport({
            host: config.host,
            port: config.port + i,
            resolve: discovery ? endpointResolver(discovery) : undefined,
            ...tcp,
          })
        : new LocalTransport({ agentId: agent.id, subscriptions: agent.topics });
      runtimes.push(
        new AgentRuntime(agent, {
          transport,
          taskManager: tasks,
          poolManager: pools,
          discovery,
          descriptor: discovery
            ? descriptorFor(
                agent,
                tcp ? advertisedEndpoint(config.host, config.port + i, tcp.tls?.cert ? "tls" : "tcp") : null,
              )
            : undefined,
          verifyMessages: checks.mode,
          keys,
          replayWindowMs: checks.replayWindowMs,
          maxClockSkewMs: checks.maxClockSkewMs,
          concurrency: config.concurrency,
          shutdownGraceMs: config.shutdown_grace_sec * 1000,
        }),
      );
    }
    const started = await Promise.allSettled(runtimes.map((r) => r.start()));
    const failed = started.find((s) => s.status === "rejected") as PromiseRejectedResult | undefined;
    if (failed) throw failed.reason;
    if (config.pool_id) {
      joined = true;
      for (const r of runtimes) {
        await pools!.join(config.pool_id, r.id);
        r.memberships.add(config.pool_id);
      }
    }
    // So that operator commands can tell agents of a killed process from live ones (see liveness.ts).
    if (discovery)
      heartbeat = await startHeartbeat(
        configured!,
        runtimes.map((r) => r.id),
        heartbeatMsFor(config.claim_ttl_sec),
      );
  } catch (err) {
    await stop();
    if (err instanceof ConvergeError) throw err;
    throw new ConvergeError(`could not start: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }
  ready = true;
  return { runtimes, store, discovery, tasks, pools, poolId: config.pool_id, agentModule, httpUrl: http?.url, stop };
}

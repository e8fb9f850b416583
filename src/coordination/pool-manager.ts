/**
 * Pools in a shared Store under `pool:<id>`. Creation never overwrites an existing pool (its
 * members stay); join and leave are atomic updates of the member list, so agents in many processes
 * can join the same pool at once without losing each other.
 */
import { PoolError } from "../core/errors.ts";
import { newPool, type Pool, type PoolInit } from "../core/pool.ts";
import { admits } from "../policy/admission.ts";
import { DECLINE, type Store } from "../store/store.ts";

export const POOL_PREFIX = "pool:";
const poolKey = (id: string) => POOL_PREFIX + id;

export interface PoolManagerOptions {
  /** The agent's trust score in [0,1], checked against a pool's trustThreshold. */
  trustOf?: (agentId: string) => number | Promise<number>;
}

export class PoolManager {
  constructor(
    readonly store: Store,
    private readonly options: PoolManagerOptions = {},
  ) {}

  /** Creates the pool if absent; returns the stored pool either way. */
  async create(init: PoolInit): Promise<Pool> {
    if (!init.id) throw new PoolError("a pool needs an id");
    await this.store.putIfAbsent(poolKey(init.id), newPool(init));
    return (await this.get(init.id))!;
  }

  async get(poolId: string): Promise<Pool | undefined> {
    return this.store.get<Pool>(poolKey(poolId));
  }

  async list(): Promise<Pool[]> {
    const keys = await this.store.list(POOL_PREFIX);
    return (await Promise.all(keys.map((k) => this.store.get<Pool>(k)))).filter((p): p is Pool => !!p);
  }

  /** Adds the agent after admission and trust checks; joining twice is harmless. */
  async join(poolId: string, agentId: string, token?: string): Promise<Pool> {
    const pool = await this.get(poolId);
    if (!pool) throw new PoolError(`pool ${poolId} does not exist`);
    const verdict = admits(pool.admission, agentId, token);
    if (!verdict.ok)
      throw new PoolError(`agent ${agentId.slice(0, 12)} may not join pool ${poolId}: ${verdict.reason}`);
    if (pool.trustThreshold > 0) {
      const trust = (await this.options.trustOf?.(agentId)) ?? 0;
      if (trust < pool.trustThreshold) {
        throw new PoolError(
          `agent ${agentId.slice(0, 12)} may not join pool ${poolId}: ` +
            `trust ${trust.toFixed(2)} is below the pool's threshold ${pool.trustThreshold}`,
        );
      }
    }
    const after = await this.store.update<Pool>(poolKey(poolId), (p) =>
      !p || p.agents.includes(agentId) ? DECLINE : { ...p, agents: [...p.agents, agentId] },
    );
    if (!after) throw new PoolError(`pool ${poolId} was deleted while joining`);
    return after;
  }

  /** Removes the agent; leaving a pool one is not in is harmless. */
  async leave(poolId: string, agentId: string): Promise<Pool | undefined> {
    return this.store.update<Pool>(poolKey(poolId), (p) =>
      !p?.agents.includes(agentId) ? DECLINE : { ...p, agents: p.agents.filter((a) => a !== agentId) },
    );
  }

  async poolsForAgent(agentId: string): Promise<Pool[]> {
    return (await this.list()).filter((p) => p.agents.includes(agentId));
  }
}

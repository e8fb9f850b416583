/**
 * The pools one agent belongs to, kept in step with the pool records: joining and leaving go
 * through the pool manager first and change the set only once the store agreed. The worker reads
 * the set to know which pools' tasks it may take.
 */
import { PoolError } from "../core/errors.ts";
import type { PoolManager } from "../coordination/pool-manager.ts";

export class Memberships {
  readonly #pools = new Set<string>();

  constructor(
    readonly agentId: string,
    private readonly pools: PoolManager | undefined,
  ) {}

  /** The pool ids (a live view: read it, do not change it). */
  get ids(): ReadonlySet<string> {
    return this.#pools;
  }

  has(poolId: string): boolean {
    return this.#pools.has(poolId);
  }

  /** Learns the pools the store already lists this agent in (a restart with the same identity). */
  async load(): Promise<void> {
    if (!this.pools) return;
    for (const p of await this.pools.poolsForAgent(this.agentId)) this.#pools.add(p.id);
  }

  async join(poolId: string, token?: string): Promise<void> {
    await this.#manager().join(poolId, this.agentId, token);
    this.#pools.add(poolId);
  }

  async leave(poolId: string): Promise<void> {
    await this.#manager().leave(poolId, this.agentId);
    this.#pools.delete(poolId);
  }

  #manager(): PoolManager {
    if (!this.pools)
      throw new PoolError(`agent ${this.agentId.slice(0, 12)} has no pool manager to join or leave pools with`);
    return this.pools;
  }
}

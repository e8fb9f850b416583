/**
 * Trust scores in [0, 1] per agent, persisted under `trust:<agentId>`.
 *
 * An agent without a record has the default score (0.5 unless configured). Each outcome moves the
 * score by an exponential moving average toward 1 (success) or 0 (failure):
 * `score += learningRate * (target - score)`. A pool admits agents whose score is at least its
 * `trustThreshold` (0 admits everyone).
 */
import { ConfigError, ConvergeError } from "../core/errors.ts";
import type { Pool } from "../core/pool.ts";
import type { Store } from "../store/store.ts";
import { clockFor, type Clock } from "../store/clock.ts";

export interface TrustRecord {
  agentId: string;
  score: number;
  successes: number;
  failures: number;
  /** Epoch ms. */
  updatedAt: number;
}

export interface TrustOptions {
  /** Score of an agent with no record; default 0.5. */
  defaultScore?: number;
  /** Weight of each new outcome, in (0, 1]; default 0.1. */
  learningRate?: number;
  clock?: Clock;
}

export type TrustCheck = { ok: true; score: number } | { ok: false; score: number; reason: string };

/** A bad score or outcome given to the trust manager. */
export class TrustError extends ConvergeError {}

export const trustKey = (agentId: string): string => `trust:${agentId}`;

/** An outcome: success/failure, or a graded result in [0, 1] (1 = full success). */
export type Outcome = boolean | "success" | "failure" | number;

export class TrustManager {
  readonly #store: Store;
  readonly defaultScore: number;
  readonly learningRate: number;
  readonly #clock: Clock;

  constructor(store: Store, options: TrustOptions = {}) {
    this.#store = store;
    this.defaultScore = options.defaultScore ?? 0.5;
    this.learningRate = options.learningRate ?? 0.1;
    if (!isUnit(this.defaultScore))
      throw new ConfigError(`trust defaultScore must be between 0 and 1, got ${this.defaultScore}`);
    if (!(isUnit(this.learningRate) && this.learningRate > 0))
      throw new ConfigError(`trust learningRate must be in (0, 1], got ${this.learningRate}`);
    this.#clock = clockFor(store, options.clock);
  }

  async get(agentId: string): Promise<number> {
    return (await this.record(agentId))?.score ?? this.defaultScore;
  }

  record(agentId: string): Promise<TrustRecord | undefined> {
    return this.#store.get<TrustRecord>(trustKey(agentId));
  }

  /** Folds one outcome into the agent's score (atomically); returns the new score. */
  async update(agentId: string, outcome: Outcome): Promise<number> {
    const target = targetOf(outcome);
    const now = await this.#clock();
    const after = await this.#store.update<TrustRecord>(trustKey(agentId), (r) => {
      const prev = r ?? { agentId, score: this.defaultScore, successes: 0, failures: 0, updatedAt: now };
      const score = clamp(prev.score + this.learningRate * (target - prev.score));
      return {
        ...prev,
        score,
        successes: prev.successes + (target >= 0.5 ? 1 : 0),
        failures: prev.failures + (target < 0.5 ? 1 : 0),
        updatedAt: now,
      };
    });
    return after!.score;
  }

  recordSuccess(agentId: string): Promise<number> {
    return this.update(agentId, true);
  }

  recordFailure(agentId: string): Promise<number> {
    return this.update(agentId, false);
  }

  /** Sets a score outright (e.g. an operator's decision). */
  async set(agentId: string, score: number): Promise<void> {
    if (!isUnit(score)) throw new TrustError(`trust score for ${agentId} must be between 0 and 1, got ${score}`);
    const now = await this.#clock();
    await this.#store.update<TrustRecord>(trustKey(agentId), (r) => ({
      ...(r ?? { agentId, successes: 0, failures: 0 }),
      score,
      updatedAt: now,
    }));
  }

  /** Whether the agent's score reaches `threshold` (a number, or a pool's trustThreshold). */
  async check(agentId: string, threshold: number | Pick<Pool, "trustThreshold">): Promise<TrustCheck> {
    const t = typeof threshold === "number" ? threshold : threshold.trustThreshold;
    const score = await this.get(agentId);
    if (score >= t) return { ok: true, score };
    return { ok: false, score, reason: `agent ${agentId} has trust ${round(score)}, below the required ${t}` };
  }
}

function targetOf(outcome: Outcome): number {
  if (outcome === true || outcome === "success") return 1;
  if (outcome === false || outcome === "failure") return 0;
  if (typeof outcome === "number" && isUnit(outcome)) return outcome;
  throw new TrustError(`a trust outcome is success, failure or a number between 0 and 1, got ${String(outcome)}`);
}

function isUnit(x: number): boolean {
  return typeof x === "number" && Number.isFinite(x) && x >= 0 && x <= 1;
}

function clamp(x: number): number {
  return Math.min(1, Math.max(0, x));
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/**
 * Retention: finished tasks are kept until removed. `cleanFinished` removes those of one final
 * state older than a duration, or all but the newest N, in batches (the queue's finished index,
 * oldest first, then `remove`, which deletes a task only while it is still finished: one retried
 * meanwhile stays). `converge tasks clean` runs it once; `RetentionLoop` runs the configured rules
 * every interval inside `converge run`, in one process of the fleet at a time.
 *
 * One at a time: the processes share a lease record (`retention:lease`: holder, expiry on the
 * store's clock). A process cleans only while it holds the lease, renews it before every batch, and
 * gives it up when it stops; a holder that died loses it when it expires (three intervals), and
 * the next process to look takes it over. Two processes clean at once only if a batch takes longer
 * than the lease, and even then nothing is removed twice or wrongly (`remove` is idempotent).
 */
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { formatDuration, parseDuration } from "../core/duration.ts";
import { ConfigError } from "../core/errors.ts";
import { FINAL_STATE_LIST, type FinalState } from "../core/task.ts";
import { quoted } from "../core/text.ts";
import { logger } from "../observability/log.ts";
import { DECLINE } from "../store/store.ts";
import type { TaskManager } from "./task-manager.ts";
import { fairTurn } from "../core/fair-turn.ts";

/** Remove tasks finished in `state` more than `olderThanMs` ago, or all but the newest `keep`. */
export type RetentionRule = { state: FinalState } & ({ olderThanMs: number } | { keep: number });

export interface RetentionConfig {
  rules: RetentionRule[];
  /** How often the loop cleans (ms, default 60 000). */
  intervalMs: number;
}

/** Tasks removed per batch (one read of the finished index, one remove). */
const CLEAN_BATCH = 500;
const DEFAULT_RETENTION_INTERVAL_MS = 60_000;
const LEASE_KEY = "retention:lease";

interface LeaseRecord {
  holder: string | null;
  expiresAt: number;
}

/** What a rule says, for people: "completed tasks older than 7d", "failed tasks beyond the newest 100". */
export function describeRule(rule: RetentionRule): string {
  return "olderThanMs" in rule
    ? `${rule.state} tasks older than ${formatDuration(rule.olderThanMs)}`
    : `${rule.state} tasks beyond the newest ${rule.keep}`;
}

/**
 * Removes what the rule says, in batches of `batch`; returns how many were removed. `beforeBatch`
 * may stop it (returning false), e.g. when the process lost the retention lease.
 */
export async function cleanFinished(
  tasks: TaskManager,
  rule: RetentionRule,
  options: { batch?: number; beforeBatch?: () => Promise<boolean> } = {},
): Promise<number> {
  const batch = Math.max(1, options.batch ?? CLEAN_BATCH);
  const q = tasks.queue;
  let removed = 0;
  let excess = "keep" in rule ? (await q.counts())[rule.state] - rule.keep : Infinity;
  const cutoff = "olderThanMs" in rule ? (await tasks.now()) - rule.olderThanMs : Infinity;
  while (excess > 0) {
    const turn = fairTurn(); // on SQLite each batch is synchronous: let the workers' timers run between them
    if (turn) await turn;
    if (options.beforeBatch && !(await options.beforeBatch())) break;
    const found = await q.finished(rule.state, cutoff, Math.min(batch, excess));
    if (found.length === 0) break;
    const n = await q.remove(found.map((t) => t.id));
    removed += n;
    excess -= n;
    // Fewer than asked: nothing more is that old. None removed: all changed meanwhile; look again next time.
    if (found.length < Math.min(batch, excess + n) || n === 0) break;
  }
  return removed;
}

/** Parses the `retention` config mapping; unknown keys go to `warn`. Undefined when it sets no rule. */
export function parseRetention(value: unknown, warn: (key: string) => void): RetentionConfig | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "object" || Array.isArray(value))
    throw new ConfigError(
      `retention must be a mapping of final states to a duration or a count, e.g. {completed: 7d, failed: 1000}`,
    );
  const rules: RetentionRule[] = [];
  let intervalMs = DEFAULT_RETENTION_INTERVAL_MS;
  for (const [key, v] of Object.entries(value)) {
    if (key === "interval") {
      intervalMs = parseDuration(String(v), "retention.interval", { bareSeconds: true });
      if (intervalMs < 1000) throw new ConfigError(`retention.interval must be at least 1s, got ${quoted(String(v))}`);
      continue;
    }
    if (!(FINAL_STATE_LIST as readonly string[]).includes(key)) {
      warn(key);
      continue;
    }
    const state = key as FinalState;
    const text = typeof v === "number" ? String(v) : typeof v === "string" ? v.trim() : "";
    if (/^\d+$/.test(text)) rules.push({ state, keep: Number(text) });
    else if (text !== "") rules.push({ state, olderThanMs: parseDuration(text, `retention.${key}`) });
    else
      throw new ConfigError(
        `retention.${key} must be a duration (remove older ones, e.g. 7d) or a whole number (keep the newest N)`,
      );
  }
  return rules.length > 0 ? { rules, intervalMs } : undefined;
}

/** The documented keys of the `retention` mapping (for CONFIG_DOCS and the nearest-key hint). */
export const RETENTION_DOCS: Record<string, { doc: string }> = {
  "retention.completed": {
    doc: "remove completed tasks older than a duration (e.g. 7d), or keep the newest N (e.g. 1000)",
  },
  "retention.failed": { doc: "the same for failed tasks" },
  "retention.cancelled": { doc: "the same for cancelled tasks" },
  "retention.interval": { doc: "how often converge run cleans (default 1m); one process of the fleet at a time" },
};
export const RETENTION_KEYS = [...FINAL_STATE_LIST, "interval"];

/** Runs the rules every interval while this process holds the retention lease (see the header). */
export class RetentionLoop {
  readonly holder = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  readonly #log = logger("retention");
  #timer: ReturnType<typeof setInterval> | undefined;
  #running: Promise<void> | undefined;
  #held = false;
  #stopped = false;
  /** How many tasks this process removed, per state. */
  readonly removed: Record<FinalState, number> = { completed: 0, failed: 0, cancelled: 0 };

  constructor(
    private readonly tasks: TaskManager,
    private readonly config: RetentionConfig,
  ) {}

  get leaseMs(): number {
    return 3 * this.config.intervalMs;
  }

  /** Cleans at once, then every interval. */
  start(): void {
    if (this.#timer || this.#stopped) return;
    this.#timer = setInterval(() => this.#tick(), this.config.intervalMs);
    this.#tick();
  }

  /** Stops cleaning (after the batch under way) and gives the lease up. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
    if (this.#held) await this.#release().catch((err) => this.#log.warn("could not give up the lease", { err }));
  }

  #tick(): void {
    if (this.#running || this.#stopped) return;
    this.#running = this.#clean()
      .catch((err) => this.#log.warn("cleaning finished tasks failed; trying again next interval", { err }))
      .finally(() => {
        this.#running = undefined;
      });
  }

  async #clean(): Promise<void> {
    if (!(await this.#acquire())) return;
    for (const rule of this.config.rules) {
      const n = await cleanFinished(this.tasks, rule, { beforeBatch: () => this.#acquire() });
      this.removed[rule.state] += n;
      if (n > 0) this.#log.info(`removed ${n} ${describeRule(rule)}`, { holder: this.holder });
      if (this.#stopped) return;
    }
  }

  /** Takes or renews the lease; false when another live process holds it (or this one stopped). */
  async #acquire(): Promise<boolean> {
    if (this.#stopped) return false;
    const now = await this.tasks.now();
    const mine: LeaseRecord = { holder: this.holder, expiresAt: now + this.leaseMs };
    const after = await this.tasks.store.update<LeaseRecord>(LEASE_KEY, (cur) =>
      !cur || cur.holder === this.holder || cur.holder === null || cur.expiresAt <= now ? mine : DECLINE,
    );
    const held = after?.holder === this.holder;
    if (held && !this.#held) this.#log.info("this process now cleans finished tasks", { holder: this.holder });
    this.#held = held;
    return held;
  }

  async #release(): Promise<void> {
    await this.tasks.store.update<LeaseRecord>(LEASE_KEY, (cur) =>
      cur?.holder === this.holder ? { holder: null, expiresAt: 0 } : DECLINE,
    );
    this.#held = false;
  }
}

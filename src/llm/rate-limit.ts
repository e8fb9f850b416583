/**
 * Rate limits that hold for every process sharing the store, together: one record per provider and
 * model, changed only through the store's atomic `update` (one compare-and-set script on Redis, one
 * BEGIN IMMEDIATE transaction on SQLite, in process for memory), so admissions from any number of
 * processes are counted once each.
 *
 * The record keeps a sliding window as ~20 buckets (requests and tokens per bucket). A request is
 * admitted when the buckets that reach into the last window plus a margin of 1 s leave room for
 * it; so in any window of the provider's (whose clock, and the delay until a request arrives,
 * differ a little from ours) the fleet sends at most the limit. Tokens are reserved from an
 * estimate before the request and corrected from the usage the answer reports. The same record
 * carries `backoffUntil`: after a 429 the whole fleet waits until then, not just the process that
 * got it.
 *
 * Hand-written because no library offers a limiter over our Store contract; it is small.
 */
import { DECLINE, type Store } from "../store/store.ts";
import { LlmError } from "./errors.ts";

/** [bucket start (store clock, epoch ms), requests, tokens]. */
type Bucket = [number, number, number];

interface LimitRecord {
  b: Bucket[];
  /** Nobody sends before this time (store clock): the provider asked the fleet to wait. */
  backoffUntil?: number;
}

export interface FleetLimitOptions {
  requestsPerMinute?: number;
  tokensPerMinute?: number;
  /** The window the limits are per (default 60 000 ms; tests shorten it). */
  windowMs?: number;
  /** A wait the fleet is asked for beyond this fails the request at once (default 5 min). */
  maxWaitMs?: number;
  /** Called for every pause before a request: why, how long (ms), and whether it is the request's first. */
  onWait?: (reason: "limit" | "backoff", ms: number, first: boolean) => void;
}

export interface Reservation {
  bucket: number;
  tokens: number;
}

const KEY_PREFIX = "llm:limit:";
/** How much longer than the window an admission stays counted. */
const MARGIN_MS = 1000;

export class FleetLimiter {
  readonly key: string;
  readonly windowMs: number;
  readonly #bucketMs: number;
  #last: LimitRecord | undefined;

  constructor(
    readonly store: Store,
    scope: string,
    readonly options: FleetLimitOptions = {},
  ) {
    this.key = KEY_PREFIX + scope;
    this.windowMs = options.windowMs ?? 60_000;
    this.#bucketMs = Math.max(1, Math.floor(this.windowMs / 20));
    // Covers the provider's clock and the time from admission to arrival, which a loaded host can
    // stretch to hundreds of ms.
  }

  get limited(): boolean {
    return this.options.requestsPerMinute !== undefined || this.options.tokensPerMinute !== undefined;
  }

  /**
   * Waits until the fleet may send one request expected to use `tokens`, and counts it. Rejects
   * with the signal's reason when aborted, and with an LlmError when the fleet is asked to wait
   * longer than `maxWaitMs`.
   */
  async acquire(tokens: number, signal?: AbortSignal): Promise<Reservation | undefined> {
    const tpm = this.options.tokensPerMinute;
    const want = tpm !== undefined ? Math.min(Math.max(0, Math.ceil(tokens)), tpm) : 0;
    for (let pauses = 0; ; pauses++) {
      signal?.throwIfAborted();
      const asked = performance.now();
      const now = await this.store.now();
      let wait = 0;
      let reason: "limit" | "backoff" = "limit";
      let admitted: Reservation | undefined;
      if (!this.limited) {
        const rec = await this.store.get<LimitRecord>(this.key);
        wait = Math.max(0, (rec?.backoffUntil ?? 0) - now);
        reason = "backoff";
      } else {
        const after = await this.store.update<LimitRecord>(
          this.key,
          (cur) => {
            admitted = undefined;
            const rec = this.#prune(cur, now);
            if ((rec.backoffUntil ?? 0) > now) {
              [wait, reason] = [rec.backoffUntil! - now, "backoff"];
              return DECLINE;
            }
            wait = this.#waitFor(rec, now, want);
            reason = "limit";
            if (wait > 0) return DECLINE;
            const start = now - (now % this.#bucketMs);
            const i = rec.b.findIndex((b) => b[0] === start);
            if (i >= 0) rec.b[i] = [start, rec.b[i]![1] + 1, rec.b[i]![2] + want];
            else rec.b.push([start, 1, want]);
            rec.b.sort((x, y) => x[0] - y[0]); // a shifted admission may sit in a later bucket
            admitted = { bucket: start, tokens: want };
            return rec;
          },
          { expected: this.#last },
        );
        this.#last = after;
      }
      // Under contention (several processes updating the record) the update can take a while, and
      // the request goes out later than `now` says: count it where it really goes, so that it does
      // not leave the window before its time.
      const lag = performance.now() - asked;
      if (admitted) return lag > MARGIN_MS / 2 ? this.#shift(admitted, now + lag) : admitted;
      if (wait <= 0) return undefined;
      const maxWait = this.options.maxWaitMs ?? 300_000;
      if (wait > maxWait)
        throw new LlmError(
          `rate limited: the provider asked the fleet to wait ${Math.ceil(wait / 1000)} s, ` +
            `more than ${Math.round(maxWait / 1000)} s`,
        );
      // With a token limit, a wait looks again after at most one bucket (a settled reservation may
      // have freed tokens); a little jitter, so that processes waiting for the same moment do not
      // all ask at once.
      const recheck = reason === "limit" && tpm !== undefined ? Math.min(wait, this.#bucketMs * 2) : wait;
      const ms = recheck + Math.random() * Math.min(100, this.#bucketMs);
      this.options.onWait?.(reason, ms, pauses === 0);
      await sleep(ms, signal);
    }
  }

  /** Moves an admission to the bucket of `at` (later than it was counted at). */
  async #shift(r: Reservation, at: number): Promise<Reservation> {
    const start = at - (at % this.#bucketMs);
    if (start === r.bucket) return r;
    this.#last = await this.store.update<LimitRecord>(
      this.key,
      (cur) => {
        const i = cur?.b.findIndex((b) => b[0] === r.bucket) ?? -1;
        if (!cur || i < 0) return DECLINE;
        const b = cur.b.map((x) => [...x] as Bucket);
        b[i]![1]--;
        b[i]![2] -= r.tokens;
        const j = b.findIndex((x) => x[0] === start);
        if (j >= 0) [b[j]![1], b[j]![2]] = [b[j]![1] + 1, b[j]![2] + r.tokens];
        else b.push([start, 1, r.tokens]);
        b.sort((x, y) => x[0] - y[0]);
        return { ...cur, b };
      },
      { expected: this.#last },
    );
    return { bucket: start, tokens: r.tokens };
  }

  /** Corrects a reservation's tokens with what the answer reported. */
  async settle(r: Reservation | undefined, actualTokens: number): Promise<void> {
    if (!r || this.options.tokensPerMinute === undefined || actualTokens === r.tokens) return;
    const delta = actualTokens - r.tokens;
    this.#last = await this.store.update<LimitRecord>(
      this.key,
      (cur) => {
        const i = cur?.b.findIndex((b) => b[0] === r.bucket) ?? -1;
        if (!cur || i < 0) return DECLINE;
        const b = [...cur.b];
        const [start, n, t] = b[i]!;
        b[i] = [start, n, Math.max(0, t + delta)];
        return { ...cur, b };
      },
      { expected: this.#last },
    );
  }

  /** Makes every process sharing the store wait `ms` before its next request. */
  async backOff(ms: number): Promise<void> {
    const now = await this.store.now();
    const until = now + Math.max(0, ms);
    this.#last = await this.store.update<LimitRecord>(
      this.key,
      (cur) => {
        if ((cur?.backoffUntil ?? 0) >= until) return DECLINE;
        return { b: cur?.b ?? [], backoffUntil: until };
      },
      { expected: this.#last },
    );
  }

  /** The record without buckets that no longer reach into the window. */
  #prune(cur: LimitRecord | undefined, now: number): LimitRecord {
    const from = now - this.windowMs - MARGIN_MS;
    return {
      b: (cur?.b ?? []).filter((b) => b[0] + this.#bucketMs > from),
      ...(cur?.backoffUntil !== undefined && cur.backoffUntil > now ? { backoffUntil: cur.backoffUntil } : {}),
    };
  }

  /** How long until one more request using `tokens` fits in the window (0: it fits now). */
  #waitFor(rec: LimitRecord, now: number, tokens: number): number {
    const rpm = this.options.requestsPerMinute ?? Infinity;
    const tpm = this.options.tokensPerMinute ?? Infinity;
    let requests = 0;
    let used = 0;
    for (const [, n, t] of rec.b) [requests, used] = [requests + n, used + t];
    if (requests + 1 <= rpm && used + tokens <= tpm) return 0;
    // Drop the oldest buckets until the request fits: it may go once the last one dropped has left the window.
    for (const [start, n, t] of rec.b) {
      [requests, used] = [requests - n, used - t];
      if (requests + 1 <= rpm && used + tokens <= tpm)
        return Math.max(1, start + this.#bucketMs + this.windowMs + MARGIN_MS - now);
    }
    return Math.max(1, this.windowMs);
  }
}

/** Resolves after `ms`, or rejects with the signal's reason once it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (!signal) return Bun.sleep(ms);
  signal.throwIfAborted();
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

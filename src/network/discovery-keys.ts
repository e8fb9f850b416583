/**
 * Senders' public keys from discovery, for checking every message that arrives without a store
 * read per message:
 * - a key found is kept for good (an id is its key's fingerprint, so it can never change; there is
 *   one per agent ever registered, not per message, and only the store's writers can add agents);
 * - an id found absent is remembered briefly (NegativeCache: `negativeTtlMs`, at most `maxNegative`
 *   ids, oldest forgotten first), so a peer repeating a made-up sender costs one read per TTL;
 * - reads for ids seen for the first time are rate-limited (`lookupsPerSec`, a token bucket) and
 *   at most `maxWaiting` of them queue: a flood of random sender ids costs the store a bounded
 *   load, and past the queue a lookup fails (the caller refuses the message: it could not be
 *   checked) instead of waiting without bound.
 * DiscoveryService.register forgets a negative entry at once in its own process.
 */
import { IdentityRegistry } from "./identity-registry.ts";
import type { Identity } from "../core/identity.ts";
import { TransportError } from "../core/errors.ts";
import type { KeyLookup } from "../transport/transport.ts";

export interface DiscoveryKeysOptions {
  /** Store reads for unknown ids per second at most (burst the same). Default 100. */
  lookupsPerSec?: number;
  /** Lookups waiting for a read at most; past it a lookup fails at once. Default 1000. */
  maxWaiting?: number;
}

/** Ids recently found absent, in insertion order (a Map), bounded. */
export class NegativeCache {
  readonly #until = new Map<string, number>();

  constructor(
    readonly ttlMs: number,
    readonly max: number,
  ) {}

  has(id: string, now = performance.now()): boolean {
    const until = this.#until.get(id);
    if (until === undefined) return false;
    if (until > now) return true;
    this.#until.delete(id);
    return false;
  }

  add(id: string, now = performance.now()): void {
    this.#until.delete(id);
    this.#until.set(id, now + this.ttlMs);
    // Oldest first: the Map keeps insertion order.
    while (this.#until.size > this.max) this.#until.delete(this.#until.keys().next().value!);
  }

  delete(id: string): void {
    this.#until.delete(id);
  }

  get size(): number {
    return this.#until.size;
  }
}

/** Counters, for tests and /metrics. */
export interface DiscoveryKeyStats {
  /** Store reads made for ids not known yet. */
  reads: number;
  /** Lookups answered "absent" from the negative cache. */
  negativeHits: number;
  /** Lookups refused because too many were waiting. */
  overloaded: number;
}

export class DiscoveryKeys implements KeyLookup {
  readonly stats: DiscoveryKeyStats = { reads: 0, negativeHits: 0, overloaded: 0 };
  readonly #registry: IdentityRegistry;
  readonly #negative: NegativeCache;
  readonly #read: (id: string) => Promise<Identity | undefined>;
  readonly #inFlight = new Map<string, Promise<Identity | undefined>>();
  readonly #rate: number;
  readonly #maxWaiting: number;
  #tokens: number;
  #refilledAt = performance.now();
  #waiting: (() => void)[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    read: (id: string) => Promise<Identity | undefined>,
    negative: NegativeCache,
    options: DiscoveryKeysOptions = {},
    registry = new IdentityRegistry(),
  ) {
    this.#read = read;
    this.#negative = negative;
    this.#registry = registry;
    this.#rate = options.lookupsPerSec ?? 100;
    this.#maxWaiting = options.maxWaiting ?? 1000;
    this.#tokens = this.#rate;
  }

  /** The key, at once when known (no promise); a promise when the store must be asked. */
  get(id: string): Identity | undefined | Promise<Identity | undefined> {
    const known = this.#registry.get(id);
    if (known) return known;
    if (this.#negative.has(id)) {
      this.stats.negativeHits++;
      return undefined;
    }
    let p = this.#inFlight.get(id);
    if (!p) {
      p = this.#lookUp(id).finally(() => this.#inFlight.delete(id));
      this.#inFlight.set(id, p);
    }
    return p;
  }

  async #lookUp(id: string): Promise<Identity | undefined> {
    await this.#token();
    this.stats.reads++;
    const key = await this.#read(id);
    if (key) this.#registry.register(key);
    else this.#negative.add(id);
    return key ? this.#registry.get(id) : undefined;
  }

  /** Waits for a read token; throws TransportError when too many lookups are already waiting. */
  #token(): Promise<void> | void {
    this.#refill();
    if (this.#tokens >= 1 && this.#waiting.length === 0) {
      this.#tokens--;
      return;
    }
    if (this.#waiting.length >= this.#maxWaiting) {
      this.stats.overloaded++;
      throw new TransportError(
        `too many messages from senders not known yet (${this.#maxWaiting} waiting for a discovery read)`,
      );
    }
    return new Promise<void>((resolve) => {
      this.#waiting.push(resolve);
      this.#schedule();
    });
  }

  #refill(): void {
    const now = performance.now();
    this.#tokens = Math.min(this.#rate, this.#tokens + ((now - this.#refilledAt) * this.#rate) / 1000);
    this.#refilledAt = now;
  }

  #schedule(): void {
    if (this.#timer) return;
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        this.#refill();
        while (this.#tokens >= 1 && this.#waiting.length > 0) {
          this.#tokens--;
          this.#waiting.shift()!();
        }
        if (this.#waiting.length > 0) this.#schedule();
      },
      Math.ceil(1000 / this.#rate),
    );
  }
}

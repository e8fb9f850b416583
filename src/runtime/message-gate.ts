/**
 * The checks every arrived message passes before it reaches an agent's inbox:
 * 1. replays: a message (sender and id) already delivered within the replay window is refused;
 * 2. clock skew: a timestamp further than `maxClockSkewMs` from now is refused under `strict` and
 *    flagged (Verification.clockSkewMs) otherwise;
 * 3. signatures, by mode (`verify_messages`):
 *    - known (default): a sender with a registered key must have signed with it: unsigned or
 *      forged messages naming it are refused; senders nobody registered are delivered, unverified
 *      (as a Python agent's unsigned messages are);
 *    - strict: only verified messages are delivered;
 *    - off: nothing is checked.
 * Refusals are counted (stats, /metrics) and logged at warn, rate-limited, with the claimed sender
 * and the reason. What was found is kept per message (verificationOf, isVerified) for handlers.
 *
 * Cost: one Ed25519 verify per message whose sender has a key (~28 k/s per core), and no store
 * read for a sender whose key was found before (keys come from a KeyLookup that caches:
 * network/discovery-keys.ts). A lookup that must wait delays only later messages of the same
 * sender (their order is kept), never other senders'.
 *
 * The replay window holds at most `maxReplayIds` messages; at the bound the oldest are forgotten
 * early (the window then covers less than its length: counted as replayEvictions and said once per
 * 10 s at warn). Under strict the clock-skew check still refuses anything older than the skew.
 */
import type { Identity } from "../core/identity.ts";
import type { Verification } from "../core/agent.ts";
import { isAgentId, type Message } from "../core/message.ts";
import { printable } from "../core/text.ts";
import { RateLimitedLog, logger, type Logger } from "../observability/log.ts";
import type { KeyLookup } from "../transport/transport.ts";

export type VerifyMode = "known" | "strict" | "off";
const VERIFY_MODES: readonly VerifyMode[] = ["known", "strict", "off"];

export type RefusalReason =
  | "unsigned"
  | "bad_signature"
  | "unknown_sender"
  | "replayed"
  | "clock_skew"
  | "lookup_failed"
  | "overload";

export interface MessageGateOptions {
  /** Default "known". */
  mode?: VerifyMode;
  /** Where registered senders' keys are found; without it no sender is known. */
  keys?: KeyLookup;
  /** How long a delivered message's id is remembered to refuse replays (ms). Default 600 000; 0 turns it off. */
  replayWindowMs?: number;
  /** Ids the replay window holds at most. Default 100 000. */
  maxReplayIds?: number;
  /** Timestamps further than this from now are refused under strict, flagged otherwise (ms). Default 300 000. */
  maxClockSkewMs?: number;
  /** Messages of one sender that may wait behind a key lookup. Default 10 000. */
  maxQueuedPerSender?: number;
  log?: Logger;
}

export interface GateStats {
  verified: number;
  /** Delivered without a verified signature (unknown sender, or mode off). */
  unverified: number;
  /** Delivered with a timestamp beyond the allowed skew (flagged). */
  skewed: number;
  refused: Record<RefusalReason, number>;
  /** Ids forgotten before the end of the replay window because it was full. */
  replayEvictions: number;
}

const verifications = new WeakMap<Message, Verification>();

/** What the runtime found when it delivered `message`; undefined for a message it did not deliver. */
export function verificationOf(message: Message): Verification | undefined {
  return verifications.get(message);
}

/** True when the runtime delivered `message` having verified it against its sender's registered key. */
export function isVerified(message: Message): boolean {
  return verifications.get(message)?.verified === true;
}

type Verdict = Verification | { refused: RefusalReason; why: string };
type Deliver = (message: Message, verification: Verification) => void;

export class MessageGate {
  readonly mode: VerifyMode;
  readonly stats: GateStats = {
    verified: 0,
    unverified: 0,
    skewed: 0,
    refused: {
      unsigned: 0,
      bad_signature: 0,
      unknown_sender: 0,
      replayed: 0,
      clock_skew: 0,
      lookup_failed: 0,
      overload: 0,
    },
    replayEvictions: 0,
  };
  readonly keys: KeyLookup | undefined;
  readonly #log: Logger;
  readonly #refusals: RateLimitedLog;
  readonly #evictions: RateLimitedLog;
  readonly #windowMs: number;
  readonly #maxIds: number;
  readonly #skewMs: number;
  readonly #maxQueued: number;
  /** Delivered messages, `sender\nid` → arrival (performance.now()), oldest first. */
  readonly #seen = new Map<string, number>();
  /** Senders with a lookup in progress, and their messages waiting behind it. */
  readonly #waiting = new Map<string, { message: Message; deliver: Deliver }[]>();

  constructor(options: MessageGateOptions = {}) {
    this.mode = options.mode ?? "known";
    if (!VERIFY_MODES.includes(this.mode)) throw new TypeError(`unknown verify mode "${this.mode}"`);
    this.keys = options.keys;
    this.#log = options.log ?? logger("runtime.gate");
    this.#refusals = new RateLimitedLog(this.#log, { burst: 5 });
    this.#evictions = new RateLimitedLog(this.#log, { burst: 1 });
    this.#windowMs = options.replayWindowMs ?? 600_000;
    this.#maxIds = options.maxReplayIds ?? 100_000;
    this.#skewMs = options.maxClockSkewMs ?? 300_000;
    this.#maxQueued = options.maxQueuedPerSender ?? 10_000;
  }

  /** Writes the count of refusal warnings held back (the runtime stops). */
  flush(): void {
    this.#refusals.flush();
    this.#evictions.flush();
  }

  /** Ids the replay window holds now. */
  get remembered(): number {
    return this.#seen.size;
  }

  /**
   * Checks `message` and calls `deliver` if it passes: at once when the sender's key is at hand,
   * later when it must be looked up (a sender's messages keep their order).
   */
  submit(message: Message, deliver: Deliver): void {
    const queue = this.#waiting.get(message.sender);
    if (queue) {
      if (queue.length >= this.#maxQueued)
        return this.#refuse(message, "overload", `${this.#maxQueued} messages of this sender are waiting for its key`);
      queue.push({ message, deliver });
      return;
    }
    const seen = seenKey(message); // the replay window's key, built once per message
    const key = this.#keyFor(message, seen);
    if (!isPromise(key)) return this.#settle(message, seen, this.#judge(message, seen, key), deliver);
    const waiting = [{ message, deliver }];
    this.#waiting.set(message.sender, waiting);
    key
      .then(
        (k) => this.#settle(message, seen, this.#judge(message, seen, k), deliver),
        (err) =>
          this.#settle(
            message,
            seen,
            { refused: "lookup_failed", why: `its sender's key could not be looked up: ${(err as Error).message}` },
            deliver,
          ),
      )
      .finally(() => this.#drain(message.sender, waiting))
      .catch((err) => this.#log.error("delivering a checked message failed", { err }));
  }

  /** Runs the messages that waited behind a lookup, in order (another lookup may make the rest wait again). */
  #drain(sender: string, waiting: { message: Message; deliver: Deliver }[]): void {
    waiting.shift(); // the one whose lookup finished
    this.#waiting.delete(sender);
    while (waiting.length > 0) {
      const { message, deliver } = waiting.shift()!;
      this.submit(message, deliver);
      const again = this.#waiting.get(sender);
      if (again) {
        again.push(...waiting);
        return;
      }
    }
  }

  /** The sender's key, undefined, or a promise of one; the "no key" marker when nothing needs looking up. */
  #keyFor(m: Message, seen: string): KeyResult | Promise<KeyResult> {
    if (this.mode === "off" || !this.keys || !isAgentId(m.sender)) return NO_LOOKUP;
    // A known replay needs no lookup (it is refused anyway).
    if (this.#windowMs > 0 && this.#seen.has(seen)) return NO_LOOKUP;
    try {
      return this.keys.get(m.sender) as KeyResult | Promise<KeyResult>;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #judge(m: Message, seen: string, key: KeyResult): Verdict {
    if (this.#windowMs > 0 && this.#seen.has(seen))
      return { refused: "replayed", why: "its id was already delivered within the replay window" };
    const skew = m.timestamp - Date.now();
    const skewed = Math.abs(skew) > this.#skewMs ? skew : null;
    if (skewed !== null && this.mode === "strict")
      return {
        refused: "clock_skew",
        why: `its timestamp is ${describeSkew(skewed)} (more than ${this.#skewMs / 1000} s)`,
      };
    if (this.mode === "off") return { verified: false, status: "not checked", clockSkewMs: skewed };
    if (key === NO_LOOKUP || key === undefined) {
      if (this.mode === "strict")
        return {
          refused: "unknown_sender",
          why: m.sender === "" ? "it names no sender" : "its sender is not registered",
        };
      return { verified: false, status: "unknown sender", clockSkewMs: skewed };
    }
    if (!m.isSigned) return { refused: "unsigned", why: "it is unsigned, and its sender is a registered agent" };
    if (!m.verify(key as Identity | Uint8Array))
      return { refused: "bad_signature", why: "its signature does not verify against its sender's registered key" };
    return { verified: true, status: "verified", clockSkewMs: skewed };
  }

  #settle(m: Message, seen: string, v: Verdict, deliver: Deliver): void {
    if ("refused" in v) return this.#refuse(m, v.refused, v.why);
    // A replay of a message whose first copy was still being looked up is caught here.
    if (this.#windowMs > 0 && !this.#remember(seen))
      return this.#refuse(m, "replayed", "its id was already delivered within the replay window");
    if (v.verified) this.stats.verified++;
    else this.stats.unverified++;
    if (v.clockSkewMs !== null) this.stats.skewed++;
    verifications.set(m, v);
    deliver(m, v);
  }

  #refuse(m: Message, reason: RefusalReason, why: string): void {
    this.stats.refused[reason]++;
    this.#refusals.write(`refused a message claiming to be from ${printable(m.sender, 64) || "(no sender)"}: ${why}`, {
      id: printable(m.id, 64),
      reason,
    });
  }

  /** Records a delivered message; false when it was already there (a replay). */
  #remember(key: string): boolean {
    if (this.#seen.has(key)) return false;
    const now = performance.now();
    this.#seen.set(key, now);
    const oldest = now - this.#windowMs;
    for (const [k, at] of this.#seen) {
      if (at >= oldest && this.#seen.size <= this.#maxIds) break;
      this.#seen.delete(k);
      if (at >= oldest) {
        this.stats.replayEvictions++;
        this.#evictions.write(
          `the replay window is full (${this.#maxIds} ids): ids are now remembered for only ` +
            `${Math.round((now - at) / 1000)} s of the ${this.#windowMs / 1000} s configured`,
        );
      }
    }
    return true;
  }
}

/** Marks "no key needed" (mode off, no key source, not a fingerprint, a known replay). */
const NO_LOOKUP: unique symbol = Symbol("no lookup");
type KeyResult = Identity | Uint8Array | undefined | typeof NO_LOOKUP;

function seenKey(m: Message): string {
  return `${m.sender}\n${m.id}`;
}

function isPromise<T>(v: T | Promise<T>): v is Promise<T> {
  return typeof (v as { then?: unknown })?.then === "function";
}

function describeSkew(ms: number): string {
  const s = Math.round(Math.abs(ms) / 1000);
  return ms > 0 ? `${s} s in the future` : `${s} s in the past`;
}

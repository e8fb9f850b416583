/**
 * What a listener (TCP or WebSocket) allows the peers that dial in, so that hostile connections
 * cannot exhaust memory or hold resources forever:
 * - a connection limit: past it, a new connection is closed at once;
 * - a buffer budget shared by every connection (BufferBudget): the connection whose unfinished
 *   frame would take it past the limit is closed, and closing gives its bytes back;
 * - a frame deadline: a frame must complete this long after its first byte arrived (a peer
 *   trickling one byte a second is closed);
 * - an idle timeout: a connection that sends nothing for this long is closed;
 * - a decode budget per message (FrameDecoder's maxElements).
 * Warnings about bad connections go through one RateLimitedLog per listener, so a thousand bad
 * connections make a few lines and a count, not a thousand lines.
 */
import { MAX_MESSAGE_ELEMENTS } from "../core/message.ts";
import { printable } from "../core/text.ts";
import { RateLimitedLog, type Logger } from "../observability/log.ts";
import { BufferBudget } from "./budget.ts";

export interface ListenerLimits {
  /** Open inbound connections at most. Default 1024. */
  maxConnections?: number;
  /** Bytes that unfinished frames may hold across all connections. Default 64 MiB. */
  maxBufferedBytes?: number;
  /** How long a frame may take to arrive once its first byte did (ms). Default 10 000. */
  frameDeadlineMs?: number;
  /** How long a connection may send nothing before it is closed (ms). Default 300 000 (5 minutes). */
  idleTimeoutMs?: number;
  /** Array elements and map entries one message may hold. Default 100 000. */
  maxMessageElements?: number;
}

/** Bytes a closing connection must give back for a garbage collection to be asked for. */
const RECLAIM_AFTER = 4 * 1024 * 1024;

export const DEFAULT_LIMITS: Readonly<Required<ListenerLimits>> = Object.freeze({
  maxConnections: 1024,
  maxBufferedBytes: 64 * 1024 * 1024,
  frameDeadlineMs: 10_000,
  idleTimeoutMs: 300_000,
  maxMessageElements: MAX_MESSAGE_ELEMENTS,
});

/** Reads the stream of one connection: what it holds of an unfinished frame, and how many frames it completed. */
export interface StreamParser {
  readonly buffered: number;
  readonly frames: number;
  dispose(): void;
}

/** One inbound connection as the guard tracks it. */
export interface Inbound {
  readonly remote: string;
  readonly parser: StreamParser;
  /**
   * Closes the connection (the transport's way: terminate a socket, send a WebSocket close).
   * `goingAway` is set when the listener stops (closeAll) rather than for something the peer did.
   */
  readonly close: (why: string, goingAway?: boolean) => void;
  /** performance.now() of the first byte of the unfinished frame; 0 when there is none. */
  frameStart: number;
  framesSeen: number;
  lastActive: number;
}

/** Why connections were closed or refused, for tests and /metrics. */
export interface InboundStats {
  accepted: number;
  /** Refused at once: the connection limit was reached. */
  overLimit: number;
  /** Closed for breaking the framing rules (bad frame, oversized, undecodable). */
  badFrames: number;
  /** Closed because their unfinished frame did not fit the shared buffer budget. */
  overBudget: number;
  /** Closed by the frame deadline. */
  frameDeadline: number;
  /** Closed by the idle timeout. */
  idle: number;
  /** Whole frames whose message was refused for its ids (the connection stayed open). */
  refusedMessages: number;
  /** TLS handshakes that failed (plaintext peer, untrusted or missing certificate). */
  tlsFailures: number;
}

export class InboundGuard {
  readonly limits: Readonly<Required<ListenerLimits>>;
  readonly budget: BufferBudget;
  readonly stats: InboundStats = {
    accepted: 0,
    overLimit: 0,
    badFrames: 0,
    overBudget: 0,
    frameDeadline: 0,
    idle: 0,
    refusedMessages: 0,
    tlsFailures: 0,
  };
  readonly warnings: RateLimitedLog;
  readonly #connections = new Set<Inbound>();
  #sweeper: ReturnType<typeof setInterval> | undefined;
  #reclaim: ReturnType<typeof setTimeout> | undefined;

  constructor(
    limits: ListenerLimits | undefined,
    readonly log: Logger,
  ) {
    this.limits = Object.freeze({ ...DEFAULT_LIMITS, ...definedOnly(limits ?? {}) });
    for (const [k, v] of Object.entries(this.limits)) {
      if (!(typeof v === "number" && v > 0)) throw new RangeError(`listener limit ${k} must be a positive number`);
    }
    this.budget = new BufferBudget(this.limits.maxBufferedBytes);
    this.warnings = new RateLimitedLog(log, { burst: 3 });
  }

  get size(): number {
    return this.#connections.size;
  }

  /** True when one more connection may open; otherwise counts and warns (the caller closes it). */
  admit(remote: string, listener: string | null): boolean {
    if (this.#connections.size < this.limits.maxConnections) return true;
    this.stats.overLimit++;
    this.warnings.write(
      `refused a connection from ${printable(remote)}: ${this.limits.maxConnections} connections are open (the limit)`,
      { listener },
    );
    return false;
  }

  add(c: Inbound): void {
    this.stats.accepted++;
    this.#connections.add(c);
    this.#startSweeping();
  }

  /** Forgets a closed connection and gives its buffer back. True when it was tracked. */
  remove(c: Inbound): boolean {
    const before = this.budget.used;
    c.parser.dispose();
    if (before - this.budget.used >= RECLAIM_AFTER) this.#reclaimSoon();
    const had = this.#connections.delete(c);
    if (this.#connections.size === 0) this.#stopSweeping();
    return had;
  }

  /**
   * Large buffers live outside the JS heap, and the garbage collector, which sees only their
   * handles, may leave them for many seconds: after a connection gave back megabytes, ask for a
   * collection (at most once a second, and not a blocking one: a full collection would stall the
   * event loop for tens of milliseconds), so that memory returns when the offending peers leave.
   */
  #reclaimSoon(): void {
    if (this.#reclaim) return;
    this.#reclaim = setTimeout(() => {
      this.#reclaim = undefined;
      Bun.gc(false);
    }, 1000);
    this.#reclaim.unref?.();
  }

  /** After each chunk: when the unfinished frame started, and that the connection is alive. */
  touched(c: Inbound, now = performance.now()): void {
    c.lastActive = now;
    const p = c.parser;
    if (p.buffered === 0) c.frameStart = 0;
    else if (c.frameStart === 0 || p.frames !== c.framesSeen) c.frameStart = now;
    c.framesSeen = p.frames;
  }

  /**
   * Closes `c` for `why` (counted under `kind`), with a rate-limited warning. `close` is for a
   * transport that says more than `c.close` can from `why` alone (a WebSocket close code).
   */
  reject(
    c: Inbound,
    kind: keyof InboundStats,
    why: string,
    listener: string | null,
    close: () => void = () => c.close(why),
  ): void {
    this.stats[kind]++;
    this.warnings.write(`closed the connection from ${printable(c.remote)}: ${why}`, { listener });
    this.remove(c);
    close();
  }

  /** A whole message refused for its ids: counted and warned about; the connection stays open. */
  refused(remote: string, why: string, listener: string | null): void {
    this.stats.refusedMessages++;
    this.warnings.write(`refused a message from ${remote}: ${why}`, { listener });
  }

  /** Closes every connection (on stop: going away), and writes the count of warnings held back. */
  closeAll(why: string): void {
    for (const c of [...this.#connections]) {
      this.remove(c);
      c.close(why, true);
    }
    this.warnings.flush();
  }

  #listener: string | null = null;
  /** The listener's address, for the warnings the sweeper writes. */
  set address(a: string | null) {
    this.#listener = a;
  }

  #startSweeping(): void {
    if (this.#sweeper) return;
    const { frameDeadlineMs, idleTimeoutMs } = this.limits;
    const every = Math.min(1000, Math.max(25, Math.min(frameDeadlineMs, idleTimeoutMs) / 4));
    this.#sweeper = setInterval(() => this.#sweep(), every);
    this.#sweeper.unref?.();
  }

  #stopSweeping(): void {
    if (this.#sweeper) clearInterval(this.#sweeper);
    this.#sweeper = undefined;
  }

  #sweep(): void {
    const now = performance.now();
    const { frameDeadlineMs, idleTimeoutMs } = this.limits;
    for (const c of [...this.#connections]) {
      if (c.frameStart > 0 && now - c.frameStart > frameDeadlineMs) {
        this.reject(
          c,
          "frameDeadline",
          `a frame did not complete within ${seconds(frameDeadlineMs)} of its first byte ` +
            `(${c.parser.buffered} bytes arrived)`,
          this.#listener,
        );
      } else if (now - c.lastActive > idleTimeoutMs) {
        this.stats.idle++;
        this.log.debug(`closed the connection from ${printable(c.remote)}: idle for ${seconds(idleTimeoutMs)}`);
        this.remove(c);
        c.close("idle");
      }
    }
  }
}

function seconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`;
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

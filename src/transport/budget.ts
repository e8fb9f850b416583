/**
 * A byte budget shared by a listener's connections: what their unfinished frames may hold
 * together. A connection that would take it past the limit is closed (its decoder throws), so a
 * crowd of peers each announcing a large frame and sending most of it cannot exhaust memory.
 */
import { TransportError } from "../core/errors.ts";

/**
 * The shared buffer budget would be exceeded: the connection is closed. One class for every
 * decoder (TCP frames, WebSocket messages), so a transport tells it apart by type, not by text.
 */
export class BufferBudgetError extends TransportError {
  constructor(limit: number) {
    super(
      `unfinished frames would hold more than ${limit} bytes across this listener's connections (its buffer limit)`,
    );
  }
}

export class BufferBudget {
  used = 0;
  /** Highest `used` seen, for tests and metrics. */
  peak = 0;

  constructor(readonly limit: number) {}

  /** Takes `n` bytes if they fit; false (nothing taken) when they do not. */
  reserve(n: number): boolean {
    if (this.used + n > this.limit) return false;
    this.used += n;
    if (this.used > this.peak) this.peak = this.used;
    return true;
  }

  /** Takes `n` bytes or throws BufferBudgetError (nothing taken): for decoders, whose caller closes the connection. */
  take(n: number): void {
    if (!this.reserve(n)) throw new BufferBudgetError(this.limit);
  }

  release(n: number): void {
    this.used = Math.max(0, this.used - n);
  }
}

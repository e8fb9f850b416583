/**
 * A bounded FIFO of received messages. When full, new messages are dropped and counted (never
 * blocking the receive loop, so one slow agent cannot stall a transport shared with others).
 */
export class Inbox<T> {
  #items: T[] = [];
  #head = 0;
  dropped = 0;
  received = 0;

  constructor(readonly maxSize = 1000) {
    if (!(maxSize >= 1)) throw new RangeError(`inbox size must be at least 1, got ${maxSize}`);
  }

  get size(): number {
    return this.#items.length - this.#head;
  }

  /** False (and counted) when the inbox is full. */
  push(item: T): boolean {
    if (this.size >= this.maxSize) {
      this.dropped++;
      return false;
    }
    this.#items.push(item);
    this.received++;
    return true;
  }

  /** Removes and returns up to `max` items, oldest first. */
  drain(max = Infinity): T[] {
    const end = Math.min(this.#items.length, this.#head + max);
    const out = this.#items.slice(this.#head, end);
    this.#head = end;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return out;
  }
}

/**
 * A first-in first-out queue for the hot paths (arrived messages, frames waiting to be written).
 * `Array.prototype.shift` moves every element, so a long queue drained one by one costs quadratic
 * time; this one advances a head index instead and drops the consumed prefix only now and then.
 */
export class Fifo<T> {
  #items: T[] = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(item: T): void {
    this.#items.push(item);
  }

  /** The item `i` places from the front (0: the next `shift` returns it); the caller keeps `i < length`. */
  at(i: number): T {
    return this.#items[this.#head + i]!;
  }

  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head]!;
    this.#items[this.#head++] = undefined as T; // let it be collected
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head > 4096 && this.#head * 2 > this.#items.length) {
      // Copying the live half is paid for by the shifts that made it the smaller half.
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  /** Empties the queue; returns what it held, in order. */
  clear(): T[] {
    const items = this.#head === 0 ? this.#items : this.#items.slice(this.#head);
    this.#items = [];
    this.#head = 0;
    return items;
  }
}

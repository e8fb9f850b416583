/** Wake-up listeners by channel, shared by every backend's notify/subscribe. */
import { logger } from "../observability/log.ts";

const log = logger("store");

export class Listeners {
  readonly #byChannel = new Map<string, Set<() => void>>();
  /** Channels whose listeners are already due to run: more fires before then are the same wake-up. */
  readonly #due = new Set<string>();

  /**
   * Adds a listener; returns its unsubscribe function (idempotent). `onEmpty` runs when a channel
   * loses its last listener.
   */
  add(channel: string, listener: () => void, onEmpty?: (channel: string) => void): () => void {
    let set = this.#byChannel.get(channel);
    if (!set) this.#byChannel.set(channel, (set = new Set()));
    // Wrap, so that subscribing the same function twice gives two independent subscriptions.
    const entry = () => listener();
    set.add(entry);
    return () => {
      const current = this.#byChannel.get(channel);
      if (!current?.delete(entry) || current.size > 0) return;
      this.#byChannel.delete(channel);
      onEmpty?.(channel);
    };
  }

  has(channel: string): boolean {
    return this.#byChannel.has(channel);
  }

  /**
   * Calls the channel's listeners on a later microtask (fires before then coalesce into it); a
   * throwing listener is logged and does not stop the others.
   */
  fire(channel: string): void {
    const set = this.#byChannel.get(channel);
    if (!set || this.#due.has(channel)) return;
    this.#due.add(channel);
    queueMicrotask(() => {
      this.#due.delete(channel);
      for (const l of set) {
        try {
          l();
        } catch (err) {
          log.error("a store wake-up listener threw", { channel, err });
        }
      }
    });
  }

  clear(): void {
    this.#byChannel.clear();
  }
}

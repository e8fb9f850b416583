/**
 * What every transport shares: delivery of arrived messages to listeners or to a queue that
 * `receive` waits on, timeouts, and verified receiving. Subclasses call `deliver` on arrival and
 * `endDelivery` when they stop.
 */
import { TimeoutError, TransportError } from "../core/errors.ts";
import type { Message } from "../core/message.ts";
import type { Logger } from "../observability/log.ts";
import { Fifo } from "./fifo.ts";
import type { KeyLookup, MessageListener, Transport } from "./transport.ts";
import { unverifiedReason } from "./verify.ts";

interface Waiter {
  resolve: (m: Message) => void;
  reject: (e: Error) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

export abstract class TransportBase implements Transport {
  abstract readonly address: string | null;
  abstract readonly started: boolean;
  abstract start(): Promise<void>;
  abstract stop(): Promise<void>;
  abstract send(message: Message): Promise<void>;
  protected abstract readonly log: Logger;

  readonly #queue = new Fifo<Message>();
  #waiters: Waiter[] = [];
  #listeners = new Set<MessageListener>();

  /** For messages and logs: the address, or what kind of transport this is when it has none. */
  protected describe(): string {
    return this.address ?? `${this.constructor.name} (not listening)`;
  }

  /** Hands an arrived message on; never throws (a failing listener is logged, not propagated). */
  protected deliver(message: Message): void {
    if (this.#listeners.size > 0) {
      for (const l of this.#listeners) {
        try {
          l(message);
        } catch (err) {
          this.log.error("a message listener threw; the message was still delivered to the others", {
            id: message.id,
            err,
          });
        }
      }
      return;
    }
    const w = this.#waiters.shift();
    if (w) {
      if (w.timer) clearTimeout(w.timer);
      w.resolve(message);
      return;
    }
    this.#queue.push(message);
  }

  /** Rejects every pending `receive`; called by `stop`. Queued messages stay readable. */
  protected endDelivery(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) {
      if (w.timer) clearTimeout(w.timer);
      w.reject(new TransportError(`${this.describe()} was stopped while a receive was waiting`));
    }
  }

  onMessage(listener: MessageListener): () => void {
    this.#listeners.add(listener);
    // Nothing that arrived before the listener is lost.
    for (let m = this.#queue.shift(); m; m = this.#queue.shift()) this.deliver(m);
    return () => void this.#listeners.delete(listener);
  }

  receive(timeoutMs?: number): Promise<Message> {
    const queued = this.#queue.shift();
    if (queued) return Promise.resolve(queued);
    if (!this.started)
      return Promise.reject(new TransportError(`cannot receive on ${this.describe()}: it is not started`));
    if (this.#listeners.size > 0) {
      return Promise.reject(
        new TransportError(`cannot receive on ${this.describe()}: its messages go to onMessage listeners`),
      );
    }
    if (timeoutMs !== undefined && timeoutMs <= 0) {
      return Promise.reject(new TimeoutError(`no message arrived on ${this.describe()}`));
    }
    return new Promise<Message>((resolve, reject) => {
      const w: Waiter = { resolve, reject, timer: undefined };
      if (timeoutMs !== undefined) {
        w.timer = setTimeout(() => {
          const i = this.#waiters.indexOf(w);
          if (i >= 0) this.#waiters.splice(i, 1);
          reject(new TimeoutError(`no message arrived on ${this.describe()} within ${timeoutMs} ms`));
        }, timeoutMs);
      }
      this.#waiters.push(w);
    });
  }

  async receiveVerified(keys: KeyLookup, timeoutMs?: number): Promise<Message> {
    const deadline = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs;
    for (;;) {
      // With the deadline passed, messages already queued are still examined; only an empty queue times out.
      const m = await this.receive(deadline === Infinity ? undefined : Math.max(0, deadline - Date.now()));
      const why = await unverifiedReason(m, keys);
      if (why === null) return m;
      this.log.debug(`dropped message ${m.id}: ${why}`, { sender: m.sender });
    }
  }
}

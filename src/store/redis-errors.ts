/** The 'error' listener every ioredis client of the Redis store gets. */
import type { Redis } from "ioredis";
import { logger } from "../observability/log.ts";

const log = logger("store.redis");

/**
 * ioredis emits 'error' on every failed reconnect and prints a stack for each one that nobody
 * listens to. This listens, keeps the last reason for error messages, and logs one line at first
 * and then at most every 10 s, plus one line when Redis is reachable again. Nothing is logged
 * before the first connection: a failed open is reported once, by the StoreError it throws.
 */
export class ErrorLog {
  last: Error | undefined;
  #connected = false;
  #lastLogged = 0;
  #suppressed = 0;
  constructor(readonly address: string) {}

  watch(client: Redis): Redis {
    client.on("error", (err: Error) => {
      this.last = err;
      const now = Date.now();
      if (!this.#connected) return;
      if (now - this.#lastLogged < 10_000) return void this.#suppressed++;
      log.warn(
        `Redis at ${this.address} is unreachable: ${err.message}`,
        this.#suppressed ? { repeated: this.#suppressed } : undefined,
      );
      this.#lastLogged = now;
      this.#suppressed = 0;
    });
    client.on("ready", () => {
      if (this.last !== undefined && this.#connected) log.info(`Redis at ${this.address} is reachable again`);
      this.last = undefined;
      this.#connected = true;
    });
    return client;
  }
}

/**
 * Wakes the decide loop: on a message, on a task event, or after a timeout, whichever comes first.
 * Wake-ups that arrive while the loop is busy are remembered, so none is lost, and coalesced, so a
 * burst of events costs one extra pass.
 */
export class Scheduler {
  #pending = false;
  #resolve: (() => void) | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;

  wake(): void {
    if (this.#resolve) {
      const r = this.#resolve;
      this.#resolve = undefined;
      clearTimeout(this.#timer);
      r();
    } else {
      this.#pending = true;
    }
  }

  /** Resolves true when woken, false on timeout. */
  wait(timeoutMs: number): Promise<boolean> {
    if (this.#pending) {
      this.#pending = false;
      return Promise.resolve(true);
    }
    return new Promise<boolean>((resolve) => {
      this.#resolve = () => resolve(true);
      this.#timer = setTimeout(() => {
        this.#resolve = undefined;
        resolve(false);
      }, timeoutMs);
    });
  }
}

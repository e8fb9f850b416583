/**
 * Wake-up channels for drivers that can only poll for other processes' notifications (file,
 * SQLite): each watched channel with the mark it was last seen at (a file's token, a sequence
 * number), and one interval timer that runs `poll` while any channel is watched.
 */
export class PolledChannels<M> {
  readonly #watched = new Map<string, { mark: M; heard: (channel: string) => void }>();
  readonly #pollMs: number;
  readonly #poll: () => void;
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(pollMs: number, poll: () => void) {
    this.#pollMs = pollMs;
    this.#poll = poll;
  }

  get size(): number {
    return this.#watched.size;
  }

  /** Hears `channel` from `mark` on: `heard(channel)` when a poll finds another mark. */
  watch(channel: string, mark: M, heard: (channel: string) => void): void {
    this.#watched.set(channel, { mark, heard });
    this.#timer ??= setInterval(this.#poll, this.#pollMs);
  }

  unwatch(channel: string): void {
    this.#watched.delete(channel);
    if (this.#watched.size === 0) this.#stop();
  }

  /** Records that a watched channel is at `mark` (after our own publish, which no poll must echo). */
  mark(channel: string, mark: M): void {
    const w = this.#watched.get(channel);
    if (w) w.mark = mark;
  }

  /**
   * For `poll`: each watched channel whose mark `markOf(channel)` changed is heard. When `markOf`
   * throws, `onError` gets it and the other channels are still checked; without `onError` it throws.
   */
  check(markOf: (channel: string) => M, onError?: (channel: string, err: unknown) => void): void {
    for (const [channel, w] of this.#watched) {
      let mark: M;
      try {
        mark = markOf(channel);
      } catch (err) {
        if (!onError) throw err;
        onError(channel, err);
        continue;
      }
      if (mark === w.mark) continue;
      w.mark = mark;
      w.heard(channel);
    }
  }

  close(): void {
    this.#stop();
    this.#watched.clear();
  }

  #stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

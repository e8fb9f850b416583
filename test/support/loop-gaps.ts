/**
 * The longest gap between the ticks of an interval timer: how long the event loop was held by
 * other work (what lease renewals, heartbeats and /healthz would have waited).
 */
export function watchLoopGaps(everyMs: number): { readonly maxGapMs: number; stop(): void } {
  let last = performance.now();
  let maxGapMs = 0;
  const ticker = setInterval(() => {
    const now = performance.now();
    maxGapMs = Math.max(maxGapMs, now - last);
    last = now;
  }, everyMs);
  return {
    get maxGapMs() {
      return maxGapMs;
    },
    stop: () => clearInterval(ticker),
  };
}

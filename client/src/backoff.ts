/**
 * Exponential back-off with full jitter (AWS architecture blog, "Exponential Backoff And Jitter"):
 * attempt n waits a uniformly random time in [0, min(max, min * 2^n)). Full jitter spreads a crowd of
 * clients that lost the same node over the whole window instead of sending them back in waves.
 */
export function backoffDelay(attempt: number, minDelay: number, maxDelay: number, random: () => number = Math.random): number {
  // 2^n overflows to Infinity for large n; Math.min keeps the cap.
  const cap = Math.min(maxDelay, minDelay * 2 ** Math.max(0, attempt));
  return Math.floor(random() * cap);
}

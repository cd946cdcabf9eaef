/**
 * Token buckets per key (a project): `rate` tokens per second, holding at most `rate`
 * (one second of burst). Pure logic on an injected clock; refilled lazily on take().
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Takes `n` tokens for `key` at `rate`/s; false (and nothing taken) when there are not enough. */
  take(key: string, rate: number, n = 1): boolean {
    const now = this.now();
    let b = this.buckets.get(key);
    if (b === undefined) {
      b = { tokens: rate, at: now };
      this.buckets.set(key, b);
    } else {
      b.tokens = Math.min(rate, b.tokens + ((now - b.at) / 1000) * rate);
      b.at = now;
    }
    if (b.tokens < n) return false;
    b.tokens -= n;
    return true;
  }
}

import { describe, expect, it } from 'vitest';
import { RateLimiter } from '../../src/core/projects/rate-limiter.js';

describe('RateLimiter (token bucket per key)', () => {
  it('allows a burst of `rate`, then refills at `rate` per second', () => {
    let now = 0;
    const rl = new RateLimiter(() => now);
    for (let i = 0; i < 5; i++) expect(rl.take('p', 5)).toBe(true);
    expect(rl.take('p', 5)).toBe(false);
    now += 200; // one token back
    expect(rl.take('p', 5)).toBe(true);
    expect(rl.take('p', 5)).toBe(false);
    now += 10_000; // never more than one second's worth
    for (let i = 0; i < 5; i++) expect(rl.take('p', 5)).toBe(true);
    expect(rl.take('p', 5)).toBe(false);
  });

  it('takes n tokens at once, all or nothing', () => {
    const now = 0;
    const rl = new RateLimiter(() => now);
    expect(rl.take('p', 10, 7)).toBe(true);
    expect(rl.take('p', 10, 4)).toBe(false);
    expect(rl.take('p', 10, 3)).toBe(true);
  });

  it('keeps keys apart', () => {
    const rl = new RateLimiter(() => 0);
    expect(rl.take('a', 1)).toBe(true);
    expect(rl.take('a', 1)).toBe(false);
    expect(rl.take('b', 1)).toBe(true);
  });
});

import { describe, expect, it } from 'vitest';
import { ConsumerSignal, decodeSignal, encodeSignal, isSignalFrame } from '../../src/core/backend/consumer-signal.js';
import { isConsumerFrame } from '../../src/cluster/consumers.js';

describe('ConsumerSignal', () => {
  const clock = (): { now: () => number; advance: (ms: number) => void } => {
    let t = 1_000_000;
    return { now: () => t, advance: (ms) => (t += ms) };
  };

  it('frames: pids round-trip, and the marker is neither a consumer frame nor an envelope version', () => {
    const f = encodeSignal(['default', 'shop']);
    expect(isSignalFrame(f)).toBe(true);
    expect(isConsumerFrame(f)).toBe(false);
    expect(f[0]! > 15).toBe(true);
    expect(decodeSignal(f)).toEqual(['default', 'shop']);
    expect(decodeSignal(encodeSignal([]))).toEqual([]);
    expect(() => decodeSignal(Buffer.from([1, 2]))).toThrow();
  });

  it('assumes consumers everywhere for one ttl after start, then only for announced projects until ttl after the last announcement', () => {
    const c = clock();
    const s = new ConsumerSignal(15_000, () => true, c.now);
    expect(s.mayHaveConsumers('shop')).toBe(true);
    c.advance(5000);
    s.receive(encodeSignal(['shop']));
    c.advance(10_000);
    expect(s.mayHaveConsumers('shop')).toBe(true);
    expect(s.mayHaveConsumers('blog')).toBe(false);
    c.advance(4999);
    expect(s.mayHaveConsumers('shop')).toBe(true);
    c.advance(1);
    expect(s.mayHaveConsumers('shop')).toBe(false);
  });

  it('after a gap, and while the bus is down (and one ttl after it is back), every project counts as having consumers', () => {
    const c = clock();
    let ready = true;
    const s = new ConsumerSignal(1000, () => ready, c.now);
    c.advance(1000);
    expect(s.mayHaveConsumers('blog')).toBe(false);
    s.gap();
    expect(s.mayHaveConsumers('blog')).toBe(true);
    c.advance(1000);
    expect(s.mayHaveConsumers('blog')).toBe(false);
    ready = false;
    c.advance(5000);
    expect(s.mayHaveConsumers('blog')).toBe(true);
    c.advance(5000);
    ready = true;
    expect(s.mayHaveConsumers('blog')).toBe(true);
    c.advance(999);
    expect(s.mayHaveConsumers('blog')).toBe(true);
    c.advance(1);
    expect(s.mayHaveConsumers('blog')).toBe(false);
  });
});

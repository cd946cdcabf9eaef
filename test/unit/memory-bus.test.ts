import { describe, expect, it, vi } from 'vitest';
import { MemoryBus } from '../../src/cluster/memory-bus.js';

describe('MemoryBus.publishOnce', () => {
  it('publishes the first claim of a key, answers later ones with the stored value until the claim expires', async () => {
    vi.useFakeTimers();
    try {
      const bus = new MemoryBus();
      const got: string[] = [];
      bus.onMessage((_c, p) => got.push(p.toString()));
      await bus.subscribe('t:x');
      const once = (value: string) => ({ key: 'p/k', value, ttlMs: 1000 });
      expect(await bus.publishOnce('t:x', Buffer.from('one'), once('id-1'))).toBeUndefined();
      expect(await bus.publishOnce('t:x', Buffer.from('two'), once('id-2'))).toBe('id-1');
      vi.advanceTimersByTime(1001);
      expect(await bus.publishOnce('t:x', Buffer.from('three'), once('id-3'))).toBeUndefined();
      await Promise.resolve();
      expect(got).toEqual(['one', 'three']);
    } finally {
      vi.useRealTimers();
    }
  });
});

import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Bus } from '../../src/cluster/bus.js';
import { Interest } from '../../src/cluster/interest.js';
import { MemoryBus } from '../../src/cluster/memory-bus.js';

function spiedBus() {
  const bus = new MemoryBus();
  const subscribe = vi.spyOn(bus, 'subscribe');
  const unsubscribe = vi.spyOn(bus, 'unsubscribe');
  return { bus, subscribe, unsubscribe };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('Interest with no unsubscribe delay', () => {
  it('one bus subscribe for many acquires; unsubscribe only on the last release', async () => {
    const { bus, subscribe, unsubscribe } = spiedBus();
    const interest = new Interest(bus, 0);
    await interest.acquire('t:a');
    await interest.acquire('t:a');
    await interest.acquire('t:a');
    expect(subscribe).toHaveBeenCalledTimes(1);
    expect(subscribe).toHaveBeenCalledWith('t:a');
    expect(interest.size).toBe(1);

    interest.release('t:a');
    interest.release('t:a');
    expect(unsubscribe).not.toHaveBeenCalled();
    interest.release('t:a');
    expect(unsubscribe).toHaveBeenCalledTimes(1);
    expect(unsubscribe).toHaveBeenCalledWith('t:a');
    expect(interest.size).toBe(0);
  });

  it('keeps channels independent', async () => {
    const { bus, subscribe, unsubscribe } = spiedBus();
    const interest = new Interest(bus, 0);
    await interest.acquire('t:a');
    await interest.acquire('t:b');
    expect(subscribe.mock.calls.map((c) => c[0])).toEqual(['t:a', 't:b']);
    interest.release('t:a');
    expect(unsubscribe.mock.calls.map((c) => c[0])).toEqual(['t:a']);
    expect(interest.size).toBe(1);
  });

  it('acquiring again after the last release subscribes again', async () => {
    const { bus, subscribe, unsubscribe } = spiedBus();
    const interest = new Interest(bus, 0);
    await interest.acquire('t:a');
    interest.release('t:a');
    await interest.acquire('t:a');
    expect(subscribe).toHaveBeenCalledTimes(2);
    expect(unsubscribe).toHaveBeenCalledTimes(1);
    expect(interest.size).toBe(1);
  });

  it('release of an unknown channel, or one released too often, is harmless', async () => {
    const { bus, unsubscribe } = spiedBus();
    const interest = new Interest(bus, 0);
    interest.release('t:never');
    await interest.acquire('t:a');
    interest.release('t:a');
    interest.release('t:a');
    interest.release('t:a');
    expect(unsubscribe).toHaveBeenCalledTimes(1);
    expect(interest.size).toBe(0);
    // Over-releasing must not make the next acquire count from below zero.
    await interest.acquire('t:a');
    interest.release('t:a');
    expect(unsubscribe).toHaveBeenCalledTimes(2);
  });

  it('acquire resolves when the bus subscription resolves; ready() waits for it too', async () => {
    let resolve!: () => void;
    const pending = new Promise<void>((r) => (resolve = r));
    const bus: Bus = {
      publish: () => Promise.resolve(),
      publishOnce: () => Promise.resolve(undefined),
      publishPositioned: () => Promise.reject(new Error('not used here')),
      publishPositionedMany: () => [],
      readHistory: () => Promise.reject(new Error('not used here')),
      removeHistory: () => Promise.resolve(),
      subscribe: vi.fn(() => pending),
      unsubscribe: vi.fn(() => Promise.resolve()),
      onMessage: () => {},
      onGap: () => {},
      isReady: () => true,
      start: () => Promise.resolve(),
      close: () => Promise.resolve(),
    };
    const interest = new Interest(bus, 0);
    let acquired = false;
    let readied = false;
    void interest.acquire('t:a').then(() => (acquired = true));
    void interest.ready('t:a').then(() => (readied = true));
    // A second holder waits for the same subscription.
    let second = false;
    void interest.acquire('t:a').then(() => (second = true));
    await Promise.resolve();
    await Promise.resolve();
    expect([acquired, readied, second]).toEqual([false, false, false]);
    resolve();
    await pending;
    await Promise.resolve();
    expect([acquired, readied, second]).toEqual([true, true, true]);
    expect(bus.subscribe).toHaveBeenCalledTimes(1);
  });

  it('ready() of a channel not held resolves at once', async () => {
    const interest = new Interest(new MemoryBus(), 0);
    await expect(interest.ready('t:none')).resolves.toBeUndefined();
  });

  it('a negative delay behaves like 0 (immediate)', async () => {
    const { bus, unsubscribe } = spiedBus();
    const interest = new Interest(bus, -5);
    await interest.acquire('t:a');
    interest.release('t:a');
    expect(unsubscribe).toHaveBeenCalledTimes(1);
  });
});

describe('Interest with an unsubscribe delay', () => {
  it('unsubscribes only after the delay', async () => {
    vi.useFakeTimers();
    const { bus, unsubscribe } = spiedBus();
    const interest = new Interest(bus, 1000);
    await interest.acquire('t:a');
    interest.release('t:a');
    expect(unsubscribe).not.toHaveBeenCalled();
    expect(interest.size).toBe(1);
    vi.advanceTimersByTime(999);
    expect(unsubscribe).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(unsubscribe).toHaveBeenCalledTimes(1);
    expect(unsubscribe).toHaveBeenCalledWith('t:a');
    expect(interest.size).toBe(0);
  });

  it('a re-acquire within the delay cancels the unsubscribe and costs no new subscribe', async () => {
    vi.useFakeTimers();
    const { bus, subscribe, unsubscribe } = spiedBus();
    const interest = new Interest(bus, 1000);
    await interest.acquire('t:a');
    interest.release('t:a');
    vi.advanceTimersByTime(500);
    await interest.acquire('t:a');
    vi.advanceTimersByTime(10_000);
    expect(unsubscribe).not.toHaveBeenCalled();
    expect(subscribe).toHaveBeenCalledTimes(1);
    expect(interest.size).toBe(1);

    // The refcount is right after the cancelled drop: one release drops it again (after the delay).
    interest.release('t:a');
    vi.advanceTimersByTime(1000);
    expect(unsubscribe).toHaveBeenCalledTimes(1);
    expect(interest.size).toBe(0);
  });

  it('repeated churn within the delay never touches the bus', async () => {
    vi.useFakeTimers();
    const { bus, subscribe, unsubscribe } = spiedBus();
    const interest = new Interest(bus, 1000);
    for (let i = 0; i < 20; i++) {
      await interest.acquire('t:a');
      interest.release('t:a');
      vi.advanceTimersByTime(100);
    }
    expect(subscribe).toHaveBeenCalledTimes(1);
    expect(unsubscribe).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1000);
    expect(unsubscribe).toHaveBeenCalledTimes(1);
  });

  it('a release while the drop is pending is harmless and does not shorten or double the drop', async () => {
    vi.useFakeTimers();
    const { bus, unsubscribe } = spiedBus();
    const interest = new Interest(bus, 1000);
    await interest.acquire('t:a');
    interest.release('t:a');
    vi.advanceTimersByTime(500);
    interest.release('t:a');
    interest.release('t:unknown');
    vi.advanceTimersByTime(499);
    expect(unsubscribe).not.toHaveBeenCalled();
    vi.advanceTimersByTime(10_000);
    expect(unsubscribe).toHaveBeenCalledTimes(1);
  });

  it('the delay timer does not keep the process alive', async () => {
    const { bus } = spiedBus();
    const interest = new Interest(bus, 60_000);
    const spy = vi.spyOn(globalThis, 'setTimeout');
    await interest.acquire('t:a');
    interest.release('t:a');
    const timer = spy.mock.results.at(-1)!.value as NodeJS.Timeout;
    expect(timer.hasRef()).toBe(false);
    clearTimeout(timer);
    spy.mockRestore();
  });
});

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { NodeRecord, Presence, PresenceEntry } from '../../src/cluster/presence.js';
import { PresenceTracker } from '../../src/core/presence-tracker.js';
import { RefreshLoop } from '../../src/core/refresh-loop.js';
import { createLogger } from '../../src/observability/logger.js';
import { Metrics } from '../../src/observability/metrics.js';

/**
 * The presence keep-alive's schedule (pure logic, on fake timers): a slow keep-alive is followed
 * at once by the next instead of a period later, a slow sweep never delays it, and a node whose
 * keep-alives stopped landing for a whole TTL says so once. The cluster side (a SIGSTOPped node
 * swept, then re-joining) is test/cluster/presence-stall.test.ts.
 */

const TTL = 300; // period 100
const DESCRIBE = () => ({ id: 'n1', wsAddress: '', httpAddress: '', grpcAddress: '', version: '', startedAt: 0, connections: 0, subscriptions: 0 });

/** A Presence whose refresh and sweep take `refreshMs(i)` / `sweepMs` of fake time and record when they start. */
function fakePresence(o: { refreshMs?: (i: number) => number; fails?: (i: number) => boolean; sweepMs?: number }) {
  const refreshes: number[] = [];
  const sweeps: number[] = [];
  const after = (ms: number, fail = false): Promise<void> =>
    new Promise((resolve, reject) => setTimeout(() => (fail ? reject(new Error('redis presence is not connected')) : resolve()), ms));
  const presence = {
    refresh(_entries: readonly PresenceEntry[], _node: NodeRecord): Promise<void> {
      const i = refreshes.push(Date.now()) - 1;
      return after(o.refreshMs?.(i) ?? 1, o.fails?.(i) ?? false);
    },
    sweep(): Promise<void> {
      sweeps.push(Date.now());
      return after(o.sweepMs ?? 1);
    },
  } as unknown as Presence;
  return { presence, refreshes, sweeps };
}

function tracker(presence: Presence, now: () => number = () => Date.now()) {
  const logs: Array<{ level: number; msg: string; sinceLastMs?: number }> = [];
  const sink = { write: (line: string) => void logs.push(JSON.parse(line) as (typeof logs)[number]) };
  const metrics = new Metrics('n1');
  const t = new PresenceTracker(presence, 'n1', TTL, metrics, createLogger('warn', sink), now);
  const late = async (): Promise<number> => (await metrics.presenceHeartbeatsLate.get()).values[0]?.value ?? 0;
  return { t, logs, late };
}

/** close() waits for the writes in flight, which finish on fake time. */
async function closeAll(t: PresenceTracker): Promise<void> {
  const closed = t.close();
  await vi.advanceTimersByTimeAsync(5000);
  await closed;
}

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('presence keep-alive schedule', () => {
  it('a keep-alive slower than the period is followed at once by the next, not a period later', async () => {
    const { presence, refreshes } = fakePresence({ refreshMs: (i) => (i === 0 ? 150 : 10) });
    const { t } = tracker(presence);
    t.start(DESCRIBE);
    await vi.advanceTimersByTimeAsync(460);
    await closeAll(t);
    // A fixed interval skipping the overlapped tick gave 0, 200, 300, 400: a 200 ms gap instead of 150.
    expect(refreshes).toEqual([0, 150, 250, 350, 450]);
  });

  it('runs never overlap: each starts after the previous one ended', async () => {
    const { presence, refreshes } = fakePresence({ refreshMs: () => 260 });
    const { t } = tracker(presence);
    t.start(DESCRIBE);
    await vi.advanceTimersByTimeAsync(1000);
    await closeAll(t);
    expect(refreshes).toEqual([0, 260, 520, 780]);
  });

  it('a slow sweep (many expired entries of a dead node) never delays the keep-alive', async () => {
    const { presence, refreshes, sweeps } = fakePresence({ sweepMs: 1000 });
    const { t } = tracker(presence);
    t.start(DESCRIBE);
    await vi.advanceTimersByTimeAsync(450);
    await closeAll(t);
    expect(refreshes).toEqual([0, 100, 200, 300, 400]);
    expect(sweeps).toEqual([0]);
  });
});

describe('late keep-alives', () => {
  it('keep-alives landing in time count nothing', async () => {
    const { presence } = fakePresence({ refreshMs: () => 50 });
    const { t, logs, late } = tracker(presence);
    t.start(DESCRIBE);
    await vi.advanceTimersByTimeAsync(2000);
    await closeAll(t);
    expect(await late()).toBe(0);
    expect(logs).toEqual([]);
  });

  it('a stalled process (the clock jumps past the TTL between two keep-alives) is counted and logged once', async () => {
    let stalled = 0;
    const { presence, refreshes } = fakePresence({});
    const { t, logs, late } = tracker(presence, () => Date.now() + stalled);
    t.start(DESCRIBE);
    await vi.advanceTimersByTimeAsync(250);
    stalled = 400; // the process got no CPU for 400 ms (> TTL): the next keep-alive starts late
    await vi.advanceTimersByTimeAsync(500);
    await closeAll(t);
    expect(refreshes.length).toBeGreaterThan(5);
    expect(await late()).toBe(1);
    expect(logs.map((l) => [l.level, l.msg.split(':')[0], l.sinceLastMs])).toEqual([[40, 'presence heartbeat late', 500]]);
  });

  it('keep-alives failing for longer than the TTL (Redis unreachable) count one episode, however many fail', async () => {
    // Fails from the 2nd to the 9th run (t = 100 … 800): 800 ms without one landing.
    const { presence } = fakePresence({ fails: (i) => i >= 1 && i <= 8 });
    const { t, logs, late } = tracker(presence);
    t.start(DESCRIBE);
    await vi.advanceTimersByTimeAsync(2000);
    await closeAll(t);
    expect(await late()).toBe(1);
    expect(logs).toHaveLength(1);
    expect(logs[0]!.sinceLastMs).toBe(300);
  });
});

describe('RefreshLoop', () => {
  it('stops: no run starts after stop(), even one that was due', async () => {
    const starts: number[] = [];
    const loop = new RefreshLoop(100, async () => void starts.push(Date.now()));
    loop.start();
    await vi.advanceTimersByTimeAsync(150);
    loop.stop();
    await vi.advanceTimersByTimeAsync(500);
    expect(starts).toEqual([0, 100]);
  });

  it('a task that throws at once does not end the loop', async () => {
    let n = 0;
    const loop = new RefreshLoop(100, () => {
      n++;
      throw new Error('sync');
    });
    loop.start();
    await vi.advanceTimersByTimeAsync(250);
    loop.stop();
    expect(n).toBe(3);
  });
});

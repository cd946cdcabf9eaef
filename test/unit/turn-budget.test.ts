import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { MemoryBus } from '../../src/cluster/memory-bus.js';
import { MemoryConsumers } from '../../src/cluster/memory-consumers.js';
import { MemoryPresence } from '../../src/cluster/memory-presence.js';
import type { Identity } from '../../src/core/auth/authenticator.js';
import type { Outbound } from '../../src/core/message.js';
import { DELIVERIES_PER_TURN, PushNode } from '../../src/core/node.js';
import { ProjectRegistry, type ProjectSet } from '../../src/core/projects/registry.js';
import { Session } from '../../src/core/session.js';
import { nodeChannel } from '../../src/core/targeting.js';
import { FLUSH_SLICE_MS, Flusher, type Flushable } from '../../src/ingress/ws/flusher.js';
import { createLogger } from '../../src/observability/logger.js';
import { Metrics } from '../../src/observability/metrics.js';

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('Flusher', () => {
  it('combine: the same frames in the same order give the same Buffer; others a new one', () => {
    const f = new Flusher(new Metrics('t'));
    const a = Buffer.from('aa');
    const b = Buffer.from('bbb');
    const one = f.combine([a, b], 5);
    expect(one.toString()).toBe('aabbb');
    expect(f.combine([a, b], 5)).toBe(one);
    const other = f.combine([b, a], 5);
    expect(other).not.toBe(one);
    expect(other.toString()).toBe('bbbaa');
    expect(f.combine([a, Buffer.from('bbb')], 5)).not.toBe(other);
  });

  it(`yields to the event loop after ~${FLUSH_SLICE_MS} ms and writes the rest next turn, each once`, async () => {
    const f = new Flusher(new Metrics('t'));
    const flushed: number[] = [];
    const conns: Flushable[] = Array.from({ length: 200 }, (_, i) => ({
      flush: () => {
        const until = performance.now() + 0.5; // a slow socket write
        while (performance.now() < until);
        flushed.push(i);
        return 1;
      },
    }));
    for (const c of conns) f.schedule(c);
    await turn();
    expect(flushed.length).toBeGreaterThan(0);
    expect(flushed.length).toBeLessThan(200);
    for (let t = 0; t < 200 && flushed.length < 200; t++) await turn();
    expect(flushed).toEqual(conns.map((_, i) => i));
  });
});

async function budgetNode(): Promise<PushNode> {
    const authenticator = { authenticate: (): Promise<Identity> => Promise.reject(new Error('no login')) };
    const projects = new ProjectRegistry({ projects: [{ pid: 'default', name: 'default', authenticator, limits: {} }], apiKeys: new Map() } as ProjectSet);
    const bus = new MemoryBus();
    const node = new PushNode({
      nodeId: 'budget',
      bus,
      consumers: new MemoryConsumers(bus, nodeChannel),
      consumerTtlMs: 15_000,
      projects,
      metrics: new Metrics('budget'),
      logger: createLogger('silent', new Writable({ write: (_c, _e, cb) => cb() })),
      maxPushBytes: 1024,
      idempotencyWindowMs: 60_000,
      unsubscribeDelayMs: 500,
      presence: new MemoryPresence(),
      presenceTtlMs: 30_000,
    });
    await node.start();
    return node;
}

describe('PushNode: deliveries per turn', () => {
  it('holds bus messages while the transports are behind, then hands them out in order', async () => {
    const node = await budgetNode();
    const got: string[] = [];
    const session = new Session('budget-y-1', 'default', { deliver: (out: Outbound) => got.push(Buffer.from(out.message.data).toString()) });
    await node.hub.add(session);
    await node.hub.subscribe(session, 'h');
    let behind = true;
    node.holdDeliveriesWhile(() => behind);
    await node.publisher.push({ uid: '', topic: 'h', data: Buffer.from('a') }, 'test');
    await node.publisher.push({ uid: '', topic: 'h', data: Buffer.from('b') }, 'test');
    for (let t = 0; t < 5; t++) await turn();
    expect(got).toEqual([]);
    behind = false;
    for (let t = 0; t < 5 && got.length < 2; t++) await turn();
    expect(got).toEqual(['a', 'b']);
    await node.close();
  });

  it(`hands out at most ${DELIVERIES_PER_TURN} deliveries per turn, the rest in later turns, in order`, async () => {
    const node = await budgetNode();
    const got: string[] = [];
    const sinks = 100;
    for (let s = 0; s < sinks; s++) {
      const sink = { deliver: (out: Outbound) => s === 0 && got.push(Buffer.from(out.message.data).toString()) };
      const session = new Session(`budget-x-${s}`, 'default', sink);
      await node.hub.add(session);
      await node.hub.subscribe(session, 't');
    }
    const pushes = (3 * DELIVERIES_PER_TURN) / sinks;
    await Promise.all(Array.from({ length: pushes }, (_, i) => node.publisher.push({ uid: '', topic: 't', data: Buffer.from(`m${i}`) }, 'test')));
    // Every push was answered; by then at most one turn's worth was handed out.
    expect(got.length).toBeLessThanOrEqual(DELIVERIES_PER_TURN / sinks);
    for (let t = 0; t < 20 && got.length < pushes; t++) await turn();
    expect(got).toEqual(Array.from({ length: pushes }, (_, i) => `m${i}`));
    await node.close();
  });
});

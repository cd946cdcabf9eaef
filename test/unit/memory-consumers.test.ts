import { afterEach, describe, expect, it, vi } from 'vitest';
import { decodeConsumerFrame, type ConsumerEntry } from '../../src/cluster/consumers.js';
import { MemoryBus } from '../../src/cluster/memory-bus.js';
import { MemoryConsumers } from '../../src/cluster/memory-consumers.js';
import { decodeEvent, encodeEvent, stickyHash } from '../../src/core/backend/event.js';
import { nodeChannel } from '../../src/core/targeting.js';

interface Heard {
  node: string;
  consumer: string;
  event: string;
}

/** A MemoryConsumers over a MemoryBus on which nodes "A" and "B" listen to their channels. */
async function setup(nodes = ['A', 'B']) {
  const bus = new MemoryBus();
  const heard: Heard[] = [];
  bus.onMessage((channel, payload) => {
    const { consumerId, event } = decodeConsumerFrame(payload);
    heard.push({ node: channel.slice('n:'.length), consumer: consumerId, event: decodeEvent(event).id });
  });
  for (const n of nodes) await bus.subscribe(nodeChannel(n));
  const dir = new MemoryConsumers(bus, nodeChannel);
  let seq = 0;
  const event = (pid = 'shop', cid = 'A-x-1') => encodeEvent({ type: 'request', id: `e${++seq}`, pid, uid: '', cid, node: 'A', time: 0, requestId: String(seq) });
  /** Lets the bus deliver (it delivers on a microtask). */
  const settle = () => new Promise((r) => setTimeout(r, 0));
  return { bus, dir, heard, event, settle };
}

const entry = (node: string, id: string, group = 'g', pid = 'shop'): ConsumerEntry => ({ pid, group, node, id });
const TTL = 60_000;

afterEach(() => {
  vi.useRealTimers();
});

describe('MemoryConsumers', () => {
  it('reaches nobody (0) without consumers, and only the project that registered', async () => {
    const { dir, heard, event, settle } = await setup();
    expect(await dir.dispatch('shop', event(), undefined)).toBe(0);
    await dir.register([entry('A', 'c1', 'g', 'blog')], TTL);
    expect(await dir.dispatch('shop', event(), undefined)).toBe(0);
    await settle();
    expect(heard).toEqual([]);
    expect(await dir.dispatch('blog', event('blog'), undefined)).toBe(1);
    await settle();
    expect(heard).toEqual([{ node: 'A', consumer: 'c1', event: 'e3' }]);
  });

  it('rotates requests over the consumers of a group, on their own nodes, each once', async () => {
    const { dir, heard, event, settle } = await setup();
    await dir.register([entry('A', 'c1'), entry('B', 'c2'), entry('B', 'c3')], TTL);
    for (let i = 0; i < 30; i++) expect(await dir.dispatch('shop', event(), undefined)).toBe(1);
    await settle();
    expect(heard).toHaveLength(30);
    expect(new Set(heard.map((h) => h.event)).size).toBe(30);
    const per = (c: string) => heard.filter((h) => h.consumer === c);
    expect(per('c1')).toHaveLength(10);
    expect(per('c2')).toHaveLength(10);
    expect(per('c3')).toHaveLength(10);
    // Each frame went to the channel of the consumer's node.
    expect(per('c1').every((h) => h.node === 'A')).toBe(true);
    expect([...per('c2'), ...per('c3')].every((h) => h.node === 'B')).toBe(true);
    // Strict rotation: three consecutive dispatches reach three different consumers.
    for (let i = 0; i + 3 <= heard.length; i += 3) expect(new Set(heard.slice(i, i + 3).map((h) => h.consumer)).size).toBe(3);
  });

  it('sticky keys pick the same consumer while membership is unchanged, and spread over consumers', async () => {
    const { dir, heard, event, settle } = await setup();
    await dir.register([entry('A', 'c1'), entry('A', 'c2'), entry('B', 'c3')], TTL);
    const cids = Array.from({ length: 30 }, (_, i) => `A-x-${i}`);
    for (let round = 0; round < 3; round++) {
      for (const cid of cids) await dir.dispatch('shop', event('shop', cid), stickyHash(cid));
      // Rotation requests in between do not move sticky picks.
      await dir.dispatch('shop', event(), undefined);
    }
    await settle();
    const stickyHeard = heard.filter((_, i) => (i + 1) % 31 !== 0);
    const byCid = new Map<string, Set<string>>();
    stickyHeard.forEach((h, i) => {
      const cid = cids[i % 30]!;
      byCid.set(cid, (byCid.get(cid) ?? new Set()).add(h.consumer));
    });
    for (const [cid, consumers] of byCid) expect(consumers.size, cid).toBe(1);
    expect(new Set(stickyHeard.map((h) => h.consumer)).size).toBeGreaterThan(1);
    // The same hash picks the same consumer as the sorted member list predicts.
    const members = ['A|c1', 'A|c2', 'B|c3'];
    expect(`${stickyHeard[0]!.node}|${stickyHeard[0]!.consumer}`).toBe(members[stickyHash(cids[0]!) % 3]);
  });

  it('every group of the project gets each event once', async () => {
    const { dir, heard, event, settle } = await setup();
    await dir.register([entry('A', 'g1', 'billing'), entry('B', 'g2', 'billing'), entry('B', 'a1', 'audit'), entry('A', 'x1', 'other', 'blog')], TTL);
    for (let i = 0; i < 10; i++) expect(await dir.dispatch('shop', event(), undefined)).toBe(2);
    await settle();
    const events = (consumers: string[]) => heard.filter((h) => consumers.includes(h.consumer)).map((h) => h.event).sort();
    const all = Array.from({ length: 10 }, (_, i) => `e${i + 1}`).sort();
    expect(events(['g1', 'g2'])).toEqual(all);
    expect(events(['a1'])).toEqual(all);
    expect(events(['x1'])).toEqual([]);
    expect(events(['g1']).length).toBe(5);
  });

  it('unregister removes one consumer; the last one leaving makes dispatch reach nobody', async () => {
    const { dir, heard, event, settle } = await setup();
    await dir.register([entry('A', 'c1'), entry('B', 'c2')], TTL);
    await dir.unregister(entry('A', 'c1'));
    for (let i = 0; i < 4; i++) expect(await dir.dispatch('shop', event(), undefined)).toBe(1);
    await settle();
    expect(heard.map((h) => h.consumer)).toEqual(['c2', 'c2', 'c2', 'c2']);
    // Unregistering something unknown is harmless.
    await dir.unregister(entry('A', 'nope'));
    await dir.unregister(entry('A', 'c1', 'g', 'nowhere'));
    await dir.unregister(entry('B', 'c2'));
    expect(await dir.dispatch('shop', event(), undefined)).toBe(0);
  });

  it('registrations expire unless refreshed', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(1_000_000);
    const { dir, heard, event, settle } = await setup();
    await dir.register([entry('A', 'c1')], 1000);
    await dir.register([entry('B', 'c2')], 5000);
    vi.setSystemTime(1_000_999);
    expect(await dir.dispatch('shop', event(), undefined)).toBe(1);
    expect(await dir.dispatch('shop', event(), undefined)).toBe(1);
    await settle();
    expect(new Set(heard.map((h) => h.consumer))).toEqual(new Set(['c1', 'c2']));
    heard.length = 0;

    vi.setSystemTime(1_001_000); // c1 expired (expiry is exclusive)
    for (let i = 0; i < 4; i++) expect(await dir.dispatch('shop', event(), undefined)).toBe(1);
    await settle();
    expect(heard.map((h) => h.consumer)).toEqual(['c2', 'c2', 'c2', 'c2']);

    // A refresh (register again) extends; re-registering an expired entry brings it back.
    await dir.register([entry('B', 'c2')], 5000); // until 1_006_000
    await dir.register([entry('A', 'c1')], 1000); // until 1_002_000
    vi.setSystemTime(1_005_999);
    heard.length = 0;
    for (let i = 0; i < 2; i++) expect(await dir.dispatch('shop', event(), undefined)).toBe(1);
    await settle();
    expect(heard.map((h) => h.consumer)).toEqual(['c2', 'c2']);
    vi.setSystemTime(1_006_000);
    expect(await dir.dispatch('shop', event(), undefined)).toBe(0);
  });

  it('keeps groups apart per project; close forgets everything', async () => {
    const { dir, event } = await setup();
    await dir.register([entry('A', 'c1', 'g', 'shop'), entry('A', 'c2', 'g', 'blog')], TTL);
    expect(await dir.dispatch('shop', event(), undefined)).toBe(1);
    expect(await dir.dispatch('blog', event('blog'), undefined)).toBe(1);
    await dir.unregister(entry('A', 'c1', 'g', 'shop'));
    expect(await dir.dispatch('shop', event(), undefined)).toBe(0);
    expect(await dir.dispatch('blog', event('blog'), undefined)).toBe(1);
    await dir.close();
    expect(await dir.dispatch('blog', event('blog'), undefined)).toBe(0);
  });

  it('a dispatch restricted to one group (an event handed back) reaches only that group', async () => {
    const { dir, heard, event, settle } = await setup();
    await dir.register([entry('A', 'b1', 'billing'), entry('B', 'a1', 'audit')], TTL);
    expect(await dir.dispatch('shop', event(), undefined, 'audit')).toBe(1);
    await settle();
    expect(heard.map((h) => h.consumer)).toEqual(['a1']);
    expect(await dir.dispatch('shop', event(), undefined, 'nope')).toBe(0);
  });
});

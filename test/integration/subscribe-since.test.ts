import { describe, expect, it } from 'vitest';
import { useTestNode } from '../helpers/fixture.js';
import { pushData } from '../helpers/grpc-client.js';
import { unique } from '../helpers/names.js';
import { PresenceClients } from '../helpers/presence-client.js';

const CHANNELS = JSON.stringify({ namespaces: { chat: { history: { size: 100, ttl: '10m' } }, tiny: { history: { size: 2, ttl: '10m' } } } });

describe('SubscribeService with since', () => {
  const node = useTestNode(['--channels', CHANNELS]);

  it('sends exactly the missed publications, then a recovery marker, then live ones; positions carried', async () => {
    const c = new PresenceClients(node.server.grpcAddress);
    try {
      const topic = `chat:${unique('room')}`;
      const tiny = `tiny:${unique('room')}`;
      const first = await pushData(node.grpc, { topic, data: Buffer.from('p1') });
      for (let i = 2; i <= 4; i++) await pushData(node.grpc, { topic, data: Buffer.from(`p${i}`) });
      for (let i = 1; i <= 4; i++) await pushData(node.grpc, { topic: tiny, data: Buffer.from(`t${i}`) });
      const s = await c.subscribe({
        topics: [topic, tiny, 'plain'],
        since: { [topic]: { offset: '2', epoch: first.epoch }, [tiny]: { offset: '1', epoch: first.epoch }, plain: { offset: '0', epoch: '' } },
      });
      await s.next((m) => m.recovery?.topic === topic);
      await s.next((m) => m.recovery?.topic === tiny);
      await s.next((m) => m.recovery?.topic === 'plain');
      await pushData(node.grpc, { topic, data: Buffer.from('p5') });
      await s.next((m) => Buffer.from(m.data).toString() === 'p5');
      const seen = s.items.map((m) => (m.recovery ? `recovery ${m.recovery.topic} ${m.recovery.recovered} ${m.recovery.offset}` : `${m.topic} ${m.offset} ${Buffer.from(m.data).toString()}`));
      expect(seen).toEqual([`${topic} 3 p3`, `${topic} 4 p4`, `recovery ${topic} true 4`, `recovery ${tiny} false 4`, 'recovery plain false 0', `${topic} 5 p5`]);
      const bad = await c.subscribe({ topics: [topic], since: { other: { offset: '1', epoch: '' } } }).catch((e: Error) => e);
      expect(String(bad)).toContain('since names "other", which is not in topics');
      s.call.cancel();
    } finally {
      c.close();
    }
  });
});

import { describe, expect, it } from 'vitest';
import { pushData } from '../helpers/grpc-client.js';
import { metric } from '../helpers/metrics.js';
import { useTestNode } from '../helpers/fixture.js';
import type { Frame } from '../helpers/ws-client.js';

const isReply = (f: Frame): boolean => typeof f.json?.code === 'number' && (f.json.code as number) >= 20000;

/**
 * --write-delay (a project's writeDelay): deliveries wait up to that long to share a socket
 * write; a reply is written at the end of its turn and takes the waiting deliveries with it,
 * in order. Nothing here depends on how long anything takes: only on order and arrival.
 */
describe('write delay (--write-delay 1s)', () => {
  const node = useTestNode(['--write-delay', '1s']);

  it('a reply takes the waiting deliveries along, delivery first', async () => {
    const c = await node.connect();
    expect((await c.subscribe('wd')).code).toBe(20001);
    await pushData(node.grpc, { topic: 'wd', data: Buffer.from('waiting') });
    const reply = c.request({ code: 1, topic: 'other' });
    await reply;
    const iDelivery = c.frames.findIndex((f) => f.text === 'waiting');
    const iReply = c.frames.findIndex((f) => isReply(f) && f.json!.topic === 'other');
    expect(iDelivery).toBeGreaterThan(-1);
    expect(iDelivery).toBeLessThan(iReply);
  });

  it('deliveries alone are written when the delay is up, in order', async () => {
    const c = await node.connect();
    expect((await c.subscribe('wd2')).code).toBe(20001);
    const texts = ['one', 'two', 'three', 'four'];
    for (const t of texts) await pushData(node.grpc, { topic: 'wd2', data: Buffer.from(t) });
    await c.next((f) => f.text === 'four', 10_000);
    expect(c.deliveries()).toEqual(texts);
    expect(await metric(node.server.httpUrl, 'pushwire_deliveries_total')).toBeGreaterThanOrEqual(texts.length + 1);
  });
});

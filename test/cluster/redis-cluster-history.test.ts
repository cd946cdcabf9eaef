import { credentials, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetHistoryRequest, HistoryServiceClient, type GetHistoryResponse } from '../../gen/pushwire/v1/history.js';
import type { PushServiceClient } from '../../gen/pushwire/v1/push.js';
import { slotOf } from '../../src/cluster/redis-slot.js';
import { topicChannel } from '../../src/core/targeting.js';
import { pushData, pushDataBatch } from '../helpers/grpc-client.js';
import { NodeProcess } from '../helpers/node-process.js';
import { waitFor } from '../helpers/ports.js';
import { TestRedisCluster, type NodeInfo } from '../helpers/redis-cluster.js';
import { V1Client, payloadText } from '../helpers/v1-client.js';
import { Cluster } from './support.js';

const CHANNELS = JSON.stringify({ namespaces: { chat: { history: { size: 100, ttl: '10m' } } } });

const getHistory = (client: HistoryServiceClient, req: Partial<GetHistoryRequest>): Promise<GetHistoryResponse> =>
  new Promise((resolve, reject) => client.getHistory(GetHistoryRequest.fromPartial(req), (err: ServiceError | null, res) => (err ? reject(err) : resolve(res))));

/**
 * Positioned (history) publishes on a Redis Cluster (3 masters, no replicas: nothing here fails
 * over) through a real CLI node: the append script runs on the master of the channel's slot,
 * touches only `{<channel>}`-tagged keys (stream, meta, idempotency claim) and SPUBLISHes to
 * `pushwire:{<channel>}`, so no command is cross-slot. One channel per master, so every
 * master runs the script.
 */
describe('history on a Redis Cluster', () => {
  const cluster = new Cluster('redis-cluster-history-secret');
  let rc: TestRedisCluster;
  let masters: NodeInfo[];
  let node: NodeProcess;
  let grpc: PushServiceClient;
  let hist: HistoryServiceClient;
  /** chats[i] is a `chat:` channel whose slot masters[i] serves. */
  const chats: string[] = [];
  const v1: V1Client[] = [];

  const ownerOf = (channel: string): NodeInfo => {
    const slot = slotOf(`pushwire:{${channel}}`);
    return masters.find((m) => m.slots.some(([a, b]) => slot >= a && slot <= b))!;
  };

  beforeAll(async () => {
    rc = await TestRedisCluster.start(3, 0);
    masters = await rc.masters();
    expect(masters).toHaveLength(3);
    for (const m of masters) {
      for (let i = 0; ; i++) {
        const t = `chat:room-${m.port}-${i}`;
        if (ownerOf(topicChannel('default', t)) === m) {
          chats.push(t);
          break;
        }
      }
    }
    node = await NodeProcess.start(['--redis', rc.url, '--jwt-secret', cluster.secret, '--channels', CHANNELS], {}, 60_000);
    cluster.nodes.push(node);
    grpc = cluster.grpcClient(node);
    hist = new HistoryServiceClient(node.grpcAddress, credentials.createInsecure());
    cluster.closers.push(() => hist.close());
  }, 120_000);

  afterAll(async () => {
    await Promise.allSettled(v1.map((c) => c.close()));
    await cluster.cleanup();
    await rc?.stop();
  });

  it('pushes get offsets, reach a live v1 subscriber, GetHistory returns them and `since` recovers exactly the missed ones', async () => {
    for (const [i, channel] of chats.entries()) {
      const live = await V1Client.connect(node.wsUrl, i % 2 ? 'proto' : 'json');
      v1.push(live);
      expect(await live.subscribe(channel)).toMatchObject({ positioned: true, recoverable: true });
      const offsets: string[] = [];
      for (let n = 1; n <= 3; n++) offsets.push((await pushData(grpc, { topic: channel, data: Buffer.from(`${channel} p${n}`) })).offset);
      expect(offsets).toEqual(['1', '2', '3']);
      const last = await live.next((m) => m.pub?.offset === 3, 30_000);
      expect(live.pubs(channel).map(payloadText)).toEqual([1, 2, 3].map((n) => `${channel} p${n}`));
      await live.close();

      // The stream and its meta live on the channel's master, in the channel's slot.
      const owner = ownerOf(topicChannel('default', channel)).port;
      const core = topicChannel('default', channel);
      expect(await rc.client(owner, (r) => r.xlen(`pushwire:h:{${core}}`))).toBe(3);
      expect(await rc.client(owner, (r) => r.hget(`pushwire:hm:{${core}}`, 'e'))).toBe(last.pub.epoch);

      for (let n = 4; n <= 6; n++) await pushData(grpc, { topic: channel, data: Buffer.from(`${channel} p${n}`) });
      const page = await getHistory(hist, { topic: channel, limit: 10 });
      expect(page).toMatchObject({ offset: '6', epoch: last.pub.epoch });
      expect(page.publications.map((p) => [p.offset, Buffer.from(p.data).toString()])).toEqual([1, 2, 3, 4, 5, 6].map((n) => [String(n), `${channel} p${n}`]));

      const back = await V1Client.connect(node.wsUrl, i % 2 ? 'json' : 'proto');
      v1.push(back);
      const r = await back.subscribe(channel, { since: { offset: 3, epoch: last.pub.epoch } });
      expect(r).toMatchObject({ recovered: true, wasRecovering: true, offset: 6, epoch: last.pub.epoch });
      expect(r.publications.map((p: any) => [p.offset, payloadText(p)])).toEqual([4, 5, 6].map((n) => [n, `${channel} p${n}`]));
    }
    // Three channels' worth of round trips: generous, so a loaded box (2 shared cores) does not time it out mid-way.
  }, 120_000);

  it('an idempotent positioned push is claimed in the channel slot: the retry is a duplicate with no new offset', async () => {
    const channel = chats[2]!;
    const live = await V1Client.connect(node.wsUrl);
    v1.push(live);
    const before = (await live.subscribe(channel)).offset as number;
    const first = await pushData(grpc, { topic: channel, idempotencyKey: 'once-1', data: Buffer.from('once') });
    const again = await pushData(grpc, { topic: channel, idempotencyKey: 'once-1', data: Buffer.from('once') });
    expect(first).toMatchObject({ duplicate: false, offset: String(before + 1) });
    expect(again).toMatchObject({ duplicate: true, messageId: first.messageId });
    const core = topicChannel('default', channel);
    expect(await rc.client(ownerOf(core).port, (r) => r.exists(`pushwire:once:{${core}}:default/once-1`))).toBe(1);
    await pushData(grpc, { topic: channel, data: Buffer.from('after once') });
    await live.next((m) => m.pub !== undefined && payloadText(m.pub) === 'after once', 30_000);
    expect(live.pubs(channel).map((p) => [p.offset, payloadText(p)])).toEqual([
      [before + 1, 'once'],
      [before + 2, 'after once'],
    ]);
    const page = await getHistory(hist, { topic: channel, limit: 2, reverse: true });
    expect(page.publications.map((p) => p.offset)).toEqual([String(before + 2), String(before + 1)]);
  }, 60_000);

  it('a batch over channels of the three masters appends each channel in its own slot, in order', async () => {
    const before = await Promise.all(chats.map(async (channel) => Number((await getHistory(hist, { topic: channel, limit: 1, reverse: true })).offset)));
    const live = await V1Client.connect(node.wsUrl, 'proto');
    v1.push(live);
    for (const channel of chats) await live.subscribe(channel);
    // Interleaved: the bus runs one script call per slot, each channel's pushes in batch order.
    const pushes = [1, 2, 3].flatMap((n) => chats.map((channel) => ({ topic: channel, data: Buffer.from(`${channel} b${n}`) })));
    expect((await pushDataBatch(grpc, pushes)).messageIds).toHaveLength(9);
    for (const [i, channel] of chats.entries()) {
      // Polled, not next(): the three channels' publications arrive interleaved.
      await waitFor(() => live.pubs(channel).length >= 3, 30_000, `3 publications on ${channel}`);
      expect(live.pubs(channel).map((p) => [p.offset, payloadText(p)])).toEqual([1, 2, 3].map((n) => [before[i]! + n, `${channel} b${n}`]));
      const core = topicChannel('default', channel);
      expect(await rc.client(ownerOf(core).port, (r) => r.hget(`pushwire:hm:{${core}}`, 's'))).toBe(String(before[i]! + 3));
    }
  }, 60_000);
});

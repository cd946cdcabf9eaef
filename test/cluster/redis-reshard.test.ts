// Resharding under traffic: a channel's slot (its bus channel, history stream and meta) is migrated
// from one master to another while a push stream runs, the way `redis-cli --cluster reshard` does it
// (IMPORTING/MIGRATING, MIGRATE of the slot's keys, SETSLOT NODE on every master). Pushes may be refused
// (UNAVAILABLE) around the move, never answered OK and lost: SDK clients on both nodes end with every
// OK'd offset exactly once, in order (live, or recovered from history after the gap the move causes),
// and both nodes stay up. The slot then moves a second time, to the third master.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '../../client/src/index.js';
import { Redis } from 'ioredis';
import { liveChannels } from '../../src/cluster/redis-sharded-subscriber.js';
import { slotOf } from '../../src/cluster/redis-slot.js';
import { topicChannel } from '../../src/core/targeting.js';
import { b64, restPush } from '../helpers/grpc-client.js';
import { NodeProcess } from '../helpers/node-process.js';
import { sleep, waitFor } from '../helpers/ports.js';
import { TestRedisCluster, type NodeInfo } from '../helpers/redis-cluster.js';
import { Received, sdkClient } from '../helpers/sdk.js';
import { Cluster, readyStatus } from './support.js';

const CHANNELS = JSON.stringify({ namespaces: { chat: { history: { size: 10_000, ttl: '10m' }, recover: true } } });
const TOPIC = 'chat:moving';

describe('resharding a Redis Cluster under a push stream', () => {
  const cluster = new Cluster('redis-reshard-secret');
  let rc: TestRedisCluster;
  let a: NodeProcess;
  let b: NodeProcess;
  const clients: Client[] = [];
  const slot = slotOf(`pushwire:{${topicChannel('default', TOPIC)}}`);

  const ownerOf = (masters: NodeInfo[]): NodeInfo => masters.find((m) => m.slots.some(([x, y]) => slot >= x && slot <= y))!;

  /** Moves `slot` with its keys from `from` to `to`, as redis-cli --cluster reshard does, pausing between steps. */
  async function migrate(from: NodeInfo, to: NodeInfo, all: NodeInfo[]): Promise<void> {
    await rc.client(to.port, (r) => r.call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', from.id));
    await rc.client(from.port, (r) => r.call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', to.id));
    await sleep(300);
    for (;;) {
      const keys = (await rc.client(from.port, (r) => r.call('CLUSTER', 'GETKEYSINSLOT', slot, 100))) as string[];
      if (keys.length === 0) break;
      await rc.client(from.port, (r) => r.call('MIGRATE', '127.0.0.1', to.port, '', 0, 5000, 'KEYS', ...keys));
    }
    await sleep(300);
    await rc.client(to.port, (r) => r.call('CLUSTER', 'SETSLOT', slot, 'NODE', to.id));
    await rc.client(from.port, (r) => r.call('CLUSTER', 'SETSLOT', slot, 'NODE', to.id));
    // Then every master, the new owner included, as redis-cli does: a SETSLOT NODE on the owner itself drops the
    // slot's shard subscribers (an unsolicited SUNSUBSCRIBE), which the nodes must notice and undo.
    for (const m of all) await rc.client(m.port, (r) => r.call('CLUSTER', 'SETSLOT', slot, 'NODE', to.id));
  }

  beforeAll(async () => {
    rc = await TestRedisCluster.start(3, 0);
    const args = ['--redis', rc.url, '--jwt-secret', cluster.secret, '--channels', CHANNELS];
    a = await NodeProcess.start([...args, '--node-id', 'reshard-a'], {}, 60_000);
    b = await NodeProcess.start([...args, '--node-id', 'reshard-b'], {}, 60_000);
    cluster.nodes.push(a, b);
  }, 120_000);

  afterAll(async () => {
    for (const c of clients) c.close();
    await cluster.cleanup();
    await rc?.stop();
  });

  it('pins what the sharded subscriber reads from ioredis: its subscription set follows an unsolicited SUNSUBSCRIBE', async () => {
    const channel = `pushwire:{${topicChannel('default', 'chat:pin')}}`;
    const pinSlot = slotOf(channel);
    const owner = (await rc.masters()).find((m) => m.slots.some(([x, y]) => pinSlot >= x && pinSlot <= y))!;
    const sub = new Redis(owner.port, '127.0.0.1', { lazyConnect: true });
    try {
      await sub.connect();
      await sub.ssubscribe(channel);
      expect(liveChannels(sub)?.has(channel)).toBe(true);
      // SETSLOT NODE <self> on the owner drops the slot's subscribers: ioredis emits 'moved' and forgets the channel.
      const dropped = new Promise<void>((resolve) => sub.once('moved', () => resolve()));
      await rc.client(owner.port, (r) => r.call('CLUSTER', 'SETSLOT', pinSlot, 'NODE', owner.id));
      await dropped;
      expect(liveChannels(sub)?.has(channel)).toBe(false);
    } finally {
      sub.disconnect();
    }
  });

  it('every push answered OK reaches the subscribers on both nodes exactly once, in order, across two slot moves', async () => {
    const onA = sdkClient(a.wsUrl);
    const onB = sdkClient(b.wsUrl);
    clients.push(onA, onB);
    const subs = [new Received<number>(onA.subscribe(TOPIC)), new Received<number>(onB.subscribe(TOPIC))];
    const events: string[][] = [[], []];
    subs.forEach((s, i) => {
      s.sub.on('subscribing', (e) => events[i]!.push(`${Date.now()} subscribing ${e.code} ${e.reason}`));
      s.sub.on('subscribed', (e) => events[i]!.push(`${Date.now()} subscribed ${e.offset}`));
      s.sub.on('error', (e) => events[i]!.push(`${Date.now()} error ${e.error.message}`));
    });
    onA.connect();
    onB.connect();
    await Promise.all(subs.map((s) => s.sub.ready(15_000)));

    // A steady stream through node A (REST): record what each push was answered.
    const ok: number[] = [];
    let refused = 0;
  let unknown = 0;
    let n = 0;
    let running = true;
    const pusher = (async () => {
      while (running) {
        const res = await restPush(a.httpUrl, { topic: TOPIC, data: b64(JSON.stringify(++n)) });
        if (res.status === 200) ok.push(Number(res.json.offset));
        else if (res.status === 503) refused++;
        // Outcome unknown (the connection failed before Redis answered): documented, and allowed here.
        else if (res.status === 504) unknown++;
        else throw new Error(`push ${n}: HTTP ${res.status} ${JSON.stringify(res.json)}`);
        await sleep(10);
      }
    })();

    const masters = await rc.masters();
    const first = ownerOf(masters);
    const second = masters.find((m) => m !== first)!;
    const third = masters.find((m) => m !== first && m !== second)!;
    await sleep(1000);
    await migrate(first, second, masters);
    await sleep(3000);
    await migrate(second, third, await rc.masters());
    await sleep(3000);
    running = false;
    await pusher;

    expect(ownerOf(await rc.masters()).id).toBe(third.id);
    expect(ok.length).toBeGreaterThan(50);
    const last = ok[ok.length - 1]!;
    for (const [i, s] of subs.entries()) {
      await waitFor(() => s.offsets().includes(last), 30_000, `offset ${last} on ${i ? 'B' : 'A'}`).catch(async (err) => {
        const got = new Set(s.offsets());
        for (const m of await rc.masters()) {
          const chans = await rc.client(m.port, (r) => r.call('PUBSUB', 'SHARDCHANNELS'));
          const subs = await rc.client(m.port, (r) => r.call('PUBSUB', 'SHARDNUMSUB', `pushwire:{${topicChannel('default', TOPIC)}}`));
          process.stdout.write(`[reshard] master ${m.port} slots ${JSON.stringify(m.slots)} shardchannels ${JSON.stringify(chans)} numsub ${JSON.stringify(subs)}\n`);
        }
        process.stdout.write(`[reshard] state ${s.sub.state} pubs ${s.pubs.length} t=${Date.now()}\n[reshard] events ${events[i]!.join('\n  ')}\n`);
        for (const n of [a, b]) for (const l of n.logs.filter((x) => x.level >= 40 || /shard|topology|sharded/.test(x.msg))) process.stdout.write(`[reshard] log ${n.nodeId}: ${JSON.stringify(l)}\n`);
        process.stdout.write(`[reshard] ${i ? 'B' : 'A'}: missing ${JSON.stringify(ok.filter((o) => !got.has(o)).slice(0, 20))} subscribed ${JSON.stringify(s.subscribed)} errors ${JSON.stringify(s.errors)}\n`);
        throw err;
      });
      // Every offset of the stream once, in order; every OK'd one among them.
      expect(s.offsets()).toEqual(s.offsets().map((_, k) => k + 1));
      expect(ok.every((o) => o <= s.offsets().length)).toBe(true);
    }
    // Both nodes are still up and ready, and a push after the moves is delivered live.
    expect(await readyStatus(a)).toBe(200);
    expect(await readyStatus(b)).toBe(200);
    const after = await restPush(a.httpUrl, { topic: TOPIC, data: b64(JSON.stringify(-1)) });
    expect(after.status).toBe(200);
    for (const s of subs) await waitFor(() => s.data().includes(-1), 10_000, 'the push after the moves');
    // Stated in the test output: how many pushes the moves cost (refused, never lost).
    process.stdout.write(`[reshard] ${ok.length} pushes OK, ${refused} refused (UNAVAILABLE), ${unknown} unknown (DEADLINE_EXCEEDED) across two slot moves\n`);
  }, 120_000);
});

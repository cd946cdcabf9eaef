import { SignJWT } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { useTestNode } from '../helpers/fixture.js';
import { pushData } from '../helpers/grpc-client.js';
import { metric } from '../helpers/metrics.js';
import { unique } from '../helpers/names.js';
import { waitFor } from '../helpers/ports.js';
import { V1Client, type V1Format } from '../helpers/v1-client.js';

const SECRET = 'p'.repeat(32);
const token = (sub: string): Promise<string> => new SignJWT({ sub }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(SECRET));

const CHANNELS = JSON.stringify({
  namespaces: {
    room: { presence: true, joinLeave: true },
    who: { presence: true },
    events: { joinLeave: true },
    hist: { presence: true, joinLeave: true, history: { size: 10, ttl: '10m' } },
  },
});

/** The join/leave pushes a client received, as "join <client> <user>". */
const events = (c: V1Client, channel: string): string[] =>
  c.messages.flatMap((m) => {
    const e = m.join ?? m.leave;
    if (e === undefined || e.channel !== channel) return [];
    return [`${m.join ? 'join' : 'leave'} ${e.info.client} ${e.info.user ?? ''}`.trimEnd()];
  });

for (const format of ['json', 'proto'] as V1Format[]) {
  describe(`protocol v1 (${format}): channel presence and join/leave`, () => {
    const node = useTestNode(['--channels', CHANNELS, '--jwt-secret', SECRET]);
    let open: V1Client[] = [];
    const connect = async (uid?: string): Promise<{ c: V1Client; cid: string }> => {
      const c = await V1Client.open(node.server.wsUrl, format);
      open.push(c);
      const r = await c.command({ connect: { token: uid === undefined ? '' : await token(uid) } });
      return { c, cid: r.connect.client as string };
    };
    afterEach(async () => {
      await Promise.all(open.map((c) => c.close()));
      open = [];
    });

    it('presence lists the subscribers; a subscribe is a join and an unsubscribe a leave for the others', async () => {
      const channel = `room:${unique('r')}`;
      const a = await connect('alice');
      const b = await connect();
      await a.c.subscribe(channel);
      // Every subscriber hears the join, its own included (after its subscribe answer).
      await a.c.next((m) => m.join?.info.client === a.cid);
      await b.c.subscribe(channel);
      await a.c.next((m) => m.join?.info.client === b.cid);
      await b.c.next((m) => m.join?.info.client === b.cid);
      const p = await b.c.command({ presence: { channel } });
      expect(p.presence.clients.map((i: { client: string; user?: string }) => [i.client, i.user ?? ''])).toEqual(
        [
          [a.cid, 'alice'],
          [b.cid, ''],
        ].sort((x, y) => (x[0]! < y[0]! ? -1 : 1)),
      );
      expect((await b.c.command({ unsubscribe: { channel } })).unsubscribe).toBeDefined();
      await a.c.next((m) => m.leave?.info.client === b.cid);
      expect(events(a.c, channel)).toEqual([`join ${a.cid} alice`, `join ${b.cid}`, `leave ${b.cid}`]);
      // The one who left hears nothing more of the channel.
      expect(events(b.c, channel)).toEqual([`join ${b.cid}`]);
      const after = await a.c.command({ presence: { channel } });
      expect(after.presence.clients).toEqual([{ client: a.cid, user: 'alice' }]);
      // A client that is not subscribed may ask too (the channel is one it could subscribe to).
      expect((await b.c.command({ presence: { channel } })).presence.clients).toHaveLength(1);
    });

    it('a client that disconnects leaves: the others get leave and presence forgets it', async () => {
      const channel = `room:${unique('gone')}`;
      const a = await connect();
      const b = await connect('bob');
      await a.c.subscribe(channel);
      await b.c.subscribe(channel);
      await a.c.next((m) => m.join?.info.client === b.cid);
      await b.c.close();
      const leave = await a.c.next((m) => m.leave !== undefined);
      expect(leave.leave).toMatchObject({ channel, info: { client: b.cid, user: 'bob' } });
      expect((await a.c.command({ presence: { channel } })).presence.clients).toEqual([{ client: a.cid, user: '' }]);
    });

    it('30009 without the presence option; presence without joinLeave sends no events, joinLeave without presence no list', async () => {
      const a = await connect();
      const b = await connect();
      const plain = unique('plain');
      await a.c.subscribe(plain);
      const refused = await a.c.command({ presence: { channel: plain } });
      expect(refused.error).toMatchObject({ code: 30009, message: 'not available', detail: 'presence is not enabled for this channel' });
      const events1 = `events:${unique('e')}`;
      await a.c.subscribe(events1);
      expect((await a.c.command({ presence: { channel: events1 } })).error).toMatchObject({ code: 30009 });
      const who = `who:${unique('w')}`;
      await a.c.subscribe(who);
      await b.c.subscribe(who);
      await b.c.subscribe(events1);
      await a.c.next((m) => m.join?.info.client === b.cid && m.join.channel === events1);
      expect((await a.c.command({ presence: { channel: who } })).presence.clients).toHaveLength(2);
      // Nothing for `who` (no joinLeave) nor for the plain topic, on either client.
      await pushData(node.grpc, { topic: who, data: Buffer.from('marker') });
      await a.c.next((m) => m.pub?.channel === who);
      expect(a.c.messages.filter((m) => (m.join ?? m.leave) && (m.join ?? m.leave).channel !== events1)).toEqual([]);
    });

    it('private channels: presence of the user own topic; join/leave and publications with history keep their order', async () => {
      const a = await connect('carol');
      const b = await connect('carol');
      const topic = `room:${unique('mine')}`;
      await a.c.subscribe(topic, { private: true });
      await b.c.subscribe(topic, { private: true });
      await a.c.next((m) => m.join?.info.client === b.cid);
      expect(events(a.c, topic)).toEqual([`join ${a.cid} carol`, `join ${b.cid} carol`]);
      expect(a.c.messages.find((m) => m.join?.info.client === b.cid)?.join.private).toBe(true);
      const p = await a.c.command({ presence: { channel: topic, private: true } });
      expect(p.presence.clients.map((i: { client: string }) => i.client).sort()).toEqual([a.cid, b.cid].sort());
      // Not visible as the public topic of the same name (JSON leaves the empty list out).
      expect((await a.c.command({ presence: { channel: topic } })).presence.clients ?? []).toEqual([]);
      const anon = await connect();
      expect((await anon.c.command({ presence: { channel: topic, private: true } })).error).toMatchObject({ code: 30002 });

      const hist = `hist:${unique('h')}`;
      await a.c.subscribe(hist);
      await pushData(node.grpc, { topic: hist, data: Buffer.from('one') });
      await b.c.subscribe(hist);
      await pushData(node.grpc, { topic: hist, data: Buffer.from('two') });
      await a.c.next((m) => m.pub?.channel === hist && m.pub.offset === 2);
      const seen = a.c.messages.filter((m) => m.pub?.channel === hist || m.join?.channel === hist).map((m) => (m.pub ? `pub ${m.pub.offset}` : `join ${m.join.info.client}`));
      expect(seen).toEqual([`join ${a.cid}`, 'pub 1', `join ${b.cid}`, 'pub 2']);
    });
  });
}

describe('channel presence metrics and legacy clients', () => {
  const node = useTestNode(['--channels', CHANNELS]);

  it('members are counted; a legacy client on the same topic gets its deliveries and no join/leave', async () => {
    const channel = `room:${unique('mixed')}`;
    const legacy = await node.connect();
    await legacy.subscribe(channel);
    const v1 = await V1Client.connect(node.server.wsUrl, 'json');
    const before = await metric(node.server.httpUrl, 'pushwire_channel_presence_members');
    await v1.subscribe(channel);
    await v1.next((m) => m.join !== undefined);
    expect(await metric(node.server.httpUrl, 'pushwire_channel_presence_members')).toBe(before + 1);
    await pushData(node.grpc, { topic: channel, data: Buffer.from('raw') });
    await legacy.next((f) => f.text === 'raw');
    await v1.close();
    await pushData(node.grpc, { topic: channel, data: Buffer.from('after') });
    await legacy.next((f) => f.text === 'after');
    expect(legacy.deliveries()).toEqual(['raw', 'after']);
    await waitFor(async () => (await metric(node.server.httpUrl, 'pushwire_channel_presence_members')) === before, 5000, 'membership dropped on close');
    expect(await metric(node.server.httpUrl, 'pushwire_channel_presence_errors_total')).toBe(0);
  });
});

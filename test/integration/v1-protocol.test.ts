import { describe, expect, it } from 'vitest';
import { useTestNode } from '../helpers/fixture.js';
import { pushData } from '../helpers/grpc-client.js';
import { unique } from '../helpers/names.js';
import { TestClient } from '../helpers/ws-client.js';
import { V1Client, payloadText, type V1Format } from '../helpers/v1-client.js';

const CHANNELS = JSON.stringify({
  namespaces: {
    chat: { history: { size: 100, ttl: '10m' } },
    tiny: { history: { size: 3, ttl: '10m' } },
    norecover: { history: { size: 10, ttl: '10m' }, recover: false },
    small: { maxPushBytes: 8 },
  },
});

for (const format of ['json', 'proto'] as V1Format[]) {
  describe(`protocol v1 (${format}) on one node`, () => {
    const node = useTestNode(['--channels', CHANNELS, '--jwt-secret', 'k'.repeat(32)]);
    const open: V1Client[] = [];
    const connect = async (): Promise<V1Client> => {
      const c = await V1Client.connect(node.server.wsUrl, format);
      open.push(c);
      return c;
    };

    it('connect answers the cid, node and ping settings; commands before connect are refused', async () => {
      const c = await V1Client.open(node.server.wsUrl, format);
      open.push(c);
      expect(c.ws.protocol).toBe(`pushwire.v1.${format}`);
      const early = await c.command({ subscribe: { channel: 'x' } });
      expect(early.error).toMatchObject({ code: 30001, message: 'bad request', detail: 'send connect first' });
      const r = await c.command({ connect: {} });
      expect(r.connect).toMatchObject({ node: node.server.nodeId, ping: 25, pong: 8 });
      expect(r.connect.client).toMatch(/-/);
      const again = await c.command({ connect: {} });
      expect(again.error).toMatchObject({ code: 30001, detail: 'already connected' });
      expect((await c.command({ ping: {} })).pong).toBeDefined();
    });

    it('publications on a channel with history carry consecutive offsets and one epoch; PushData answers them', async () => {
      const c = await connect();
      const channel = `chat:${unique('room')}`;
      const sub = await c.subscribe(channel);
      expect(sub).toMatchObject({ positioned: true, recoverable: true });
      const first = await pushData(node.grpc, { topic: channel, data: Buffer.from('{"n":1}') });
      const second = await pushData(node.grpc, { topic: channel, data: Buffer.from('two') });
      expect([first.offset, second.offset]).toEqual(['1', '2']);
      expect(second.epoch).toBe(first.epoch);
      await c.next((m) => m.pub?.offset === 2);
      const pubs = c.pubs(channel);
      expect(pubs.map((p) => [p.offset, p.epoch, payloadText(p)])).toEqual([
        [1, first.epoch, '{"n":1}'],
        [2, first.epoch, 'two'],
      ]);
      if (format === 'json') {
        expect(pubs[0]!.data).toEqual({ n: 1 });
        expect(pubs[1]!.text).toBe('two');
      }
      expect(pubs[0]!.id).toBe(first.messageId);
    });

    it('resubscribing with since recovers exactly the missed publications, in order, then live ones', async () => {
      const channel = `chat:${unique('room')}`;
      const a = await connect();
      await a.subscribe(channel);
      for (let i = 1; i <= 3; i++) await pushData(node.grpc, { topic: channel, data: Buffer.from(`m${i}`) });
      const last = await a.next((m) => m.pub?.offset === 3);
      await a.close();
      for (let i = 4; i <= 8; i++) await pushData(node.grpc, { topic: channel, data: Buffer.from(`m${i}`) });
      const b = await connect();
      const r = await b.subscribe(channel, { since: { offset: 3, epoch: last.pub.epoch } });
      expect(r).toMatchObject({ wasRecovering: true, recovered: true, offset: 8, epoch: last.pub.epoch });
      expect(r.publications.map(payloadText)).toEqual(['m4', 'm5', 'm6', 'm7', 'm8']);
      expect(r.publications.map((p: any) => p.offset)).toEqual([4, 5, 6, 7, 8]);
      await pushData(node.grpc, { topic: channel, data: Buffer.from('m9') });
      const live = await b.next((m) => m.pub !== undefined);
      expect([live.pub.offset, payloadText(live.pub)]).toEqual([9, 'm9']);
    });

    it('a wrong epoch, a trimmed position or a channel without recovery give recovered=false with the current position', async () => {
      const c = await connect();
      const chat = `chat:${unique('room')}`;
      const p = await pushData(node.grpc, { topic: chat, data: Buffer.from('x') });
      const wrong = await c.subscribe(chat, { since: { offset: 0, epoch: 'another' } });
      expect(wrong).toMatchObject({ wasRecovering: true, positioned: true, offset: 1, epoch: p.epoch });
      expect(wrong.recovered ?? false).toBe(false);
      expect(wrong.publications ?? []).toEqual([]);

      const tiny = `tiny:${unique('room')}`;
      let epoch = '';
      for (let i = 1; i <= 5; i++) epoch = (await pushData(node.grpc, { topic: tiny, data: Buffer.from(`t${i}`) })).epoch;
      const trimmed = await c.subscribe(tiny, { since: { offset: 1, epoch } });
      expect(trimmed.recovered ?? false).toBe(false);
      expect(trimmed.offset).toBe(5);
      const held = await c.subscribe(tiny, { since: { offset: 2, epoch } });
      expect(held.recovered).toBe(true);
      expect(held.publications.map(payloadText)).toEqual(['t3', 't4', 't5']);

      const nr = `norecover:${unique('room')}`;
      const q = await pushData(node.grpc, { topic: nr, data: Buffer.from('y') });
      const r = await c.subscribe(nr, { since: { offset: 0, epoch: q.epoch } });
      expect(r).toMatchObject({ positioned: true, wasRecovering: true, offset: 1 });
      expect(r.recoverable ?? false).toBe(false);
      expect(r.recovered ?? false).toBe(false);
    });

    it('per-message ttl and skip_history: expired and unstored publications are not recovered', async () => {
      const c = await connect();
      const channel = `chat:${unique('room')}`;
      const a = await pushData(node.grpc, { topic: channel, data: Buffer.from('keep1') });
      await pushData(node.grpc, { topic: channel, data: Buffer.from('short'), ttl: 1 });
      const skipped = await pushData(node.grpc, { topic: channel, data: Buffer.from('live only'), skipHistory: true });
      expect(skipped.offset).toBe('0');
      await pushData(node.grpc, { topic: channel, data: Buffer.from('keep2') });
      // Wait (by condition, not by a fixed sleep) until the 1 s TTL has passed.
      await c.next((m) => false, 0).catch(() => undefined);
      const deadline = Date.now() + 5000;
      let r: any;
      do {
        r = await c.subscribe(channel, { since: { offset: 0, epoch: a.epoch } });
      } while (r.publications.length !== 2 && Date.now() < deadline && (await new Promise((s) => setTimeout(s, 100)), true));
      expect(r.recovered).toBe(true);
      expect(r.publications.map(payloadText)).toEqual(['keep1', 'keep2']);
      expect(r.publications.map((p: any) => p.offset)).toEqual([1, 3]);
    });

    it('history command: a page of a channel with history; 30009 on a channel without', async () => {
      const c = await connect();
      const channel = `chat:${unique('room')}`;
      for (let i = 1; i <= 4; i++) await pushData(node.grpc, { topic: channel, data: Buffer.from(`h${i}`) });
      const h = await c.command({ history: { channel, limit: 2, reverse: true } });
      expect(h.history.offset).toBe(4);
      expect(h.history.publications.map(payloadText)).toEqual(['h4', 'h3']);
      const none = await c.command({ history: { channel: unique('plain') } });
      expect(none.error).toMatchObject({ code: 30009, message: 'not available' });
      const wrong = await c.command({ history: { channel, since: { offset: 1, epoch: 'nope' } } });
      expect(wrong.error).toMatchObject({ code: 30010, message: 'insufficient state' });
      const presence = await c.command({ presence: { channel } });
      expect(presence.error).toMatchObject({ code: 30009 });
    });

    it('a channel without history delivers publications without offsets; private needs login', async () => {
      const c = await connect();
      const channel = unique('plain');
      const sub = await c.subscribe(channel);
      expect(sub.positioned ?? false).toBe(false);
      await pushData(node.grpc, { topic: channel, data: Buffer.from([0xff, 0x00]) });
      const m = await c.next((x) => x.pub !== undefined);
      expect(m.pub.offset ?? 0).toBe(0);
      if (format === 'json') expect(m.pub.b64).toBe(Buffer.from([0xff, 0x00]).toString('base64'));
      else expect([...m.pub.bytes]).toEqual([0xff, 0x00]);
      const priv = await c.command({ subscribe: { channel: 'inbox', private: true } });
      expect(priv.error).toMatchObject({ code: 30002 });
      const big = await pushData(node.grpc, { topic: 'small:x', data: Buffer.from('123456789') }).catch((e: Error) => e);
      expect(String(big)).toContain("more than the 8 allowed on this channel's namespace");
    });

    it('several commands in one frame are answered in order; malformed ones get 30001 and the connection stays', async () => {
      const c = await connect();
      c.sendCommands([{ id: 11, ping: {} }, { id: 12, subscribe: { channel: '' } }, { id: 13, nothing: {} }, { subscribe: { channel: 'x' } }, { id: 14, ping: {} }]);
      const replies = [await c.next((m) => m.id === 11), await c.next((m) => m.id === 12), await c.next((m) => m.id === 13), await c.next((m) => m.error && !m.id), await c.next((m) => m.id === 14)];
      expect(replies[1]!.error).toMatchObject({ code: 30001, detail: 'channel must not be empty' });
      expect(replies[2]!.error).toMatchObject({ code: 30001, detail: 'unknown command' });
      expect(replies[3]!.error).toMatchObject({ code: 30001, detail: 'a command needs a non-zero id' });
      expect(replies[4]!.pong).toBeDefined();
      // Garbage frames of the wrong kind and undecodable bytes.
      if (format === 'json') {
        c.ws.send('{not json');
        expect((await c.next((m) => m.error !== undefined)).error.detail).toBe('bad data format: not JSON');
        c.ws.send(Buffer.from([1, 2, 3]));
        expect((await c.next((m) => m.error !== undefined)).error.detail).toContain('wrong frame type');
        c.ws.send('{"id":5,"subscribe":{"channel":"a","since":{"offset":-1}}}');
        expect((await c.next((m) => m.id === 5)).error.detail).toBe('since.offset must be a non-negative integer');
        c.ws.send('{"id":4294967296,"ping":{}}');
        expect((await c.next((m) => m.error !== undefined)).error.detail).toBe('id must be an integer from 1 to 4294967295');
      } else {
        c.ws.send(Buffer.from([0xff, 0xff, 0xff]));
        expect((await c.next((m) => m.error !== undefined)).error.detail).toBe('bad data format: not a pushwire.v1.ClientFrame');
        c.ws.send('text');
        expect((await c.next((m) => m.error !== undefined)).error.detail).toContain('wrong frame type');
      }
      expect((await c.command({ ping: {} })).pong).toBeDefined();
    });

    it('shutdown sends disconnect advice 1012 with reconnect, then closes with 1012', async () => {
      // A node of its own, so the shared one keeps running.
      const { startTestServer } = await import('../helpers/in-process.js');
      const own = await startTestServer([]);
      const c = await V1Client.connect(own.wsUrl, format);
      const closed = c.closed;
      await own.shutdown();
      expect(await closed).toMatchObject({ code: 1012 });
      expect(c.messages.find((m) => m.disconnect)?.disconnect).toEqual({ code: 1012, reason: 'service restart', reconnect: true });
    });

    it('the legacy protocol is untouched: no subprotocol still gets the connected frame and raw deliveries', async () => {
      const legacy = await TestClient.connect(node.server.wsUrl);
      const channel = `chat:${unique('room')}`;
      await legacy.subscribe(channel);
      await pushData(node.grpc, { topic: channel, data: Buffer.from('raw') });
      await legacy.next((f) => f.text === 'raw');
      await legacy.close();
    });
  });
}

import { request, type ClientRequest, type IncomingMessage } from 'node:http';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { b64, restPush } from '../helpers/grpc-client.js';
import type { NodeProcess } from '../helpers/node-process.js';
import { unique } from '../helpers/names.js';
import { waitFor } from '../helpers/ports.js';
import { Cluster, numsub, waitNumsub } from './support.js';

/** A REST Subscribe stream read line by line by node:http (a real client, a real socket). */
class RestStream {
  readonly lines: any[] = [];
  private buffered = '';
  private waiters: Array<() => void> = [];
  ended = false;

  private constructor(
    readonly req: ClientRequest,
    readonly res: IncomingMessage,
  ) {
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      this.buffered += chunk;
      let nl: number;
      while ((nl = this.buffered.indexOf('\n')) !== -1) {
        this.lines.push(JSON.parse(this.buffered.slice(0, nl)));
        this.buffered = this.buffered.slice(nl + 1);
      }
      this.wake();
    });
    res.on('end', () => {
      this.ended = true;
      this.wake();
    });
    res.on('error', () => {});
  }

  static open(httpUrl: string, pid: string, body: unknown): Promise<RestStream> {
    return new Promise((resolve, reject) => {
      const req = request(`${httpUrl}/v1/projects/${pid}/subscribe`, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) =>
        resolve(new RestStream(req, res)),
      );
      req.on('error', reject);
      req.end(JSON.stringify(body));
    });
  }

  /** Waits until a line matches; fails if the stream ends first. */
  async next(match: (line: any) => boolean, timeoutMs = 10_000): Promise<any> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.lines.find(match);
      if (hit !== undefined) return hit;
      if (this.ended) throw new Error(`stream ended after ${JSON.stringify(this.lines)}`);
      if (Date.now() > deadline) throw new Error(`no matching line in ${JSON.stringify(this.lines)}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 200).unref();
      });
    }
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const r of w) r();
  }
}

/**
 * REST Subscribe (issue 9, defect 4): the stream stays open and carries pushes accepted by any
 * node, as NDJSON lines like the watch route, and a client that goes away releases everything.
 */
describe('REST Subscribe over a real Redis', () => {
  const cluster = new Cluster('rest-subscribe-secret');
  let A: NodeProcess;
  let B: NodeProcess;
  let r: Redis;

  beforeAll(async () => {
    const redis = await cluster.startRedis();
    r = cluster.redisClient(redis);
    const channels = ['--channels', JSON.stringify({ namespaces: { chat: { history: { size: 100, ttl: '10m' } }, tiny: { history: { size: 2, ttl: '10m' } } } })];
    [A, B] = await Promise.all([cluster.node(redis, channels), cluster.node(redis, channels)]);
  });

  afterAll(async () => {
    await cluster.cleanup();
  });

  it('streams public, user, private and broadcast pushes from another node, one {"result":...} per line', async () => {
    const topic = unique('t');
    const uid = unique('u');
    const s = await RestStream.open(A.httpUrl, 'default', { topics: [topic], uid, privateTopics: ['inbox'] });
    expect(s.res.statusCode).toBe(200);
    expect(s.res.headers['content-type']).toMatch(/^application\/json/);
    // Headers came once every subscription was in place: the node holds the topic in Redis now.
    expect(await numsub(r, `t:${topic}`)).toBe(1);

    for (const push of [
      { topic, data: b64('public') },
      { uid, data: b64('to-user') },
      { uid, topic: 'inbox', data: b64('private') },
      { uid, topic: 'other', data: b64('not subscribed') },
      { data: b64('everyone') },
    ]) {
      expect((await restPush(B.httpUrl, push)).status).toBe(200);
    }
    await s.next((l) => l.result?.data === b64('everyone'));
    expect(s.ended).toBe(false);
    expect(s.lines.map((l) => [l.result.topic ?? '', l.result.uid ?? '', Buffer.from(l.result.data, 'base64').toString()])).toEqual([
      [topic, '', 'public'],
      ['', uid, 'to-user'],
      ['inbox', uid, 'private'],
      ['', '', 'everyone'],
    ]);
    expect(s.lines.every((l) => l.result.messageId.startsWith(B.nodeId) && Number(l.result.timeMs) > 0)).toBe(true);
    s.req.destroy();
  });

  it('a client that disconnects is removed and its Redis channels released', async () => {
    const topic = unique('gone');
    const before = await A.metric('pushwire_grpc_subscribers');
    const s = await RestStream.open(A.httpUrl, 'default', { topics: [topic] });
    expect(s.res.statusCode).toBe(200);
    expect(await A.metric('pushwire_grpc_subscribers')).toBe(before + 1);
    expect(await numsub(r, `t:${topic}`)).toBe(1);
    // Still open and delivering: the stream did not end on its own.
    expect((await restPush(B.httpUrl, { topic, data: b64('still here') })).status).toBe(200);
    await s.next((l) => l.result?.data === b64('still here'));

    s.req.destroy();
    await waitFor(async () => (await A.metric('pushwire_grpc_subscribers')) === before, 5000, 'subscriber removed');
    await waitNumsub(r, `t:${topic}`, 0);
  });

  it('since: exactly the missed publications (pushed on the other node), a recovery line per entry, then live ones', async () => {
    const topic = `chat:${unique('room')}`;
    const tiny = `tiny:${unique('room')}`;
    const uid = unique('u');
    const first = await restPush(B.httpUrl, { topic, data: b64('p1') });
    for (let i = 2; i <= 4; i++) expect((await restPush(B.httpUrl, { topic, data: b64(`p${i}`) })).status).toBe(200);
    for (let i = 1; i <= 4; i++) expect((await restPush(B.httpUrl, { topic: tiny, data: b64(`t${i}`) })).status).toBe(200);
    const inbox = await restPush(B.httpUrl, { uid, topic: 'chat:inbox', data: b64('i1') });
    await restPush(B.httpUrl, { uid, topic: 'chat:inbox', data: b64('i2') });
    const epoch = first.json.epoch as string;
    const s = await RestStream.open(A.httpUrl, 'default', {
      topics: [topic, tiny, 'plain'],
      uid,
      privateTopics: ['chat:inbox'],
      // offset as a decimal string and as a number: both are proto3 JSON for uint64.
      since: { [topic]: { offset: '2', epoch }, [tiny]: { offset: 1, epoch }, plain: {} },
      privateSince: { 'chat:inbox': { offset: '1', epoch: inbox.json.epoch } },
    });
    expect(s.res.statusCode).toBe(200);
    await s.next((l) => l.result?.recovery?.topic === 'chat:inbox');
    expect((await restPush(B.httpUrl, { topic, data: b64('p5') })).status).toBe(200);
    await s.next((l) => l.result?.data === b64('p5'));
    const seen = s.lines.map((l) => {
      const m = l.result;
      if (m.recovery) return `recovery ${m.recovery.private ? 'private ' : ''}${m.recovery.topic} ${m.recovery.recovered ?? false} ${m.recovery.offset ?? '0'}`;
      return `${m.topic} ${m.offset} ${Buffer.from(m.data, 'base64').toString()}`;
    });
    expect(seen).toEqual([
      `${topic} 3 p3`,
      `${topic} 4 p4`,
      `recovery ${topic} true 4`,
      `recovery ${tiny} false 4`,
      'recovery plain false 0',
      'chat:inbox 2 i2',
      'recovery private chat:inbox true 2',
      `${topic} 5 p5`,
    ]);
    s.req.destroy();
  });

  it('since: a topic not in the list, or a malformed position, is INVALID_ARGUMENT before the stream starts', async () => {
    for (const [body, message] of [
      [{ topics: ['a'], since: { b: { offset: '1' } } }, 'since names "b", which is not in topics'],
      [{ topics: ['a'], since: { a: { offset: 'x' } } }, 'since["a"]: invalid value for uint64 field offset: "x"'],
      [{ topics: ['a'], since: ['a'] }, 'invalid value for map field since: expected an object'],
      [{ topics: ['a'], since: { a: { offset: '1', extra: 1 } } }, 'since["a"]: unknown field "extra" in pushwire.v1.StreamPosition'],
    ] as const) {
      const res = await fetch(`${A.httpUrl}/v1/projects/default/subscribe`, { method: 'POST', body: JSON.stringify(body) });
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ code: 3, message });
    }
  });

  it('bad input is answered before the stream starts, with the documented status', async () => {
    const res = await fetch(`${A.httpUrl}/v1/projects/default/subscribe`, { method: 'POST', body: JSON.stringify({ privateTopics: ['x'] }) });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: 3, message: 'private_topics needs uid' });
  });
});

import { SignJWT } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { useTestNode } from '../helpers/fixture.js';
import { pushData } from '../helpers/grpc-client.js';
import { metric } from '../helpers/metrics.js';
import { unique } from '../helpers/names.js';
import { V1Client, payloadText } from '../helpers/v1-client.js';

/**
 * Protocol v1 connections are held to the same per-connection rules as legacy ones:
 * --max-subscriptions (30007) and the project's write delay (deliveries wait, replies do not).
 */
const SECRET = 'v1-limits-secret-v1-limits-secret';
const CHANNELS = JSON.stringify({ namespaces: { chat: { history: { size: 10, ttl: '10m' } } } });

const open: V1Client[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
});

describe('v1: --max-subscriptions', () => {
  const node = useTestNode(['--max-subscriptions', '3', '--jwt-secret', SECRET, '--channels', CHANNELS]);

  it('answers the subscribe beyond the limit with 30007; repeats, unsubscribes, positioned and private channels count as legacy', async () => {
    const token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('u1').sign(new TextEncoder().encode(SECRET));
    const c = await V1Client.connect(node.server.wsUrl, 'json', token);
    open.push(c);
    const [a, b, e] = [unique('a'), unique('b'), unique('e')];
    const positioned = `chat:${unique('room')}`;
    await c.subscribe(a);
    await c.subscribe(b);
    expect((await c.subscribe(positioned)).positioned).toBe(true);
    await c.subscribe(a); // already held: not a new topic
    // The user's own channel is held from connect on and is not a topic.
    await c.subscribe('', { private: true });
    const over = await c.command({ subscribe: { channel: e } });
    expect(over.error).toMatchObject({ code: 30007, message: 'too many subscriptions', detail: 'a connection may hold at most 3 topics' });
    const overPrivate = await c.command({ subscribe: { channel: unique('p'), private: true } });
    expect(overPrivate.error).toMatchObject({ code: 30007 });
    expect(await metric(node.server.httpUrl, 'pushwire_limit_rejections_total', { pid: 'default', limit: 'subscriptions' })).toBe(2);
    // The refused subscribe changed nothing: a push to it does not arrive; after an unsubscribe it is taken.
    await c.command({ unsubscribe: { channel: b } });
    await c.subscribe(e);
    await pushData(node.grpc, { topic: e, data: Buffer.from('to e') });
    const pub = (await c.next((m) => m.pub !== undefined)).pub;
    expect(pub.channel).toBe(e);
    expect(payloadText(pub)).toBe('to e');
    // Every other command still works on the connection.
    expect((await c.command({ ping: {} })).pong).toBeDefined();
  });

  it('counts per connection, over the protobuf subprotocol too', async () => {
    const c = await V1Client.connect(node.server.wsUrl, 'proto');
    open.push(c);
    for (const t of [unique('x'), unique('y'), unique('z')]) await c.subscribe(t);
    expect((await c.command({ subscribe: { channel: unique('w') } })).error).toMatchObject({ code: 30007, message: 'too many subscriptions' });
  });
});

describe('v1: the project write delay (--write-delay 1s)', () => {
  const node = useTestNode(['--write-delay', '1s']);

  it('a publication waits for the delay and leaves with the next reply, in one socket write, publication first', async () => {
    const c = await V1Client.connect(node.server.wsUrl, 'json');
    open.push(c);
    const t = unique('wd');
    await c.subscribe(t);
    const before = await metric(node.server.httpUrl, 'pushwire_socket_writes_total');
    await pushData(node.grpc, { topic: t, data: Buffer.from('waiting') });
    // Not delayed itself, the pong takes the waiting publication along in the same write.
    const pong = c.command({ ping: {} });
    await pong;
    const iPub = c.messages.findIndex((m) => m.pub !== undefined);
    const iPong = c.messages.findIndex((m) => m.pong !== undefined);
    expect(iPub).toBeGreaterThan(-1);
    expect(iPub).toBeLessThan(iPong);
    // Undelayed, the publication would have been written at the end of its own turn: two writes.
    expect((await metric(node.server.httpUrl, 'pushwire_socket_writes_total')) - before).toBe(1);
  });

  it('publications alone are written when the delay is up, in order', async () => {
    const c = await V1Client.connect(node.server.wsUrl, 'json');
    open.push(c);
    const t = unique('wd2');
    await c.subscribe(t);
    const texts = ['one', 'two', 'three'];
    for (const x of texts) await pushData(node.grpc, { topic: t, data: Buffer.from(x) });
    await c.next((m) => m.pub !== undefined && payloadText(m.pub) === 'three', 10_000);
    expect(c.pubs(t).map(payloadText)).toEqual(texts);
  });
});

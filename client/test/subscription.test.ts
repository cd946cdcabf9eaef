// Unit tests of the Subscription state machine and its offset/epoch tracking, against a scripted
// fake WebSocket and fake timers. Real-node recovery is in test/integration/sdk-recovery.test.ts.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Client } from '../src/client.js';
import { ReasonCode } from '../src/codes.js';
import { ErrorCode, PushwireError } from '../src/errors.js';
import type { Subscription } from '../src/subscription.js';
import { FakeWebSocket } from './fake-websocket.js';

const flush = async (): Promise<void> => {
  await vi.advanceTimersByTimeAsync(0);
};

async function connected(): Promise<{ client: Client; ws: FakeWebSocket }> {
  const client = new Client('ws://test/ws', { websocket: FakeWebSocket, offlineHint: false, timeout: 1000, minReconnectDelay: 100, maxReconnectDelay: 1000 });
  client.connect();
  FakeWebSocket.last.handshake();
  return { client, ws: FakeWebSocket.last };
}

function record<T>(sub: Subscription<T>): string[] {
  const log: string[] = [];
  sub.on('state', (e) => log.push(`state:${e.state}`));
  sub.on('subscribing', (e) => log.push(`subscribing:${e.code}`));
  sub.on('subscribed', (e) => log.push(`subscribed:recovered=${e.recovered},was=${e.wasRecovering},at=${e.offset}`));
  sub.on('unsubscribed', (e) => log.push(`unsubscribed:${e.code}`));
  sub.on('publication', (p) => log.push(`pub:${p.offset}:${JSON.stringify(p.data)}`));
  sub.on('error', (e) => log.push(`error:${e.error.code}:${e.error.serverCode ?? ''}`));
  return log;
}

/** The last subscribe command the client sent. */
function lastSubscribe(ws: FakeWebSocket): Record<string, any> {
  const c = ws.commands().filter((x) => x.subscribe).at(-1);
  if (!c) throw new Error('no subscribe sent');
  return c;
}

const pub = (offset: number, data: unknown = offset, epoch = 'E1', channel = 'chat:1') => ({ pub: { channel, data, offset, epoch } });

beforeEach(() => {
  vi.useFakeTimers();
  FakeWebSocket.reset();
});
afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe('Subscription', () => {
  it('unsubscribed -> subscribing -> subscribed; tracks offset and epoch; drops duplicates', async () => {
    const { client, ws } = await connected();
    const sub = client.subscribe('chat:1');
    const log = record(sub);
    await flush();
    const cmd = lastSubscribe(ws);
    expect(cmd.subscribe).toEqual({ channel: 'chat:1' });
    // The reply and the publications behind it in one frame: handled in frame order.
    ws.push({ id: cmd.id, subscribe: { positioned: true, recoverable: true, epoch: 'E1', offset: 4 } }, pub(5), pub(6), pub(6), pub(4));
    expect(log).toEqual(['state:subscribed', 'subscribed:recovered=false,was=false,at=4', 'pub:5:5', 'pub:6:6']);
    expect(sub.position).toEqual({ offset: 6, epoch: 'E1' });
  });

  it('a channel whose stream does not exist yet (offset 0, no epoch) takes the epoch of its first publication without resubscribing', async () => {
    const { client, ws } = await connected();
    const sub = client.subscribe('chat:1');
    const log = record(sub);
    await flush();
    ws.push({ id: lastSubscribe(ws).id, subscribe: { positioned: true, recoverable: true } }, pub(1, 'a', 'NEW'), pub(2, 'b', 'NEW'));
    await flush();
    expect(log).toEqual(['state:subscribed', 'subscribed:recovered=false,was=false,at=0', 'pub:1:"a"', 'pub:2:"b"']);
    expect(ws.commands().filter((c) => c.subscribe)).toHaveLength(1);
    expect(sub.position).toEqual({ offset: 2, epoch: 'NEW' });
  });

  it('a subscribe still queued when the connection drops goes out once, on the next connection', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const { client, ws } = await connected();
    client.subscribe('a');
    ws.serverClose(1006); // before the queued frame was written
    await vi.advanceTimersByTimeAsync(1);
    const ws2 = FakeWebSocket.last;
    ws2.handshake();
    await flush();
    expect(ws.commands().filter((c) => c.subscribe)).toHaveLength(0);
    expect(ws2.commands().filter((c) => c.subscribe)).toHaveLength(1);
  });

  it('subscribed before the client connects: sent after connect, together in one frame', async () => {
    const client = new Client('ws://test/ws', { websocket: FakeWebSocket, offlineHint: false });
    client.subscribe('a');
    client.subscribe('b');
    client.subscribe('', { private: true });
    client.connect();
    const ws = FakeWebSocket.last;
    ws.handshake();
    await flush();
    expect(ws.sent).toHaveLength(2); // connect, then one frame with every subscribe
    expect(ws.commands().slice(1).map((c) => c.subscribe)).toEqual([{ channel: 'a' }, { channel: 'b' }, { channel: '', private: true }]);
  });

  it('after a reconnect it resubscribes with since = last offset and epoch, and delivers the recovered publications once, in order', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const { client, ws } = await connected();
    const sub = client.subscribe('chat:1');
    const log = record(sub);
    await flush();
    ws.push({ id: lastSubscribe(ws).id, subscribe: { positioned: true, recoverable: true, epoch: 'E1', offset: 10 } });
    ws.push(pub(11));
    ws.serverClose(1012, 'service restart');
    expect(sub.state).toBe('subscribing');
    await vi.advanceTimersByTimeAsync(1);
    const ws2 = FakeWebSocket.last;
    expect(ws2).not.toBe(ws);
    ws2.handshake();
    await flush();
    const cmd = lastSubscribe(ws2);
    expect(cmd.subscribe).toEqual({ channel: 'chat:1', since: { offset: 11, epoch: 'E1' } });
    ws2.push({
      id: cmd.id,
      subscribe: {
        positioned: true,
        recoverable: true,
        epoch: 'E1',
        offset: 14,
        wasRecovering: true,
        recovered: true,
        publications: [pub(11).pub, pub(12).pub, pub(13).pub, pub(14).pub],
      },
    });
    ws2.push(pub(14), pub(15));
    expect(log).toEqual([
      'state:subscribed',
      'subscribed:recovered=false,was=false,at=10',
      'pub:11:11',
      'state:subscribing',
      'subscribing:1012',
      'state:subscribed',
      'subscribed:recovered=true,was=true,at=14',
      'pub:12:12',
      'pub:13:13',
      'pub:14:14',
      'pub:15:15',
    ]);
  });

  it('recovered: false is told explicitly and the position jumps to the stream current one', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const { client, ws } = await connected();
    const sub = client.subscribe('chat:1', { since: { offset: 3, epoch: 'OLD' } });
    const log = record(sub);
    await flush();
    expect(lastSubscribe(ws).subscribe.since).toEqual({ offset: 3, epoch: 'OLD' });
    ws.push({ id: lastSubscribe(ws).id, subscribe: { positioned: true, recoverable: true, epoch: 'NEW', offset: 0, wasRecovering: true, recovered: false } });
    ws.push(pub(1, 'x', 'NEW'));
    expect(log).toEqual(['state:subscribed', 'subscribed:recovered=false,was=true,at=0', 'pub:1:"x"']);
  });

  it('a live offset jump makes the SDK recover: unsubscribe + subscribe since in one frame, nothing out of order', async () => {
    const { client, ws } = await connected();
    const sub = client.subscribe('chat:1');
    const log = record(sub);
    await flush();
    ws.push({ id: lastSubscribe(ws).id, subscribe: { positioned: true, epoch: 'E1', offset: 1 } });
    const frames = ws.sent.length;
    ws.push(pub(2), pub(4), pub(5));
    await flush();
    expect(ws.sent.length).toBe(frames + 1);
    const [unsub, resub] = (ws.sent.at(-1) as string).split('\n').map((l) => JSON.parse(l));
    expect(unsub.unsubscribe).toEqual({ channel: 'chat:1' });
    expect(resub.subscribe).toEqual({ channel: 'chat:1', since: { offset: 2, epoch: 'E1' } });
    ws.push({ id: unsub.id, unsubscribe: {} });
    ws.push({ id: resub.id, subscribe: { positioned: true, epoch: 'E1', offset: 5, wasRecovering: true, recovered: true, publications: [pub(3).pub, pub(4).pub, pub(5).pub] } });
    expect(log.filter((l) => l.startsWith('pub'))).toEqual(['pub:2:2', 'pub:3:3', 'pub:4:4', 'pub:5:5']);
    expect(log).toContain(`subscribing:${ReasonCode.Gap}`);
  });

  it('the server gap signal (unsubscribed 30010, resubscribe) recovers from the last position', async () => {
    const { client, ws } = await connected();
    const sub = client.subscribe('chat:1');
    const log = record(sub);
    await flush();
    ws.push({ id: lastSubscribe(ws).id, subscribe: { positioned: true, epoch: 'E1', offset: 7 } });
    ws.push(pub(8));
    ws.push({ unsubscribed: { channel: 'chat:1', code: 30010, reason: 'insufficient state', resubscribe: true } });
    await flush();
    expect(lastSubscribe(ws).subscribe).toEqual({ channel: 'chat:1', since: { offset: 8, epoch: 'E1' } });
    expect(log.slice(-2)).toEqual(['state:subscribing', 'subscribing:30010']);
  });

  it('the server ending a subscription without resubscribe leaves it unsubscribed; the channel can be subscribed again', async () => {
    const { client, ws } = await connected();
    const sub = client.subscribe('chat:1');
    const log = record(sub);
    await flush();
    ws.push({ id: lastSubscribe(ws).id, subscribe: {} });
    ws.push({ unsubscribed: { channel: 'chat:1', code: 30002, reason: 'not logged in' } });
    expect(log.slice(-2)).toEqual(['state:unsubscribed', 'unsubscribed:30002']);
    expect(() => client.subscribe('chat:1')).not.toThrow();
  });

  it('a temporary error retries with back-off; a permanent one ends in unsubscribed with the server code', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.5);
    const { client, ws } = await connected();
    const a = client.subscribe('a');
    const b = client.subscribe('b', { private: true });
    const logA = record(a);
    const logB = record(b);
    await flush();
    const [ca, cb] = ws.commands().slice(-2);
    ws.push({ id: ca!.id, error: { code: 30006, message: 'cluster unavailable' } }, { id: cb!.id, error: { code: 30002, message: 'not logged in' } });
    expect(logA).toEqual(['error:server:30006']);
    expect(logB).toEqual(['error:server:30002', 'state:unsubscribed', 'unsubscribed:30002']);
    await flush();
    const sent = ws.commands().length;
    await vi.advanceTimersByTimeAsync(49); // 0.5 * 100
    expect(ws.commands().length).toBe(sent);
    await vi.advanceTimersByTimeAsync(2);
    const retry = lastSubscribe(ws);
    expect(retry.subscribe).toEqual({ channel: 'a' });
    ws.push({ id: retry.id, subscribe: {} });
    expect(a.state).toBe('subscribed');
  });

  it('a subscribe with no answer within timeout is retried', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const { client, ws } = await connected();
    const sub = client.subscribe('a');
    const log = record(sub);
    await flush();
    const first = lastSubscribe(ws).id;
    await vi.advanceTimersByTimeAsync(1000);
    expect(log).toEqual([`error:${ErrorCode.Timeout}:`]);
    await flush();
    expect(ws.lastCommand().unsubscribe).toEqual({ channel: 'a' });
    await vi.advanceTimersByTimeAsync(2);
    expect(lastSubscribe(ws).id).not.toBe(first);
    ws.push({ id: first, subscribe: {} }); // the stale answer is ignored
    expect(sub.state).toBe('subscribing');
  });

  it('typed payloads: the decoder turns data into T; a decoder that throws is an error event, the rest still arrive', async () => {
    const { client, ws } = await connected();
    const sub = client.subscribe<{ price: number }>('ticker', {
      decode: (d) => {
        const v = d as { price?: unknown };
        if (typeof v.price !== 'number') throw new Error('no price');
        return { price: v.price };
      },
    });
    const prices: number[] = [];
    const errors: PushwireError[] = [];
    sub.on('publication', (p) => prices.push(p.data.price));
    sub.on('error', (e) => errors.push(e.error));
    await flush();
    ws.push({ id: lastSubscribe(ws).id, subscribe: {} });
    ws.push({ pub: { channel: 'ticker', data: { price: 1 } } }, { pub: { channel: 'ticker', text: 'oops' } }, { pub: { channel: 'ticker', data: { price: 2 } } });
    expect(prices).toEqual([1, 2]);
    expect(errors[0]?.message).toBe('decode failed on "ticker" at offset -: no price');
  });

  it('unsubscribe() sends unsubscribe, forgets the position, and publications stop; subscribe twice throws', async () => {
    const { client, ws } = await connected();
    const sub = client.subscribe('chat:1');
    expect(() => client.subscribe('chat:1')).toThrow('already subscribed to "chat:1": use getSubscription() or removeSubscription() first');
    const log = record(sub);
    await flush();
    ws.push({ id: lastSubscribe(ws).id, subscribe: { positioned: true, epoch: 'E', offset: 1 } });
    sub.unsubscribe();
    await flush();
    expect(ws.lastCommand().unsubscribe).toEqual({ channel: 'chat:1' });
    ws.push(pub(2, 2, 'E'));
    expect(log.slice(-2)).toEqual(['state:unsubscribed', 'unsubscribed:0']);
    expect(sub.position).toBeUndefined();
    client.removeSubscription(sub);
    expect(client.getSubscription('chat:1')).toBeUndefined();
  });

  it('client.disconnect() moves subscriptions to subscribing; the next connect() resubscribes them', async () => {
    const { client, ws } = await connected();
    const sub = client.subscribe('a');
    await flush();
    ws.push({ id: lastSubscribe(ws).id, subscribe: { positioned: true, epoch: 'E', offset: 3 } });
    client.disconnect();
    expect(sub.state).toBe('subscribing');
    client.connect();
    FakeWebSocket.last.handshake();
    await flush();
    expect(lastSubscribe(FakeWebSocket.last).subscribe).toEqual({ channel: 'a', since: { offset: 3, epoch: 'E' } });
  });

  it('ready() resolves once subscribed and sub.history() decodes like live publications', async () => {
    const { client, ws } = await connected();
    const sub = client.subscribe<string>('a', { decode: (d) => String(d).toUpperCase() });
    const ready = sub.ready();
    await flush();
    ws.push({ id: lastSubscribe(ws).id, subscribe: {} });
    await ready;
    const h = sub.history({ limit: 1 });
    await flush();
    const cmd = ws.lastCommand();
    expect(cmd.history).toEqual({ channel: 'a', limit: 1 });
    ws.push({ id: cmd.id, history: { publications: [{ channel: 'a', text: 'hi', offset: 1, epoch: 'E' }], offset: 1, epoch: 'E' } });
    await expect(h).resolves.toEqual({ publications: [{ channel: 'a', data: 'HI', offset: 1, epoch: 'E' }], offset: 1, epoch: 'E' });
  });
});

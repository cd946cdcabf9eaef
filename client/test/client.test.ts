// Unit tests of the SDK's pure logic (state machines, back-off, watchdog) against a scripted fake
// WebSocket and fake timers. The same behaviour against real nodes is in test/integration/sdk-*.test.ts.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { backoffDelay } from '../src/backoff.js';
import { Client, type ClientOptions } from '../src/client.js';
import { ReasonCode } from '../src/codes.js';
import { ErrorCode, PushwireError } from '../src/errors.js';
import { FakeWebSocket } from './fake-websocket.js';

const flush = async (): Promise<void> => {
  await vi.advanceTimersByTimeAsync(0);
};

function newClient(options: ClientOptions = {}): { client: Client; log: string[] } {
  const client = new Client('ws://test/ws', { websocket: FakeWebSocket, offlineHint: false, ...options });
  const log: string[] = [];
  client.on('state', (e) => log.push(`state:${e.previous}->${e.state}`));
  client.on('connecting', (e) => log.push(`connecting:${e.code}`));
  client.on('connected', (e) => log.push(`connected:${e.client}`));
  client.on('disconnected', (e) => log.push(`disconnected:${e.code}`));
  return { client, log };
}

beforeEach(() => {
  vi.useFakeTimers();
  FakeWebSocket.reset();
});
afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe('backoffDelay (full jitter)', () => {
  it('waits random [0, min * 2^attempt), capped at max', () => {
    expect(backoffDelay(0, 500, 20_000, () => 0.999)).toBe(499);
    expect(backoffDelay(3, 500, 20_000, () => 0.5)).toBe(2000);
    expect(backoffDelay(10, 500, 20_000, () => 0.999)).toBe(19_980);
    expect(backoffDelay(5000, 500, 20_000, () => 0.5)).toBe(10_000);
    expect(backoffDelay(4, 500, 20_000, () => 0)).toBe(0);
  });

  it('spreads a crowd over the whole window', () => {
    const delays = Array.from({ length: 2000 }, () => backoffDelay(2, 500, 20_000));
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...delays)).toBeLessThan(2000);
    // Full jitter: about half land in each half of the window (not all near its end, as with "equal jitter").
    const low = delays.filter((d) => d < 1000).length;
    expect(low).toBeGreaterThan(800);
    expect(low).toBeLessThan(1200);
  });
});

describe('Client connection state machine', () => {
  it('disconnected -> connecting -> connected, with the token and client name in connect', async () => {
    const { client, log } = newClient({ token: 'T1' });
    expect(client.state).toBe('disconnected');
    client.connect();
    expect(FakeWebSocket.last.protocols).toBe('pushwire.v1.json');
    FakeWebSocket.last.open();
    const connect = FakeWebSocket.last.lastCommand();
    expect(connect).toEqual({ id: connect.id, connect: { token: 'T1', name: 'pushwire-js', version: '0.1.0' } });
    FakeWebSocket.last.acceptConnect({ client: 'c-7' });
    expect(client.state).toBe('connected');
    expect(client.cid).toBe('c-7');
    expect(log).toEqual(['state:disconnected->connecting', 'connecting:0', 'state:connecting->connected', 'connected:c-7']);
  });

  it('reconnects with full-jitter back-off after a lost connection, resetting after success', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.5);
    const { client, log } = newClient({ minReconnectDelay: 1000, maxReconnectDelay: 5000 });
    client.connect();
    FakeWebSocket.last.handshake();
    log.length = 0;
    FakeWebSocket.last.serverClose(1006);
    expect(log).toEqual(['state:connected->connecting', `connecting:${ReasonCode.TransportClosed}`]);
    expect(client.cid).toBe('');
    // attempt 0: 0.5 * 1000
    await vi.advanceTimersByTimeAsync(499);
    expect(FakeWebSocket.instances).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(FakeWebSocket.instances).toHaveLength(2);
    // refused: attempt 1 waits 0.5 * 2000, attempt 2 0.5 * 4000, attempt 3 0.5 * 5000 (the cap)
    for (const wait of [1000, 2000, 2500]) {
      FakeWebSocket.last.serverClose(1006);
      const before = FakeWebSocket.instances.length;
      await vi.advanceTimersByTimeAsync(wait - 1);
      expect(FakeWebSocket.instances).toHaveLength(before);
      await vi.advanceTimersByTimeAsync(1);
      expect(FakeWebSocket.instances).toHaveLength(before + 1);
    }
    expect(client.state).toBe('connecting');
    FakeWebSocket.last.handshake();
    expect(client.state).toBe('connected');
    FakeWebSocket.last.serverClose(1012, 'service restart');
    expect(log.at(-1)).toBe('connecting:1012');
    await vi.advanceTimersByTimeAsync(500); // back to attempt 0
    expect(FakeWebSocket.last.readyState).toBe(0);
  });

  it('follows disconnect advice: reconnect: false stays disconnected', async () => {
    const { client, log } = newClient();
    client.connect();
    FakeWebSocket.last.handshake();
    FakeWebSocket.last.push({ disconnect: { code: 3501, reason: 'banned', reconnect: false } });
    FakeWebSocket.last.serverClose(3501, 'banned');
    expect(client.state).toBe('disconnected');
    expect(log.at(-1)).toBe('disconnected:3501');
    await vi.advanceTimersByTimeAsync(60_000);
    expect(FakeWebSocket.instances).toHaveLength(1);
  });

  it('follows disconnect advice: reconnect: true reconnects, even with a close code that alone would not', async () => {
    const { client, log } = newClient();
    client.connect();
    FakeWebSocket.last.handshake();
    FakeWebSocket.last.push({ disconnect: { code: 1012, reason: 'service restart', reconnect: true } });
    FakeWebSocket.last.serverClose(1012, 'service restart');
    expect(client.state).toBe('connecting');
    expect(log.at(-1)).toBe('connecting:1012');
  });

  it('without advice, close codes 3500-3999 mean do not reconnect; 3000-3499 reconnect', async () => {
    const a = newClient();
    a.client.connect();
    FakeWebSocket.last.handshake();
    FakeWebSocket.last.serverClose(3008, 'slow consumer');
    expect(a.client.state).toBe('connecting');
    const b = newClient();
    b.client.connect();
    FakeWebSocket.last.handshake();
    FakeWebSocket.last.serverClose(3503, 'go away');
    expect(b.client.state).toBe('disconnected');
    expect(b.log.at(-1)).toBe('disconnected:3503');
  });

  it('disconnect() closes with 1000 and stops reconnecting; connect() again works', async () => {
    const { client, log } = newClient();
    client.connect();
    const ws = FakeWebSocket.last;
    ws.handshake();
    client.disconnect();
    expect(ws.closedWith).toBe(1000);
    expect(log.at(-1)).toBe('disconnected:0');
    await vi.advanceTimersByTimeAsync(60_000);
    expect(FakeWebSocket.instances).toHaveLength(1);
    client.connect();
    expect(FakeWebSocket.instances).toHaveLength(2);
  });

  it('a connect that gets no answer within timeout is dropped and retried', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const { client, log } = newClient({ timeout: 3000 });
    const errors: PushwireError[] = [];
    client.on('error', (e) => errors.push(e.error));
    client.connect();
    FakeWebSocket.last.open();
    await vi.advanceTimersByTimeAsync(3000);
    expect(log.at(-1)).toBe('connecting:0'); // still connecting: no new state event
    expect(errors.map((e) => e.code)).toEqual([ErrorCode.Timeout]);
    expect(FakeWebSocket.instances[0]!.closedWith).toBe(1000);
    await vi.advanceTimersByTimeAsync(1); // a 0 ms timer fires after 1 ms, as in Node
    expect(FakeWebSocket.instances).toHaveLength(2);
    expect(client.state).toBe('connecting');
  });

  it('a socket still connecting when the connect timeout fires is closed with an error handler in place (ws would crash otherwise)', async () => {
    const { client, log } = newClient({ timeout: 2000 });
    client.connect();
    const ws = FakeWebSocket.last; // never opens
    await vi.advanceTimersByTimeAsync(2000);
    expect(log.at(-1)).toBe('connecting:0');
    expect(ws.closedWith).toBe(1000);
    expect(ws.unhandledError).toBe(false);
    client.disconnect();
  });

  it('a node that does not accept the subprotocol (legacy only) ends in disconnected, code BadProtocol', async () => {
    FakeWebSocket.accept = '';
    const { client, log } = newClient();
    const errors: PushwireError[] = [];
    client.on('error', (e) => errors.push(e.error));
    client.connect();
    FakeWebSocket.last.open();
    expect(client.state).toBe('disconnected');
    expect(log.at(-1)).toBe(`disconnected:${ReasonCode.BadProtocol}`);
    expect(errors[0]?.message).toMatch(/subprotocol/);
  });

  it('a bad frame drops the connection and reconnects', async () => {
    const { client, log } = newClient();
    client.connect();
    FakeWebSocket.last.handshake();
    FakeWebSocket.last.onmessage!({ data: '{not json' });
    expect(log.at(-1)).toBe(`connecting:${ReasonCode.BadFrame}`);
    expect(client.state).toBe('connecting');
  });
});

describe('ping watchdog', () => {
  it('answers server pings with pong', async () => {
    const { client } = newClient();
    client.connect();
    const ws = FakeWebSocket.last;
    ws.handshake();
    ws.push({ ping: {} });
    expect(ws.sent.at(-1)).toBe('{"pong":{}}');
  });

  it('presumes the connection dead after ping + pong + maxServerPingDelay of silence, not before', async () => {
    const { client, log } = newClient({ maxServerPingDelay: 2000 });
    client.connect();
    const ws = FakeWebSocket.last;
    ws.handshake({ ping: 25, pong: 8 }); // window: 33 s + 2 s
    await vi.advanceTimersByTimeAsync(30_000);
    ws.push({ ping: {} }); // any frame restarts the window
    await vi.advanceTimersByTimeAsync(34_999);
    expect(client.state).toBe('connected');
    await vi.advanceTimersByTimeAsync(1);
    expect(client.state).toBe('connecting');
    expect(log.at(-1)).toBe(`connecting:${ReasonCode.NoPing}`);
    expect(ws.closedWith).toBe(1000);
  });

  it('no watchdog when the server announces no pings', async () => {
    const { client } = newClient();
    client.connect();
    FakeWebSocket.last.handshake({ ping: 0, pong: 0 });
    await vi.advanceTimersByTimeAsync(10 * 60_000);
    expect(client.state).toBe('connected');
  });
});

describe('offline/online hint', () => {
  it('closes at once when the browser goes offline and reconnects at once when it is back', async () => {
    const target = new EventTarget();
    const g = globalThis as unknown as Record<string, unknown>;
    g.addEventListener = target.addEventListener.bind(target);
    g.removeEventListener = target.removeEventListener.bind(target);
    try {
      const { client, log } = newClient({ offlineHint: true });
      client.connect();
      FakeWebSocket.last.handshake();
      target.dispatchEvent(new Event('offline'));
      expect(log.at(-1)).toBe(`connecting:${ReasonCode.Offline}`);
      await vi.advanceTimersByTimeAsync(120_000);
      expect(FakeWebSocket.instances).toHaveLength(1); // no attempts while offline
      target.dispatchEvent(new Event('online'));
      expect(FakeWebSocket.instances).toHaveLength(2); // no back-off wait
      FakeWebSocket.last.handshake();
      expect(client.state).toBe('connected');
      client.close();
      target.dispatchEvent(new Event('online'));
      expect(FakeWebSocket.instances).toHaveLength(2);
    } finally {
      delete g.addEventListener;
      delete g.removeEventListener;
    }
  });
});

describe('tokens', () => {
  it('getToken is called for the first connect and again after 30003, then the client reconnects with the new token', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    let n = 0;
    const getToken = vi.fn(async () => `tok-${++n}`);
    const { client } = newClient({ getToken });
    const errors: PushwireError[] = [];
    client.on('error', (e) => errors.push(e.error));
    client.connect();
    await flush();
    const ws = FakeWebSocket.last;
    ws.open();
    expect(ws.lastCommand().connect.token).toBe('tok-1');
    ws.push({ id: ws.lastCommand().id, error: { code: 30003, message: 'auth failed', detail: 'token expired' } });
    expect(errors[0]?.serverCode).toBe(30003);
    expect(errors[0]?.message).toBe('auth failed: token expired');
    expect(client.state).toBe('connecting');
    await flush();
    await flush();
    expect(getToken).toHaveBeenCalledTimes(2);
    FakeWebSocket.last.open();
    expect(FakeWebSocket.last.lastCommand().connect.token).toBe('tok-2');
    FakeWebSocket.last.acceptConnect();
    expect(client.state).toBe('connected');
    // A plain reconnect reuses the token that worked.
    FakeWebSocket.last.serverClose(1012);
    await flush();
    await flush();
    expect(getToken).toHaveBeenCalledTimes(2);
    FakeWebSocket.last.open();
    expect(FakeWebSocket.last.lastCommand().connect.token).toBe('tok-2');
  });

  it('without getToken, 30003 is final: disconnected with the code', async () => {
    const { client, log } = newClient({ token: 'bad' });
    client.connect();
    FakeWebSocket.last.open();
    FakeWebSocket.last.push({ id: FakeWebSocket.last.lastCommand().id, error: { code: 30003, message: 'auth failed' } });
    expect(client.state).toBe('disconnected');
    expect(log.at(-1)).toBe('disconnected:30003');
  });

  it('a getToken that throws is reported and retried with back-off', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.5);
    const getToken = vi.fn().mockRejectedValueOnce(new Error('backend down')).mockResolvedValue('ok');
    const { client } = newClient({ getToken, minReconnectDelay: 1000 });
    const errors: PushwireError[] = [];
    client.on('error', (e) => errors.push(e.error));
    client.connect();
    await flush();
    expect(errors[0]?.code).toBe(ErrorCode.Token);
    expect(errors[0]?.message).toBe('getToken failed: backend down');
    expect(FakeWebSocket.instances).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(500);
    expect(getToken).toHaveBeenCalledTimes(2);
    expect(FakeWebSocket.instances).toHaveLength(1);
  });
});

describe('commands', () => {
  it('request waits while connecting, goes out after connect, and resolves with the backend reply', async () => {
    const { client } = newClient();
    client.connect();
    const reply = client.request({ item: 'book' }, { route: 'orders.create' });
    const ws = FakeWebSocket.last;
    ws.handshake();
    await flush();
    const cmd = ws.lastCommand();
    expect(cmd).toEqual({ id: cmd.id, request: { data: { item: 'book' }, route: 'orders.create' } });
    ws.push({ id: cmd.id, request: {} });
    ws.push({ reply: { id: cmd.id, data: { order: 7 } } });
    await expect(reply).resolves.toEqual({ order: 7 });
  });

  it('request: a reply that overtakes the accepting result still resolves; text and b64 payloads decode', async () => {
    const { client } = newClient();
    client.connect();
    FakeWebSocket.last.handshake();
    const a = client.request(1);
    const b = client.request(2);
    await flush();
    const [ca, cb] = FakeWebSocket.last.commands().slice(-2);
    FakeWebSocket.last.push({ reply: { id: ca!.id, text: 'plain' } }, { id: ca!.id, request: {} }, { reply: { id: cb!.id, b64: 'AAH/' } });
    await expect(a).resolves.toBe('plain');
    await expect(b).resolves.toEqual(new Uint8Array([0, 1, 255]));
  });

  it('request: 30005 rejects with the server code; no reply rejects on timeout; a lost connection rejects', async () => {
    const { client } = newClient({ timeout: 1000 });
    client.connect();
    FakeWebSocket.last.handshake();
    const a = client.request(1);
    const b = client.request(2);
    await flush();
    const [ca, cb] = FakeWebSocket.last.commands().slice(-2);
    FakeWebSocket.last.push({ id: ca!.id, error: { code: 30005, message: 'no backend connected' } }, { id: cb!.id, request: {} });
    await expect(a).rejects.toMatchObject({ code: ErrorCode.Server, serverCode: 30005 });
    const bDone = expect(b).rejects.toMatchObject({ code: ErrorCode.Timeout });
    await vi.advanceTimersByTimeAsync(1000);
    await bDone;
    const c = client.request(3);
    await flush();
    FakeWebSocket.last.serverClose(1006);
    await expect(c).rejects.toMatchObject({ code: ErrorCode.Closed });
  });

  it('commands queued in one task share one frame; a disconnected client rejects at once', async () => {
    const { client } = newClient();
    await expect(client.ping()).rejects.toMatchObject({ code: ErrorCode.Closed });
    client.connect();
    FakeWebSocket.last.handshake();
    const sentBefore = FakeWebSocket.last.sent.length;
    void client.ping();
    void client.history('a');
    void client.presence('b');
    await flush();
    expect(FakeWebSocket.last.sent.length).toBe(sentBefore + 1);
    expect((FakeWebSocket.last.sent.at(-1) as string).split('\n')).toHaveLength(3);
  });

  it('history and presence parse their results', async () => {
    const { client } = newClient();
    client.connect();
    FakeWebSocket.last.handshake();
    const h = client.history('chat:1', { limit: 2, since: { offset: 3, epoch: 'e' }, reverse: true });
    const p = client.presence('chat:1');
    await flush();
    const [ch, cp] = FakeWebSocket.last.commands().slice(-2);
    expect(ch!.history).toEqual({ channel: 'chat:1', since: { offset: 3, epoch: 'e' }, limit: 2, reverse: true });
    FakeWebSocket.last.push(
      { id: ch!.id, history: { publications: [{ channel: 'chat:1', data: { a: 1 }, offset: 5, epoch: 'e', id: 'm5', time: 9 }], offset: 5, epoch: 'e' } },
      { id: cp!.id, presence: { clients: [{ client: 'c1', user: 'alice' }, { client: 'c2' }] } },
    );
    await expect(h).resolves.toEqual({ publications: [{ channel: 'chat:1', data: { a: 1 }, offset: 5, epoch: 'e', id: 'm5', time: 9 }], offset: 5, epoch: 'e' });
    await expect(p).resolves.toEqual([
      { client: 'c1', user: 'alice' },
      { client: 'c2', user: '' },
    ]);
  });

  it('publications with no subscription (broadcasts, targeted, user pushes) come as client publication events', async () => {
    const { client } = newClient();
    const got: unknown[] = [];
    client.on('publication', (p) => got.push(p));
    client.connect();
    FakeWebSocket.last.handshake();
    FakeWebSocket.last.push({ pub: { data: 'x', tags: ['t1'], id: 'm1' } }, { pub: { private: true, text: 'hi' } });
    expect(got).toEqual([
      { channel: '', private: false, data: 'x', id: 'm1', tags: ['t1'] },
      { channel: '', private: true, data: 'hi' },
    ]);
  });

  it('rejects bad options with an exact message', () => {
    expect(() => new Client('ws://x', { websocket: FakeWebSocket, minReconnectDelay: 0 })).toThrow(
      'minReconnectDelay must be > 0 and maxReconnectDelay >= minReconnectDelay',
    );
    const g = globalThis as { WebSocket?: unknown };
    const saved = g.WebSocket;
    delete g.WebSocket;
    try {
      expect(() => new Client('ws://x')).toThrow('no global WebSocket here: pass options.websocket (e.g. the "ws" package)');
    } finally {
      if (saved) g.WebSocket = saved;
    }
  });
});

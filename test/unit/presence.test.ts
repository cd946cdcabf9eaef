import { describe, expect, it } from 'vitest';
import { MemoryPresence } from '../../src/cluster/memory-presence.js';
import type { PresenceEntry } from '../../src/cluster/presence.js';
import { SortedStrings, compareBytewise } from '../../src/cluster/sorted-strings.js';
import { PushwireError } from '../../src/core/errors.js';
import { decodePageToken, encodePageToken } from '../../src/core/page-token.js';
import { watchOnlineUsers, type WatchItem } from '../../src/core/presence-watch.js';

const entry = (pid: string, cid: string, uid: string): PresenceEntry => ({ pid, cid, uid, node: 'n1', connectedAt: 1 });

describe('page tokens', () => {
  it('round-trip the last key, bound to project and listing', () => {
    const t = encodePageToken('shop', 'users', 'alice');
    expect(decodePageToken(t, 'shop', 'users')).toBe('alice');
    expect(decodePageToken('', 'shop', 'users')).toBeUndefined();
    expect(() => decodePageToken(t, 'blog', 'users')).toThrow('page_token belongs to another listing');
    expect(() => decodePageToken(t, 'shop', 'connections')).toThrow('page_token belongs to another listing');
  });

  it.each(['x', '!!!', Buffer.from('[1,"shop","users"]').toString('base64url'), Buffer.from('{"a":1}').toString('base64url'), Buffer.from('[1,"shop","users",""]').toString('base64url')])(
    'refuse garbage %s with INVALID_ARGUMENT',
    (token) => {
      try {
        decodePageToken(token, 'shop', 'users');
        expect.unreachable();
      } catch (err) {
        expect(err).toBeInstanceOf(PushwireError);
        expect((err as PushwireError).code).toBe(3);
        expect((err as PushwireError).message).toBe('invalid page_token');
      }
    },
  );
});

describe('SortedStrings', () => {
  it('orders by UTF-8 bytes like Redis ZRANGEBYLEX, and pages after a key', () => {
    const s = new SortedStrings();
    for (const x of ['b', 'a', '\u{1F600}', '\uFFFD', 'ab', 'a']) s.add(x);
    expect(s.range(undefined, 10)).toEqual(['a', 'ab', 'b', '\uFFFD', '\u{1F600}']);
    expect(s.range('ab', 2)).toEqual(['b', '\uFFFD']);
    expect(s.range('aa', 1)).toEqual(['ab']);
    s.delete('ab');
    expect(s.size).toBe(4);
    expect(compareBytewise('\u{1F600}', '\uFFFD')).toBeGreaterThan(0);
    expect(Buffer.compare(Buffer.from('\u{1F600}'), Buffer.from('\uFFFD'))).toBeGreaterThan(0);
  });
});

describe('MemoryPresence', () => {
  it('joins on a user first connection, leaves on the last, numbered in order', async () => {
    const p = new MemoryPresence();
    const events: string[] = [];
    await p.watch('shop', { event: (e) => events.push(`${e.seq}:${e.kind}:${e.uid}:${e.cid}`), lost: () => events.push('lost') });
    await p.add(entry('shop', 'c1', 'alice'));
    await p.add(entry('shop', 'c2', 'alice'));
    await p.add(entry('shop', 'c2', 'alice')); // re-asserted: nothing changes
    await p.add(entry('shop', 'c3', 'bob'));
    await p.add(entry('blog', 'c9', 'alice')); // another project
    expect(await p.count('shop')).toEqual({ users: 2, connections: 3 });
    expect(await p.listUsers('shop', 10, undefined)).toEqual({
      users: [
        { uid: 'alice', connections: 2 },
        { uid: 'bob', connections: 1 },
      ],
      total: 2,
    });
    await p.remove('shop', 'c1');
    await p.remove('shop', 'c2');
    await p.add(entry('shop', 'c3', 'carol')); // the same connection now acts as another user
    expect(events).toEqual(['1:join:alice:c1', '2:join:bob:c3', '3:leave:alice:c2', '4:leave:bob:c3', '5:join:carol:c3']);
    expect(await p.sequence('shop')).toBe(5);
    expect((await p.users('shop', ['carol', 'alice'])).map((u) => [u.uid, u.connections.map((c) => c.cid)])).toEqual([
      ['carol', ['c3']],
      ['alice', []],
    ]);
    expect((await p.listConnections('shop', 10, undefined)).map((e) => [e.cid, e.uid])).toEqual([['c3', 'carol']]);
  });
});

/** A consumer whose writes block until `release()`; records what it got. */
function consumer() {
  const got: WatchItem[] = [];
  let gate: Promise<void> | undefined;
  let open: (() => void) | undefined;
  return {
    got,
    block() {
      gate = new Promise((r) => (open = r));
    },
    release() {
      open?.();
      gate = undefined;
    },
    write: async (item: WatchItem) => {
      got.push(item);
      await gate;
    },
  };
}

const until = async (check: () => boolean): Promise<void> => {
  for (let i = 0; i < 400 && !check(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(check()).toBe(true);
};

describe('watchOnlineUsers', () => {
  it('sends the snapshot in chunks of at most 1000, the last flagged, then events in order', async () => {
    const p = new MemoryPresence();
    for (let i = 0; i < 2500; i++) await p.add(entry('shop', `c${i}`, `u${String(i).padStart(5, '0')}`));
    const c = consumer();
    const ac = new AbortController();
    const done = watchOnlineUsers(p, 'shop', c.write, ac.signal, { chunkSize: 1000, maxBuffered: 100 });
    await until(() => c.got.length === 3);
    const chunks = c.got.map((i) => (i.kind === 'snapshot' ? [i.users.length, i.last, i.seq] : i.kind));
    expect(chunks).toEqual([
      [1000, false, 2500],
      [1000, false, 2500],
      [500, true, 2500],
    ]);
    const uids = c.got.flatMap((i) => (i.kind === 'snapshot' ? i.users.map((u) => u.uid) : []));
    expect(new Set(uids).size).toBe(2500);
    await p.add(entry('shop', 'x1', 'zed'));
    await p.remove('shop', 'c0');
    await until(() => c.got.length === 5);
    expect(c.got.slice(3).map((i) => (i.kind === 'join' || i.kind === 'leave' ? `${i.kind}:${i.event.uid}:${i.event.seq}` : i.kind))).toEqual([
      'join:zed:2501',
      'leave:u00000:2502',
    ]);
    ac.abort();
    await done;
  });

  it('an empty project gives one empty last chunk', async () => {
    const c = consumer();
    const ac = new AbortController();
    const done = watchOnlineUsers(new MemoryPresence(), 'shop', c.write, ac.signal, { chunkSize: 1000, maxBuffered: 100 });
    await until(() => c.got.length === 1);
    expect(c.got[0]).toEqual({ kind: 'snapshot', users: [], last: true, seq: 0 });
    ac.abort();
    await done;
  });

  it('a consumer that falls more than maxBuffered events behind gets a reset and a fresh snapshot', async () => {
    const p = new MemoryPresence();
    const c = consumer();
    const ac = new AbortController();
    const resets: string[] = [];
    const done = watchOnlineUsers(p, 'shop', c.write, ac.signal, { chunkSize: 1000, maxBuffered: 5, onReset: (r) => resets.push(r) });
    await until(() => c.got.length === 1);
    c.block();
    await p.add(entry('shop', 'c0', 'u0')); // taken, then the write blocks
    await until(() => c.got.length === 2);
    for (let i = 1; i <= 10; i++) await p.add(entry('shop', `c${i}`, `u${i}`)); // 10 > 5 buffered
    c.release();
    await until(() => c.got.length === 4);
    expect(c.got.slice(1).map((i) => i.kind)).toEqual(['join', 'reset', 'snapshot']);
    expect(c.got[2]).toEqual({ kind: 'reset', reason: 'lagging' });
    const fresh = c.got[3] as Extract<WatchItem, { kind: 'snapshot' }>;
    expect([fresh.users.length, fresh.last, fresh.seq]).toEqual([11, true, 11]);
    expect(resets).toEqual(['lagging']);
    await p.add(entry('shop', 'c11', 'u11'));
    await until(() => c.got.length === 5);
    expect(c.got[4]).toMatchObject({ kind: 'join', event: { uid: 'u11', seq: 12 } });
    ac.abort();
    await done;
  });

  it('a lost event subscription or a sequence gap resets too', async () => {
    const p = new MemoryPresence();
    let handlers: Parameters<MemoryPresence['watch']>[1] | undefined;
    const watch = p.watch.bind(p);
    p.watch = async (pid, h) => {
      handlers = h;
      return watch(pid, h);
    };
    const c = consumer();
    const ac = new AbortController();
    const done = watchOnlineUsers(p, 'shop', c.write, ac.signal, { chunkSize: 1000, maxBuffered: 100 });
    await until(() => c.got.length === 1);
    handlers!.event({ kind: 'join', seq: 7, uid: 'ghost', cid: 'c', node: 'n', at: 0 }); // 1..6 never came
    await until(() => c.got.length === 3);
    expect(c.got.slice(1).map((i) => i.kind)).toEqual(['reset', 'snapshot']);
    handlers!.lost();
    await until(() => c.got.length === 5);
    expect(c.got[3]).toEqual({ kind: 'reset', reason: 'gap' });
    ac.abort();
    await done;
  });
});

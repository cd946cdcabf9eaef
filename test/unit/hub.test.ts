import { describe, expect, it, vi } from 'vitest';
import { Interest } from '../../src/cluster/interest.js';
import { MemoryBus } from '../../src/cluster/memory-bus.js';
import { Hub } from '../../src/core/hub.js';
import type { Message, Outbound } from '../../src/core/message.js';
import { Session, type Sink } from '../../src/core/session.js';
import { DEFAULT_PID, broadcastChannel, privateChannel, topicChannel, userChannel } from '../../src/core/targeting.js';

const BROADCAST = broadcastChannel(DEFAULT_PID);

class RecordingSink implements Sink {
  readonly received: Outbound[] = [];
  deliver(out: Outbound): void {
    this.received.push(out);
  }
  get texts(): string[] {
    return this.received.map((o) => o.message.data.toString());
  }
}

/**
 * Records acquire/release and keeps a refcount per channel, like the real Interest. Every
 * session holds its project's broadcast channel from add() to remove(); `log` and `held` leave
 * it out so the tests below read as the topic/user/private bookkeeping they check (the
 * broadcast channel has tests of its own).
 */
class FakeInterest {
  readonly log: string[] = [];
  readonly refs = new Map<string, number>();
  acquire(channel: string): Promise<void> {
    if (channel !== BROADCAST) this.log.push(`acquire ${channel}`);
    this.refs.set(channel, (this.refs.get(channel) ?? 0) + 1);
    return Promise.resolve();
  }
  release(channel: string): void {
    if (channel !== BROADCAST) this.log.push(`release ${channel}`);
    const n = (this.refs.get(channel) ?? 0) - 1;
    if (n < 0) throw new Error(`release of unheld ${channel}`);
    if (n === 0) this.refs.delete(channel);
    else this.refs.set(channel, n);
  }
  ready(): Promise<void> {
    return Promise.resolve();
  }
  get held(): string[] {
    return [...this.refs.keys()].filter((c) => c !== BROADCAST).sort();
  }
}

let seq = 0;
const msg = (uid: string, topic: string, text = `m${++seq}`): Message => ({
  id: `id-${seq}`,
  pid: DEFAULT_PID,
  uid,
  topic,
  data: Buffer.from(text),
  publishedAt: Date.now(),
});

function setup() {
  const interest = new FakeInterest();
  const hub = new Hub(interest as unknown as Interest);
  let n = 0;
  const connect = () => {
    const sink = new RecordingSink();
    const session = new Session(`c${++n}`, DEFAULT_PID, sink);
    hub.add(session);
    return { session, sink };
  };
  return { hub, interest, connect };
}

describe('Hub: subscribe / unsubscribe', () => {
  it('delivers a public topic push only to subscribers of that topic', async () => {
    const { hub, connect } = setup();
    const a = connect();
    const b = connect();
    const c = connect();
    await hub.subscribe(a.session, 'news');
    await hub.subscribe(b.session, 'news');
    await hub.subscribe(c.session, 'sport');

    expect(hub.deliver(msg('', 'news', 'n1'))).toBe(2);
    expect(a.sink.texts).toEqual(['n1']);
    expect(b.sink.texts).toEqual(['n1']);
    expect(c.sink.texts).toEqual([]);

    hub.unsubscribe(a.session, 'news');
    expect(hub.deliver(msg('', 'news', 'n2'))).toBe(1);
    expect(a.sink.texts).toEqual(['n1']);
    expect(b.sink.texts).toEqual(['n1', 'n2']);
  });

  it('returns 0 for a topic nobody holds', () => {
    const { hub, connect } = setup();
    connect();
    expect(hub.deliver(msg('', 'nobody'))).toBe(0);
  });

  it('subscribing twice is idempotent: one delivery, one acquire, one unsubscribe leaves', async () => {
    const { hub, interest, connect } = setup();
    const a = connect();
    await hub.subscribe(a.session, 'news');
    await hub.subscribe(a.session, 'news');
    expect(interest.log).toEqual([`acquire ${topicChannel(DEFAULT_PID, 'news')}`]);
    expect(hub.deliver(msg('', 'news'))).toBe(1);
    expect(a.sink.received).toHaveLength(1);
    hub.unsubscribe(a.session, 'news');
    expect(hub.deliver(msg('', 'news'))).toBe(0);
    expect(hub.channelCount).toBe(1); // a still holds its project's broadcast channel;
    expect(interest.held).toEqual([]);
  });

  it('unsubscribing a topic never subscribed is harmless', () => {
    const { hub, interest, connect } = setup();
    const a = connect();
    hub.unsubscribe(a.session, 'never');
    hub.unsubscribePrivate(a.session, 'x', 'never');
    expect(interest.log).toEqual([]);
    expect(hub.channelCount).toBe(1); // the broadcast channel;
  });

  it('a public subscription does not receive private pushes for the same topic, and vice versa', async () => {
    const { hub, connect } = setup();
    const pub = connect();
    const priv = connect();
    await hub.subscribe(pub.session, 'news');
    await hub.login(priv.session, 'alice');
    await hub.subscribePrivate(priv.session, 'alice', 'news');

    hub.deliver(msg('alice', 'news', 'private'));
    hub.deliver(msg('', 'news', 'public'));
    expect(pub.sink.texts).toEqual(['public']);
    expect(priv.sink.texts).toEqual(['private']);
  });
});

describe('Hub: delivery per targeting rule', () => {
  async function world() {
    const s = setup();
    const anon = s.connect(); // not logged in, subscribed to news
    const alice1 = s.connect(); // alice, private news
    const alice2 = s.connect(); // alice, no private topics
    const bob = s.connect(); // bob, private news, public news
    const idle = s.connect(); // nothing at all
    await s.hub.subscribe(anon.session, 'news');
    await s.hub.login(alice1.session, 'alice');
    await s.hub.subscribePrivate(alice1.session, 'alice', 'news');
    await s.hub.login(alice2.session, 'alice');
    await s.hub.login(bob.session, 'bob');
    await s.hub.subscribePrivate(bob.session, 'bob', 'news');
    await s.hub.subscribe(bob.session, 'news');
    return { ...s, anon, alice1, alice2, bob, idle, all: [anon, alice1, alice2, bob, idle] };
  }
  const who = (w: Awaited<ReturnType<typeof world>>, text: string) =>
    (['anon', 'alice1', 'alice2', 'bob', 'idle'] as const).filter((k) => w[k].sink.texts.includes(text));

  it('topic set, uid empty -> every public subscriber of the topic', async () => {
    const w = await world();
    expect(w.hub.deliver(msg('', 'news', 'T'))).toBe(2);
    expect(who(w, 'T')).toEqual(['anon', 'bob']);
  });

  it('topic set, uid set -> only that user\'s sessions that subscribed privately', async () => {
    const w = await world();
    expect(w.hub.deliver(msg('alice', 'news', 'P'))).toBe(1);
    expect(who(w, 'P')).toEqual(['alice1']);
    expect(w.hub.deliver(msg('bob', 'news', 'Q'))).toBe(1);
    expect(who(w, 'Q')).toEqual(['bob']);
    expect(w.hub.deliver(msg('carol', 'news', 'R'))).toBe(0);
    expect(w.hub.deliver(msg('alice', 'sport', 'S'))).toBe(0);
  });

  it('topic empty, uid set -> every session logged in as that uid', async () => {
    const w = await world();
    expect(w.hub.deliver(msg('alice', '', 'U'))).toBe(2);
    expect(who(w, 'U')).toEqual(['alice1', 'alice2']);
    expect(w.hub.deliver(msg('nobody', '', 'V'))).toBe(0);
  });

  it('both empty -> every session, even those holding nothing', async () => {
    const w = await world();
    expect(w.hub.deliver(msg('', '', 'B'))).toBe(5);
    expect(who(w, 'B')).toEqual(['anon', 'alice1', 'alice2', 'bob', 'idle']);
  });

  it('each session receives each message exactly once', async () => {
    const w = await world();
    w.hub.deliver(msg('', 'news', 'once'));
    w.hub.deliver(msg('', '', 'once-b'));
    for (const c of w.all) {
      expect(c.sink.texts.filter((t) => t === 'once').length).toBeLessThanOrEqual(1);
      expect(c.sink.texts.filter((t) => t === 'once-b')).toHaveLength(1);
    }
  });

  it('keeps publish order per session', async () => {
    const { hub, connect } = setup();
    const a = connect();
    await hub.subscribe(a.session, 'news');
    for (let i = 0; i < 50; i++) hub.deliver(msg('', 'news', `n${i}`));
    expect(a.sink.texts).toEqual(Array.from({ length: 50 }, (_, i) => `n${i}`));
  });

  it('does not confuse uid "a" + topic "b:c" with uid "a:b" + topic "c"', async () => {
    const { hub, connect } = setup();
    const a = connect();
    const ab = connect();
    await hub.login(a.session, 'a');
    await hub.subscribePrivate(a.session, 'a', 'b:c');
    await hub.login(ab.session, 'a:b');
    await hub.subscribePrivate(ab.session, 'a:b', 'c');
    hub.deliver(msg('a', 'b:c', 'to-a'));
    hub.deliver(msg('a:b', 'c', 'to-ab'));
    expect(a.sink.texts).toEqual(['to-a']);
    expect(ab.sink.texts).toEqual(['to-ab']);
  });
});

describe('Hub: the Outbound is shared', () => {
  it('every sink receives the same Outbound object carrying the message', async () => {
    const { hub, connect } = setup();
    const clients = Array.from({ length: 5 }, connect);
    for (const c of clients) await hub.subscribe(c.session, 'news');
    const m = msg('', 'news');
    hub.deliver(m);
    const first = clients[0]!.sink.received[0]!;
    expect(first.message).toBe(m);
    for (const c of clients) {
      expect(c.sink.received).toHaveLength(1);
      expect(c.sink.received[0]).toBe(first);
    }
  });

  it('an encoder passed to encoded() runs once for many sinks', async () => {
    const { hub } = setup();
    const encode = vi.fn((m: Message) => Buffer.concat([Buffer.from('F:'), m.data]));
    const results: Buffer[] = [];
    const encodingSink: Sink = { deliver: (out) => results.push(out.encoded(encode)) };
    const sessions = Array.from({ length: 10 }, (_, i) => new Session(`e${i}`, DEFAULT_PID, encodingSink));
    for (const s of sessions) {
      hub.add(s);
      await hub.subscribe(s, 'news');
    }
    expect(hub.deliver(msg('', 'news', 'payload'))).toBe(10);
    expect(encode).toHaveBeenCalledTimes(1);
    expect(results).toHaveLength(10);
    for (const r of results) expect(r).toBe(results[0]);
    expect(results[0]!.toString()).toBe('F:payload');

    // A new message gets a new Outbound: encoded again, once.
    hub.deliver(msg('', '', 'again'));
    expect(encode).toHaveBeenCalledTimes(2);
  });
});

describe('Hub: a sink that reacts synchronously', () => {
  it('a session removed during delivery does not stop delivery to the others', async () => {
    const { hub, interest, connect } = setup();
    const others = Array.from({ length: 3 }, connect);
    const received: string[] = [];
    const self = new Session('self', DEFAULT_PID, {
      deliver: (out) => {
        received.push(out.message.data.toString());
        hub.remove(self);
      },
    });
    hub.add(self);
    await hub.subscribe(self, 'news');
    for (const o of others) await hub.subscribe(o.session, 'news');
    hub.deliver(msg('', 'news', 'x'));
    expect(received).toEqual(['x']);
    for (const o of others) expect(o.sink.texts).toEqual(['x']);
    expect(interest.refs.get(topicChannel(DEFAULT_PID, 'news'))).toBe(3);
    expect(hub.deliver(msg('', 'news', 'y'))).toBe(3);
    expect(received).toEqual(['x']);
  });
});

describe('Hub: login / logout', () => {
  /** One session subscribed to "public", logged in as alice, holding alice's private "news" and "mail". */
  const aliceWithPublicAndPrivate = async () => {
    const { hub, interest, connect } = setup();
    const a = connect();
    await hub.subscribe(a.session, 'public');
    await hub.login(a.session, 'alice');
    await hub.subscribePrivate(a.session, 'alice', 'news');
    await hub.subscribePrivate(a.session, 'alice', 'mail');
    return { hub, interest, a };
  };

  it('login sets the uid and joins the user channel', async () => {
    const { hub, interest, connect } = setup();
    const a = connect();
    await hub.login(a.session, 'alice');
    expect(a.session.uid).toBe('alice');
    expect(a.session.channels.has(userChannel(DEFAULT_PID, 'alice'))).toBe(true);
    expect(interest.held).toEqual([userChannel(DEFAULT_PID, 'alice')]);
  });

  it('logging in again with the same uid is a no-op (no duplicate delivery, no extra acquire)', async () => {
    const { hub, interest, connect } = setup();
    const a = connect();
    await hub.login(a.session, 'alice');
    await hub.subscribePrivate(a.session, 'alice', 'news');
    const before = [...interest.log];
    await hub.login(a.session, 'alice');
    expect(interest.log).toEqual(before);
    expect(hub.deliver(msg('alice', '', 'u'))).toBe(1);
    expect(hub.deliver(msg('alice', 'news', 'p'))).toBe(1);
    expect(a.sink.texts).toEqual(['u', 'p']);
  });

  it('logging in as another uid drops the old user channel and old private channels, keeps public ones', async () => {
    const { hub, interest, a } = await aliceWithPublicAndPrivate();

    await hub.login(a.session, 'bob');
    expect(a.session.uid).toBe('bob');
    expect([...a.session.channels].sort()).toEqual([BROADCAST, topicChannel(DEFAULT_PID, 'public'), userChannel(DEFAULT_PID, 'bob')].sort());
    expect(interest.held).toEqual([topicChannel(DEFAULT_PID, 'public'), userChannel(DEFAULT_PID, 'bob')].sort());

    expect(hub.deliver(msg('alice', '', 'old-user'))).toBe(0);
    expect(hub.deliver(msg('alice', 'news', 'old-private'))).toBe(0);
    expect(hub.deliver(msg('alice', 'mail', 'old-private2'))).toBe(0);
    expect(hub.deliver(msg('bob', '', 'new-user'))).toBe(1);
    expect(hub.deliver(msg('', 'public', 'pub'))).toBe(1);
    expect(a.sink.texts).toEqual(['new-user', 'pub']);
  });

  it('re-login as another uid does not disturb another session of the old uid', async () => {
    const { hub, interest, connect } = setup();
    const a = connect();
    const b = connect();
    await hub.login(a.session, 'alice');
    await hub.login(b.session, 'alice');
    await hub.subscribePrivate(a.session, 'alice', 'news');
    await hub.subscribePrivate(b.session, 'alice', 'news');
    await hub.login(a.session, 'bob');
    expect(interest.refs.get(userChannel(DEFAULT_PID, 'alice'))).toBe(1);
    expect(interest.refs.get(privateChannel(DEFAULT_PID, 'alice', 'news'))).toBe(1);
    expect(hub.deliver(msg('alice', 'news', 'p'))).toBe(1);
    expect(b.sink.texts).toEqual(['p']);
    expect(a.sink.texts).toEqual([]);
  });

  it('logout leaves the user channel and every private channel but keeps public subscriptions', async () => {
    const { hub, interest, a } = await aliceWithPublicAndPrivate();

    hub.logout(a.session);
    expect(a.session.uid).toBeUndefined();
    expect([...a.session.channels]).toEqual([BROADCAST, topicChannel(DEFAULT_PID, 'public')]);
    expect(interest.held).toEqual([topicChannel(DEFAULT_PID, 'public')]);
    expect(hub.channelCount).toBe(2);

    expect(hub.deliver(msg('alice', '', 'x'))).toBe(0);
    expect(hub.deliver(msg('alice', 'news', 'y'))).toBe(0);
    expect(hub.deliver(msg('', 'public', 'z'))).toBe(1);
    expect(a.sink.texts).toEqual(['z']);
  });

  it('logout when not logged in is a no-op', async () => {
    const { hub, interest, connect } = setup();
    const a = connect();
    await hub.subscribe(a.session, 'public');
    hub.logout(a.session);
    expect(interest.log).toEqual([`acquire ${topicChannel(DEFAULT_PID, 'public')}`]);
    expect([...a.session.channels]).toEqual([BROADCAST, topicChannel(DEFAULT_PID, 'public')]);
  });

  it('a public topic whose name looks like a user or private channel survives logout', async () => {
    const { hub, connect } = setup();
    const a = connect();
    await hub.subscribe(a.session, 'u:alice');
    await hub.subscribe(a.session, 'p:1:x:y');
    await hub.login(a.session, 'alice');
    hub.logout(a.session);
    expect(hub.deliver(msg('', 'u:alice', 'one'))).toBe(1);
    expect(hub.deliver(msg('', 'p:1:x:y', 'two'))).toBe(1);
    expect(a.sink.texts).toEqual(['one', 'two']);
  });
});

describe('Hub: remove', () => {
  it('leaves nothing behind: no channels, no connections, interest released for every channel', async () => {
    const { hub, interest, connect } = setup();
    const a = connect();
    const b = connect();
    expect(hub.connectionCount).toBe(2);
    await hub.subscribe(a.session, 'news');
    await hub.subscribe(a.session, 'sport');
    await hub.login(a.session, 'alice');
    await hub.subscribePrivate(a.session, 'alice', 'news');
    await hub.subscribePrivate(a.session, 'alice', 'mail');
    await hub.subscribe(b.session, 'news');
    expect(hub.channelCount).toBe(6);

    hub.remove(a.session);
    expect(hub.connectionCount).toBe(1);
    expect(a.session.channels.size).toBe(0);
    expect(a.session.uid).toBeUndefined();
    expect(interest.held).toEqual([topicChannel(DEFAULT_PID, 'news')]);
    expect(hub.channelCount).toBe(2);
    const acquires = interest.log.filter((l) => l.startsWith('acquire')).length;
    const releases = interest.log.filter((l) => l.startsWith('release')).length;
    expect(acquires - releases).toBe(1);

    hub.remove(b.session);
    expect(hub.connectionCount).toBe(0);
    expect(hub.channelCount).toBe(0);
    expect(interest.held).toEqual([]);

    expect(hub.deliver(msg('', '', 'b'))).toBe(0);
    expect(hub.deliver(msg('', 'news', 'n'))).toBe(0);
    expect(a.sink.received).toHaveLength(0);
    expect(b.sink.received).toHaveLength(0);
  });

  it('removing twice, or removing a never-added session, is harmless', async () => {
    const { hub, interest, connect } = setup();
    const a = connect();
    await hub.subscribe(a.session, 'news');
    hub.remove(a.session);
    hub.remove(a.session);
    hub.remove(new Session('ghost', DEFAULT_PID, new RecordingSink()));
    expect(hub.connectionCount).toBe(0);
    expect(interest.held).toEqual([]);
  });

  it('a broadcast after remove skips the removed session', async () => {
    const { hub, connect } = setup();
    const a = connect();
    const b = connect();
    hub.remove(a.session);
    expect(hub.deliver(msg('', '', 'B'))).toBe(1);
    expect(a.sink.received).toHaveLength(0);
    expect(b.sink.texts).toEqual(['B']);
  });
});

describe('Hub: interest follows the first and last local holder', () => {
  it('acquires on the first holder and releases on the last', async () => {
    const { hub, interest, connect } = setup();
    const a = connect();
    const b = connect();
    const c = connect();
    const ch = topicChannel(DEFAULT_PID, 'news');
    await hub.subscribe(a.session, 'news');
    expect(interest.log).toEqual([`acquire ${ch}`]);
    await hub.subscribe(b.session, 'news');
    await hub.subscribe(c.session, 'news');
    expect(interest.refs.get(ch)).toBe(3);
    expect(hub.channelCount).toBe(2);

    hub.unsubscribe(a.session, 'news');
    hub.remove(b.session);
    expect(interest.held).toEqual([ch]);
    hub.unsubscribe(c.session, 'news');
    expect(interest.held).toEqual([]);
    expect(hub.channelCount).toBe(1);
  });

  it('with a real Interest over a MemoryBus: the bus receives a channel exactly while a local session holds it', async () => {
    const bus = new MemoryBus();
    const subscribe = vi.spyOn(bus, 'subscribe');
    const unsubscribe = vi.spyOn(bus, 'unsubscribe');
    const interest = new Interest(bus, 0);
    const hub = new Hub(interest);
    const sa = new RecordingSink();
    const sb = new RecordingSink();
    const a = new Session('a', DEFAULT_PID, sa);
    const b = new Session('b', DEFAULT_PID, sb);
    hub.add(a);
    hub.add(b);
    bus.onMessage((_channel, payload) => {
      hub.deliver({ id: 'x', pid: DEFAULT_PID, uid: '', topic: 'news', data: payload, publishedAt: 0 });
    });

    await hub.subscribe(a, 'news');
    await hub.subscribe(b, 'news');
    await hub.login(a, 'alice');
    expect(subscribe.mock.calls.map((c) => c[0])).toEqual([BROADCAST, topicChannel(DEFAULT_PID, 'news'), userChannel(DEFAULT_PID, 'alice')]);
    expect(interest.size).toBe(3);

    await bus.publish(topicChannel(DEFAULT_PID, 'news'), Buffer.from('via bus'));
    await Promise.resolve();
    expect(sa.texts).toEqual(['via bus']);
    expect(sb.texts).toEqual(['via bus']);

    hub.unsubscribe(a, 'news');
    expect(unsubscribe).not.toHaveBeenCalled();
    hub.remove(b);
    expect(unsubscribe.mock.calls.map((c) => c[0])).toEqual([topicChannel(DEFAULT_PID, 'news')]);
    hub.remove(a);
    expect(unsubscribe.mock.calls.map((c) => c[0])).toEqual([topicChannel(DEFAULT_PID, 'news'), userChannel(DEFAULT_PID, 'alice'), BROADCAST]);
    expect(interest.size).toBe(0);
    expect(hub.channelCount).toBe(0);

    // Nothing subscribed any more: the bus drops the publish.
    await bus.publish(topicChannel(DEFAULT_PID, 'news'), Buffer.from('dropped'));
    await Promise.resolve();
    expect(sa.texts).toEqual(['via bus']);
  });
});

describe('Hub: projects', () => {
  it("every session holds its project's broadcast channel from add() to remove()", async () => {
    const interest = new FakeInterest();
    const hub = new Hub(interest as unknown as Interest);
    const a = new Session('a', 'shop', new RecordingSink());
    const b = new Session('b', 'shop', new RecordingSink());
    await hub.add(a);
    await hub.add(b);
    expect(interest.refs.get(broadcastChannel('shop'))).toBe(2);
    hub.remove(a);
    hub.remove(b);
    expect(interest.refs.has(broadcastChannel('shop'))).toBe(false);
  });

  it('never delivers a push of one project to a session of another, for every targeting rule', async () => {
    const interest = new FakeInterest();
    const hub = new Hub(interest as unknown as Interest);
    const shop = new RecordingSink();
    const blog = new RecordingSink();
    const s = new Session('s', 'shop', shop);
    const b = new Session('b', 'blog', blog);
    for (const [session] of [[s], [b]] as const) {
      await hub.add(session);
      await hub.subscribe(session, 'news');
      await hub.login(session, 'alice');
      await hub.subscribePrivate(session, 'alice', 'inbox');
    }
    const push = (pid: string, uid: string, topic: string) =>
      hub.deliver({ id: 'x', pid, uid, topic, data: Buffer.from(`${pid}:${uid}:${topic}`), publishedAt: 0 });
    for (const [uid, topic] of [
      ['', 'news'],
      ['alice', 'inbox'],
      ['alice', ''],
      ['', ''],
    ]) {
      expect(push('shop', uid!, topic!)).toBe(1);
    }
    expect(shop.texts).toEqual(['shop::news', 'shop:alice:inbox', 'shop:alice:', 'shop::']);
    expect(blog.texts).toEqual([]);
    expect(push('nobody', '', '')).toBe(0);
  });
});

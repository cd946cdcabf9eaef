import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { MemoryPresence } from '../../src/cluster/memory-presence.js';
import { noAuthenticator } from '../../src/core/auth/authenticator.js';
import { OnlineUsers } from '../../src/core/online-users.js';
import { ProjectRegistry } from '../../src/core/projects/registry.js';
import { OnlineReporter, REPORT_CHUNK } from '../../src/ingress/ws/online-report.js';

const projects = new ProjectRegistry({
  projects: ['shop', 'blog'].map((pid) => ({ pid, name: pid, authenticator: noAuthenticator, limits: {} })),
  apiKeys: new Map(),
});

function target(pid: string, backlog = () => 0) {
  const frames: Array<{ type: string; report_id: string; chunk: number; last: boolean; payload: Array<{ cid: string; uid: string; node: string }> }> = [];
  return {
    pid,
    frames,
    sendText: (t: string): void => {
      frames.push(JSON.parse(t));
    },
    backlog,
  };
}

const MAX_BACKLOG = 1 << 19;

describe('OnlineReporter (ws-cluster online report)', () => {
  it('sends every logged-in connection of the project in chunks of at most 1000, to each server of the project', async () => {
    const presence = new MemoryPresence();
    const n = 2 * REPORT_CHUNK + 500;
    for (let i = 0; i < n; i++) {
      const cid = `a-x-${i.toString(36).padStart(4, '0')}`;
      await presence.add({ pid: 'shop', cid, uid: `u${i % 700}`, node: 'a', connectedAt: 1 });
    }
    await presence.add({ pid: 'blog', cid: 'b-x-1', uid: 'other', node: 'b', connectedAt: 1 });
    const [s1, s2, blog] = [target('shop'), target('shop'), target('blog')];
    const reporter = new OnlineReporter(new OnlineUsers(presence, projects), 'a', 10_000, () => [s1, s2, blog], pino({ level: 'silent' }), MAX_BACKLOG);
    await reporter.round();

    expect(s1.frames.map((f) => [f.type, f.chunk, f.last, f.payload.length])).toEqual([
      ['online', 0, false, 1000],
      ['online', 1, false, 1000],
      ['online', 2, true, 500],
    ]);
    expect(s2.frames).toEqual(s1.frames);
    expect(new Set(s1.frames.map((f) => f.report_id)).size).toBe(1);
    const cids = s1.frames.flatMap((f) => f.payload.map((e) => e.cid));
    expect(new Set(cids).size).toBe(n);
    expect(s1.frames[0]!.payload[0]).toEqual({ cid: 'a-x-0000', uid: 'u0', node: 'a' });
    // Projects never mix.
    expect(blog.frames).toHaveLength(1);
    expect(blog.frames[0]!.payload).toEqual([{ cid: 'b-x-1', uid: 'other', node: 'b' }]);
    expect(blog.frames[0]!.last).toBe(true);

    // The next round is a new report.
    await reporter.round();
    expect(s1.frames[3]!.report_id).not.toBe(s1.frames[0]!.report_id);
  });

  it('an empty project gets one empty last chunk; no servers, no reads', async () => {
    const presence = new MemoryPresence();
    const s = target('shop');
    const reporter = new OnlineReporter(new OnlineUsers(presence, projects), 'a', 10_000, () => [s], pino({ level: 'silent' }), MAX_BACKLOG);
    await reporter.round();
    expect(s.frames.map((f) => [f.chunk, f.last, f.payload])).toEqual([[0, true, []]]);
    const idle = new OnlineReporter(new OnlineUsers(presence, projects), 'a', 10_000, () => [], pino({ level: 'silent' }), MAX_BACKLOG);
    await expect(idle.round()).resolves.toBeUndefined();
  });

  it('waits for a server that is behind, and leaves it out of the round when it stays behind', async () => {
    const presence = new MemoryPresence();
    for (let i = 0; i < 1500; i++) await presence.add({ pid: 'shop', cid: `a-x-${i.toString(36).padStart(3, '0')}`, uid: 'u', node: 'a', connectedAt: 1 });
    let slowBacklog = 0;
    let catchingUp = MAX_BACKLOG * 2;
    const fast = target('shop');
    // Behind after the first chunk, and never drains.
    const slow = target('shop', () => slowBacklog);
    // Behind after the first chunk, drains a moment later.
    const late = target('shop', () => (late.frames.length > 0 ? (catchingUp = Math.max(0, catchingUp - MAX_BACKLOG / 2)) : 0));
    const origSlow = slow.sendText;
    slow.sendText = (t: string) => {
      origSlow(t);
      slowBacklog = MAX_BACKLOG + 1;
    };
    const reporter = new OnlineReporter(new OnlineUsers(presence, projects), 'a', 10_000, () => [fast, late, slow], pino({ level: 'silent' }), MAX_BACKLOG, 200);
    await reporter.round();
    expect(fast.frames.map((f) => [f.chunk, f.last])).toEqual([[0, false], [1, true]]);
    expect(late.frames.map((f) => [f.chunk, f.last])).toEqual([[0, false], [1, true]]);
    expect(slow.frames.map((f) => [f.chunk, f.last])).toEqual([[0, false]]);
  });
});

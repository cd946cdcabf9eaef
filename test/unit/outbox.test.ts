import { describe, expect, it } from 'vitest';
import type { ConsumerDirectory, ConsumerEntry } from '../../src/cluster/consumers.js';
import { LifecycleOutbox } from '../../src/core/backend/outbox.js';
import { createLogger } from '../../src/observability/logger.js';
import { Metrics } from '../../src/observability/metrics.js';
import { waitFor } from '../helpers/ports.js';

/** Mirrors outbox.ts: beyond this many waiting events the oldest are dropped. */
const MAX_PENDING = 100_000;

interface Call {
  pid: string;
  event: string;
  sticky: number | undefined;
}

/**
 * A consumer directory that can be "down" (dispatch rejects, nothing sent) or follow a per-call
 * plan, answers asynchronously, and records what reached consumers.
 */
class FakeDirectory implements ConsumerDirectory {
  down = false;
  /**
   * Per-call outcome by call number (0-based), overriding `down`: 'lost' is delivered yet
   * rejected (a connection dropped after Redis ran the command).
   */
  plan: ((n: number) => 'ok' | 'lost' | 'down') | undefined;
  /** What dispatch resolves with (0: no consumer). */
  reached = 1;
  /** While set, dispatches wait for it before answering. */
  gate: Promise<void> | undefined;
  readonly delivered: string[] = [];
  readonly calls: Call[] = [];
  rejected = 0;

  async dispatch(pid: string, event: Buffer, sticky: number | undefined): Promise<number> {
    const outcome = this.plan?.(this.calls.length);
    this.calls.push({ pid, event: event.toString(), sticky });
    const down = outcome === undefined ? this.down : outcome === 'down';
    const lose = outcome === 'lost';
    if (!down) this.delivered.push(event.toString());
    if (this.gate !== undefined) await this.gate;
    await new Promise((r) => setImmediate(r));
    if (down || lose) {
      this.rejected++;
      throw new Error(down ? 'directory down' : 'connection lost');
    }
    return this.reached;
  }

  register(_entries: readonly ConsumerEntry[], _ttlMs: number): Promise<void> {
    return Promise.resolve();
  }

  unregister(_entry: ConsumerEntry): Promise<void> {
    return Promise.resolve();
  }

  onReconnect(): void {}
  onFrame(): void {}

  close(): Promise<void> {
    return Promise.resolve();
  }
}

let nodes = 0;
function setup() {
  const directory = new FakeDirectory();
  const metrics = new Metrics(`outbox-test-${++nodes}`);
  const outbox = new LifecycleOutbox(directory, metrics, createLogger('silent'), 0);
  const push = (name: string, type: 'connect' | 'disconnect' = 'connect', pid = 'shop', sticky = 7): void =>
    outbox.push(pid, sticky, type, Buffer.from(name));
  const count = async (labels: Record<string, string>): Promise<number> => {
    const { values } = await metrics.backendEvents.get();
    return values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k as 'type' | 'result'] === x)).reduce((s, v) => s + v.value, 0);
  };
  const waiting = async (): Promise<number> => (await metrics.backendOutbox.get()).values[0]?.value ?? 0;
  return { directory, metrics, outbox, push, count, waiting };
}

const names = (prefix: string, n: number, from = 0): string[] => Array.from({ length: n }, (_, i) => `${prefix}${from + i}`);

/** The first occurrence of each event, in delivery order (a retry may repeat events). */
const firstSeen = (delivered: string[]): string[] => [...new Set(delivered)];

describe('LifecycleOutbox', () => {
  it('sends events in push order with their pid and sticky key, counted by result', async () => {
    const { directory, push, count, waiting } = setup();
    push('c1', 'connect', 'shop', 11);
    push('d1', 'disconnect', 'blog', 22);
    push('c2', 'connect', 'shop', 33);
    await waitFor(() => directory.delivered.length === 3, 5000, 'three events sent');
    expect(directory.calls).toEqual([
      { pid: 'shop', event: 'c1', sticky: 11 },
      { pid: 'blog', event: 'd1', sticky: 22 },
      { pid: 'shop', event: 'c2', sticky: 33 },
    ]);
    await waitFor(async () => (await count({ result: 'delivered' })) === 3, 5000, 'delivered counted');
    expect(await count({ type: 'connect', result: 'delivered' })).toBe(2);
    expect(await count({ type: 'disconnect', result: 'delivered' })).toBe(1);
    expect(await waiting()).toBe(0);
  });

  it('an event no consumer took (0) is counted no_consumer and not retried', async () => {
    const { directory, push, count } = setup();
    directory.reached = 0;
    push('c1');
    push('d1', 'disconnect');
    await waitFor(async () => (await count({ result: 'no_consumer' })) === 2, 5000, 'no_consumer counted');
    await new Promise((r) => setTimeout(r, 50));
    expect(directory.calls.map((c) => c.event)).toEqual(['c1', 'd1']);
  });

  it('while the directory fails, events wait and are retried; they then leave in order, none lost', async () => {
    const { directory, push, count, waiting } = setup();
    directory.down = true;
    const events: string[] = [];
    for (let i = 0; i < 40; i++) {
      events.push(`c${i}`, `d${i}`);
      push(`c${i}`, 'connect');
      push(`d${i}`, 'disconnect');
    }
    // Retried (the first attempt failed, then at least one more) while still failing.
    await waitFor(() => directory.rejected >= 2, 5000, 'a retry while down');
    expect(directory.delivered).toEqual([]);
    expect(await waiting()).toBe(80);
    expect(await count({ result: 'delivered' })).toBe(0);

    // Pushed during the outage too: queued behind the others.
    push('late');
    events.push('late');
    directory.down = false;
    await waitFor(() => directory.delivered.length >= events.length, 10_000, 'everything sent after recovery');
    await waitFor(async () => (await waiting()) === 0, 5000, 'outbox empty');
    expect(directory.delivered).toEqual(events);
    expect(await count({ result: 'delivered' })).toBe(81);
    expect(await count({ result: 'dropped' })).toBe(0);
  });

  it('a failure in the middle of a batch resends from the failed event on: at least once, first occurrences in order', async () => {
    const { directory, push, count } = setup();
    // Hold the first dispatch so that the 29 events after it leave together, as one batch.
    let open!: () => void;
    directory.gate = new Promise<void>((r) => (open = r));
    push('e0');
    await waitFor(() => directory.calls.length === 1, 5000, 'e0 in flight');
    const events = ['e0', ...names('e', 29, 1)];
    for (const e of events.slice(1)) push(e);
    // In that batch e1..e4 succeed, e5..e7 reach the consumers but their answers are lost (the
    // connection dropped after Redis ran them), and from e8 on the directory is down.
    directory.plan = (n) => (n >= 5 && n <= 7 ? 'lost' : n >= 8 && n <= 29 ? 'down' : 'ok');
    directory.gate = undefined;
    open();
    await waitFor(() => directory.rejected >= 25, 5000, 'the batch failed from e5 on');
    await waitFor(() => firstSeen(directory.delivered).length === events.length, 10_000, 'everything sent after recovery');
    await waitFor(async () => (await count({ result: 'delivered' })) === events.length, 5000, 'all counted delivered');
    expect(firstSeen(directory.delivered)).toEqual(events);
    // Only events whose answer was lost were sent twice; nothing after them overtook them.
    const dup = directory.delivered.filter((e, i) => directory.delivered.indexOf(e) !== i);
    expect(dup).toEqual(['e5', 'e6', 'e7']);
    expect(directory.delivered.indexOf('e8')).toBeGreaterThan(directory.delivered.lastIndexOf('e7'));
    expect(directory.delivered.slice(0, 8)).toEqual(['e0', 'e1', 'e2', 'e3', 'e4', 'e5', 'e6', 'e7']);
  });

  it('overflow during a long outage drops the oldest events, counted, and sends the rest in order', async () => {
    const { directory, push, count, waiting } = setup();
    directory.down = true;
    const extra = 5;
    const total = MAX_PENDING + extra;
    for (let i = 0; i < total; i++) push(`e${i}`, i % 2 === 0 ? 'connect' : 'disconnect');
    expect(await count({ result: 'dropped' })).toBe(extra);
    expect(await count({ type: 'connect', result: 'dropped' })).toBe(3); // e0, e2, e4
    expect(await count({ type: 'disconnect', result: 'dropped' })).toBe(2); // e1, e3
    expect(await waiting()).toBe(MAX_PENDING);

    directory.down = false;
    await waitFor(() => directory.delivered.length >= MAX_PENDING, 30_000, 'everything left sent');
    await waitFor(async () => (await waiting()) === 0, 5000, 'outbox empty');
    expect(directory.delivered.length).toBe(MAX_PENDING);
    expect(directory.delivered[0]).toBe(`e${extra}`);
    expect(directory.delivered[MAX_PENDING - 1]).toBe(`e${total - 1}`);
    for (let i = 0; i < MAX_PENDING; i++) if (directory.delivered[i] !== `e${i + extra}`) expect(directory.delivered[i]).toBe(`e${i + extra}`);
    expect(await count({ result: 'delivered' })).toBe(MAX_PENDING);
  });

  it('overflow while a batch is in flight does not drop the events after it', async () => {
    const { directory, push, count } = setup();
    let open!: () => void;
    directory.gate = new Promise<void>((r) => (open = r));
    push('e0'); // in flight, will succeed
    await waitFor(() => directory.calls.length === 1, 5000, 'e0 in flight');
    const total = MAX_PENDING + 11; // e0..e100010: e0..e10 overflow while e0 is in flight
    for (let i = 1; i < total; i++) push(`e${i}`);
    expect(await count({ result: 'dropped' })).toBe(11);
    directory.gate = undefined;
    open();
    await waitFor(() => directory.delivered.length >= total - 10, 30_000, 'the rest sent');
    // e0 had been sent already; e1..e10 were dropped; nothing from e11 on is missing.
    expect(directory.delivered.slice(0, 3)).toEqual(['e0', 'e11', 'e12']);
    expect(directory.delivered.length).toBe(total - 10);
    expect(directory.delivered.at(-1)).toBe(`e${total - 1}`);
  });

  it('drain waits for what is pending, bounded while the directory fails', async () => {
    const { directory, outbox, push } = setup();
    await outbox.drain(10); // nothing running: returns at once
    push('a');
    push('b');
    await outbox.drain(5000);
    expect(directory.delivered).toEqual(['a', 'b']);
    directory.down = true;
    push('c');
    // Returns (after its bound) although "c" cannot be sent.
    await outbox.drain(100);
    expect(directory.delivered).toEqual(['a', 'b']);
    directory.down = false;
    await waitFor(() => directory.delivered.length === 3, 5000, 'c sent after recovery');
  });

  /**
   * Regression: `running` used to be cleared a microtask after the run found an empty queue; an
   * event pushed in between found it still set and stayed in the outbox until a later push.
   */
  it('an event pushed just as a run finishes is still sent (stranded-event race)', async () => {
    const stranded: number[] = [];
    for (let depth = 0; depth < 8; depth++) {
      const sent: string[] = [];
      let release!: () => void;
      const answer = new Promise<void>((r) => (release = r));
      const directory: ConsumerDirectory = {
        async dispatch(_pid, event) {
          if (event.toString() === 'first') await answer;
          sent.push(event.toString());
          return 1;
        },
        register: () => Promise.resolve(),
        unregister: () => Promise.resolve(),
        onReconnect: () => {},
        onFrame: () => {},
        close: () => Promise.resolve(),
      };
      const outbox = new LifecycleOutbox(directory, new Metrics(`outbox-race-${depth}`), createLogger('silent'), 0);
      outbox.push('shop', 1, 'connect', Buffer.from('first'));
      await new Promise((r) => setTimeout(r, 5));
      // The answer to "first" arrives; `depth` microtasks later a disconnect is pushed (as a
      // connection's promise chain would), right around the end of the run.
      release();
      let p: Promise<void> = Promise.resolve();
      for (let i = 0; i < depth; i++) p = p.then(() => {});
      void p.then(() => outbox.push('shop', 1, 'disconnect', Buffer.from('second')));
      await waitFor(() => sent.includes('first'), 5000, 'first sent');
      await new Promise((r) => setTimeout(r, 100));
      if (!sent.includes('second')) stranded.push(depth);
    }
    expect(stranded).toEqual([]);
  });

  it('after an outage, "no consumer" is retried for the recovery window (a restarted Redis knows no consumer yet)', async () => {
    let consumers = 0;
    const sent: string[] = [];
    const directory: ConsumerDirectory = {
      async dispatch(_pid, event) {
        await new Promise((r) => setImmediate(r));
        if (consumers > 0) sent.push(event.toString());
        return consumers;
      },
      register: () => Promise.resolve(),
      unregister: () => Promise.resolve(),
      onReconnect: () => {},
      onFrame: () => {},
      close: () => Promise.resolve(),
    };
    const metrics = new Metrics('outbox-recovery');
    const outbox = new LifecycleOutbox(directory, metrics, createLogger('silent'), 5000);
    // "shop" has a consumer; "blog" never had one.
    consumers = 1;
    outbox.push('shop', 1, 'connect', Buffer.from('before'));
    await waitFor(() => sent.length === 1, 5000, 'before sent');
    consumers = 0;
    // Outside a recovery window, no consumer is final: counted and dropped.
    outbox.push('shop', 1, 'connect', Buffer.from('lost'));
    await waitFor(async () => (await metrics.backendOutbox.get()).values[0]?.value === 0, 5000, 'lost settled');
    // The directory came back: shop's events wait (in order, each sent once) until its consumers
    // re-registered; a project that never had consumers does not hold anything up.
    outbox.recovered();
    outbox.push('blog', 1, 'connect', Buffer.from('b1'));
    outbox.push('shop', 1, 'connect', Buffer.from('c1'));
    outbox.push('shop', 1, 'disconnect', Buffer.from('d1'));
    await waitFor(async () => (await metrics.backendOutbox.get()).values[0]?.value === 2, 5000, 'blog settled, shop waiting');
    await new Promise((r) => setTimeout(r, 700));
    expect(sent).toEqual(['before']);
    consumers = 1;
    await waitFor(() => sent.length === 3, 5000, 'sent once consumers are back');
    expect(sent).toEqual(['before', 'c1', 'd1']);
  });
});

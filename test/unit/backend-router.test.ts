import { describe, expect, it } from 'vitest';
import { encodeConsumerFrame, type ConsumerDirectory, type ConsumerEntry } from '../../src/cluster/consumers.js';
import { decodeEvent, encodeEvent, type ClientEvent } from '../../src/core/backend/event.js';
import { BackendRouter } from '../../src/core/backend/router.js';
import { createLogger } from '../../src/observability/logger.js';
import { Metrics } from '../../src/observability/metrics.js';

interface Dispatch {
  pid: string;
  event: ClientEvent;
  sticky: number | undefined;
  group: string | undefined;
}

function setup() {
  const dispatched: Dispatch[] = [];
  const directory: ConsumerDirectory = {
    register: (_e: readonly ConsumerEntry[]) => Promise.resolve(),
    unregister: () => Promise.resolve(),
    dispatch(pid, event, sticky, group) {
      dispatched.push({ pid, event: decodeEvent(event), sticky, group });
      return Promise.resolve(1);
    },
    onReconnect: () => {},
    onFrame: () => {},
    close: () => Promise.resolve(),
  };
  const router = new BackendRouter({ nodeId: 'n1', directory, metrics: new Metrics('router-test'), logger: createLogger('silent'), consumerTtlMs: 15_000, publish: () => Promise.resolve(), busReady: () => true });
  return { router, dispatched };
}

const request: ClientEvent = { type: 'request', id: 'e1', pid: 'shop', uid: 'u', cid: 'n2-a-1', node: 'n2', time: 1, requestId: 'r1', data: Buffer.from('{}') };

describe('BackendRouter: events for a consumer that is gone', () => {
  it('are handed to another consumer of the same group only, once', async () => {
    const { router, dispatched } = setup();
    router.receive(encodeConsumerFrame('gone', 'billing', encodeEvent(request)));
    await new Promise((r) => setImmediate(r));
    expect(dispatched).toHaveLength(1);
    expect(dispatched[0]).toMatchObject({ pid: 'shop', group: 'billing', sticky: undefined });
    expect(dispatched[0]!.event).toMatchObject({ id: 'e1', requestId: 'r1', redispatched: true });
    // Handed back a second time: dropped rather than bounced around.
    router.receive(encodeConsumerFrame('gone-too', 'billing', encodeEvent(dispatched[0]!.event)));
    await new Promise((r) => setImmediate(r));
    expect(dispatched).toHaveLength(1);
  });

  it('connection events keep their sticky consumer choice (by cid) when handed back', async () => {
    const { router, dispatched } = setup();
    router.receive(encodeConsumerFrame('gone', 'audit', encodeEvent({ ...request, type: 'connect', requestId: undefined })));
    await new Promise((r) => setImmediate(r));
    expect(dispatched[0]!.group).toBe('audit');
    expect(typeof dispatched[0]!.sticky).toBe('number');
  });

  it('a local consumer gets its events directly', () => {
    const { router, dispatched } = setup();
    const got: ClientEvent[] = [];
    void router.attach({ id: 'c1', pid: 'shop', group: 'g', deliver: (e) => got.push(e) });
    router.receive(encodeConsumerFrame('c1', 'g', encodeEvent(request)));
    expect(got.map((e) => e.id)).toEqual(['e1']);
    expect(dispatched).toHaveLength(0);
  });
});

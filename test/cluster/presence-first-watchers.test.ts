import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeProcess } from '../helpers/node-process.js';
import { PresenceClients } from '../helpers/presence-client.js';
import { Cluster } from './support.js';

/**
 * Issue 9, defect 3: a node's first presence watchers, arriving together, used to race the
 * opening of its Redis presence subscriber; all but the first got 503 "subscriber is
 * connecting". Every one of them must wait for it and get its snapshot.
 */
describe('concurrent first online-users:watch requests on a fresh node', () => {
  const cluster = new Cluster('first-watchers-secret');
  let node: NodeProcess;
  let clients: PresenceClients;

  beforeAll(async () => {
    const redis = await cluster.startRedis();
    node = await cluster.node(redis);
    clients = new PresenceClients(node.grpcAddress);
    cluster.closers.push(() => clients.close());
  });

  afterAll(async () => {
    await cluster.cleanup();
  });

  it('20 REST and 20 gRPC watches opened at once all get 200 / a snapshot, none a 503', async () => {
    const ac = new AbortController();
    const rest = Array.from({ length: 20 }, async () => {
      const res = await fetch(`${node.httpUrl}/v1/projects/default/online-users:watch`, { signal: ac.signal });
      const reader = res.body!.getReader();
      let text = '';
      while (!text.includes('\n')) {
        const { value, done } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
      return { status: res.status, first: JSON.parse(text.split('\n')[0]!) as unknown };
    });
    const grpc = Array.from({ length: 20 }, () => clients.watch());
    const answers = await Promise.all(rest);
    for (const a of answers) {
      expect(a.status).toBe(200);
      expect(a.first).toMatchObject({ result: { snapshot: { last: true } } });
    }
    const firsts = await Promise.all(grpc.map((s) => s.next(() => true, 10_000)));
    for (const f of firsts) expect(f.snapshot?.last).toBe(true);
    ac.abort();
    for (const s of grpc) s.cancel();
  });
});

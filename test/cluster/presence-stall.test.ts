import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushClient, pushData } from '../helpers/grpc-client.js';
import { unique } from '../helpers/names.js';
import type { NodeProcess } from '../helpers/node-process.js';
import { waitFor } from '../helpers/ports.js';
import { PresenceClients } from '../helpers/presence-client.js';
import type { TestRedis } from '../helpers/redis-server.js';
import type { TestClient } from '../helpers/ws-client.js';
import { Cluster } from './support.js';

/**
 * A live node starved of CPU for longer than --presence-ttl (here: SIGSTOPped until the others
 * have swept it, however long that takes on this machine) is indistinguishable from a dead one:
 * the others sweep its users out (leave events) and drop its record. What the node owes the
 * cluster when it runs again: its first keep-alive repairs everything at once (the store's
 * version check makes it re-send its entries: the users join again, its record is back), its
 * sessions were never dropped, and it says what happened (a warning, and
 * pushwire_presence_heartbeats_late_total, once).
 */

const TTL = ['--presence-ttl', '2s'];

describe('a node stalled longer than the presence TTL', () => {
  const cluster = new Cluster('presence-stall-secret');
  let redis: TestRedis;
  let A: NodeProcess;
  let C: NodeProcess;
  let a: PresenceClients;

  beforeAll(async () => {
    redis = await cluster.startRedis();
    A = await cluster.node(redis, TTL);
    C = await cluster.node(redis, TTL);
    a = new PresenceClients(A.grpcAddress);
    cluster.closers.push(() => a.close());
  });
  afterAll(async () => {
    C?.proc.kill('SIGCONT'); // whatever failed, never leave it stopped
    await cluster.cleanup();
  });

  it('is swept while stopped; on SIGCONT its users join again, its record returns, its clients still get pushes, and it logs and counts the late heartbeat', async () => {
    const uid = unique('stalled');
    const client: TestClient = await cluster.connect(C);
    expect((await client.login(await cluster.token(uid))).code).toBe(20003);
    const w = a.watch();
    await w.next((i) => i.snapshot?.last === true);
    await waitFor(async () => (await a.get({ pid: '', uids: [uid] })).users[0]!.online, 10_000, `${uid} online`);
    const listed = async (): Promise<boolean> => (await a.nodes()).nodes.some((n) => n.nodeId === C.nodeId);
    await waitFor(listed, 10_000, 'C listed');
    expect(await C.metric('pushwire_presence_heartbeats_late_total')).toBe(0);

    w.skip();
    C.proc.kill('SIGSTOP');
    try {
      // A's sweep (every ttl/3) takes C for dead once its expiry passed: the TTL plus a period, plus the load.
      await w.next((i) => i.left?.uid === uid, 30_000);
      await waitFor(async () => !(await listed()), 10_000, 'C dropped from the node list');
    } finally {
      C.proc.kill('SIGCONT');
    }

    // C's first keep-alive after SIGCONT is answered "re-send everything" (the sweep removed its version).
    await w.next((i) => i.joined?.uid === uid, 30_000);
    const { users } = await a.get({ pid: '', uids: [uid] });
    expect(users[0]!.connections.map((c) => [c.cid, c.nodeId])).toEqual([[client.cid, C.nodeId]]);
    await waitFor(listed, 10_000, 'C listed again');
    expect(C.proc.exitCode).toBeNull();

    // The session itself never went anywhere: a push by uid through A reaches it on C.
    const grpc = pushClient(A.grpcAddress);
    cluster.closers.push(() => grpc.close());
    const text = unique('after-stall');
    await pushData(grpc, { uid, data: Buffer.from(text) });
    await client.next((f) => f.text === text);

    expect(await C.metric('pushwire_presence_heartbeats_late_total')).toBeGreaterThanOrEqual(1);
    const warned = C.logs.filter((l) => l.msg.startsWith('presence heartbeat late'));
    expect(warned.length).toBeGreaterThanOrEqual(1);
    expect(warned[0]!.level).toBe(40);
    expect(Number(warned[0]!.sinceLastMs)).toBeGreaterThanOrEqual(2000);
    w.cancel();
  });
});

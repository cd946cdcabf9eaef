import { SignJWT } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import type { WatchOnlineUsersResponse } from '../../gen/pushwire/v1/presence.js';
import { useTestNode } from '../helpers/fixture.js';
import { PresenceClients } from '../helpers/presence-client.js';
import { unique } from '../helpers/names.js';
import { waitFor } from '../helpers/ports.js';

const SECRET = 'watch-lag-secret';
const key = new TextEncoder().encode(SECRET);

describe('WatchOnlineUsers: a watcher that stops reading is reset, not silently skipped', () => {
  const node = useTestNode(['--jwt-secret', SECRET]);
  let clients: PresenceClients | undefined;
  afterAll(() => clients?.close());

  it('a paused gRPC watcher gets reset("lagging") and a fresh snapshot once it reads again', async () => {
    clients = new PresenceClients(node.server.grpcAddress);
    const watch = clients.watch('default');
    await watch.next((r: WatchOnlineUsersResponse) => r.snapshot?.last === true);
    // The client stops reading: HTTP/2 flow control stops the server's writes, and events pile
    // up on the server for this watcher.
    watch.call.pause();

    // Over 10,000 events (the watch buffer) plus what the flow-control windows hold: 7,000
    // users each logging in (join) and out (leave) on one connection.
    const n = 7000;
    const tag = unique('lag');
    const tokens = await Promise.all(Array.from({ length: n }, (_, i) => new SignJWT({ sub: `${tag}-${i}` }).setProtectedHeader({ alg: 'HS256' }).sign(key)));
    const ws = await node.connect();
    for (let i = 0; i < n; i++) {
      ws.send({ code: 3, data: tokens[i] });
      ws.send({ code: 4, id: i === n - 1 ? 'last' : undefined });
    }
    await ws.next((f) => f.json?.id === 'last', 60_000);
    expect(ws.frames.filter((f) => f.json?.code === 20003)).toHaveLength(n);

    watch.call.resume();
    const reset = await watch.next((r) => r.reset !== undefined, 30_000);
    expect(reset.reset!.reason).toBe('lagging');
    // A fresh snapshot follows the reset; nobody of the burst is online any more.
    const fresh = await watch.next((r) => r.snapshot?.last === true, 30_000);
    expect(fresh.snapshot!.users.filter((u) => u.uid.startsWith(tag))).toEqual([]);
    // And the stream is live again: a new login arrives as a join.
    const after = await node.connect();
    after.send({ code: 3, data: await new SignJWT({ sub: `${tag}-after` }).setProtectedHeader({ alg: 'HS256' }).sign(key) });
    await watch.next((r) => r.joined?.uid === `${tag}-after`, 30_000);
    await waitFor(async () => (await node.server.metrics.registry.getSingleMetricAsString('pushwire_presence_watch_resets_total')).includes('reason="lagging"'), 5000, 'reset counted');
    watch.call.cancel();
  }, 120_000);
});

// Baseline: a minimal raw `ws` server. A client subscribes by sending the topic as a text message (private pushes
// use the topic `uid/topic`); the server answers "ok". On a push it loops client.send(payload) over the
// subscribers. With --redis, every push goes through one Redis pub/sub channel that all nodes subscribe to.
// POST /push {topic, uid?, data(base64)}; GET /stats -> process.memoryUsage() after global.gc().
// Usage: node --expose-gc bench/baselines/ws-server.mjs --port P [--redis redis://...]
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { listen, serveControl } from './control.mjs';
import { WebSocketServer } from 'ws';

const { values } = parseArgs({ options: { port: { type: 'string', default: '0' }, redis: { type: 'string' } } });

const topics = new Map(); // topic -> Set<WebSocket>
const TEXT = { binary: false };

function deliver(topic, payload) {
  const set = topics.get(topic);
  if (!set) return;
  for (const client of set) client.send(payload, TEXT);
}

let publish = deliver;
if (values.redis) {
  const { Redis } = await import('ioredis');
  const pub = new Redis(values.redis);
  const sub = pub.duplicate();
  await sub.subscribe('bench:push');
  // message = [topic length: u16][topic][payload]
  sub.on('messageBuffer', (_channel, msg) => {
    const n = msg.readUInt16BE(0);
    deliver(msg.toString('utf8', 2, 2 + n), msg.subarray(2 + n));
  });
  publish = (topic, payload) => {
    const t = Buffer.from(topic);
    const msg = Buffer.allocUnsafe(2 + t.length + payload.length);
    msg.writeUInt16BE(t.length, 0);
    t.copy(msg, 2);
    payload.copy(msg, 2 + t.length);
    return pub.publish('bench:push', msg);
  };
}

// No request/headers timeouts: under a burst the event loop can lag far behind, and a timed-out push would be
// counted as an error that pushwire (gRPC, no such timeout) never gets.
const http = createServer({ requestTimeout: 0, headersTimeout: 0, keepAliveTimeout: 60_000 });
const wss = new WebSocketServer({ server: http, perMessageDeflate: false });
wss.on('connection', (ws) => {
  const mine = [];
  ws.on('message', (data) => {
    const topic = data.toString();
    let set = topics.get(topic);
    if (!set) topics.set(topic, (set = new Set()));
    set.add(ws);
    mine.push(topic);
    ws.send('ok');
  });
  ws.on('close', () => {
    for (const t of mine) {
      const set = topics.get(t);
      set?.delete(ws);
      if (set?.size === 0) topics.delete(t);
    }
  });
});

serveControl(http, {
  push: (topic, payload) => publish(topic, payload),
  connections: () => wss.clients.size,
});

listen(http, values.port);

// Baseline: Socket.IO 4 (websocket transport), rooms per topic, @socket.io/redis-adapter for two nodes.
// Clients emit('subscribe', topic, ack) to join the room `topic` (private pushes use the room `uid/topic`).
// POST /push {topic, uid?, data(base64)} -> io.to(room).emit('m', payload as a string).
// GET /stats -> process.memoryUsage() after global.gc() (start with --expose-gc).
// Usage: node --expose-gc bench/baselines/socketio-server.mjs --port P [--redis redis://...]
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { listen, serveControl } from './control.mjs';
import { Server } from 'socket.io';

const { values } = parseArgs({ options: { port: { type: 'string', default: '0' }, redis: { type: 'string' } } });

// No request/headers timeouts: under a burst the event loop can lag far behind, and a timed-out push would be
// counted as an error that pushwire (gRPC, no such timeout) never gets.
const http = createServer({ requestTimeout: 0, headersTimeout: 0, keepAliveTimeout: 60_000 });
const io = new Server(http, { transports: ['websocket'], serveClient: false, perMessageDeflate: false });

if (values.redis) {
  const { createAdapter } = await import('@socket.io/redis-adapter');
  const { Redis } = await import('ioredis');
  const pub = new Redis(values.redis);
  const sub = pub.duplicate();
  io.adapter(createAdapter(pub, sub));
}

io.on('connection', (socket) => {
  socket.on('subscribe', (room, ack) => {
    socket.join(String(room));
    if (typeof ack === 'function') ack('ok');
  });
});

serveControl(http, {
  push: (room, payload) => io.to(room).emit('m', payload.toString('latin1')),
  connections: () => io.engine.clientsCount,
  // engine.io handles its own path
  passThrough: (req) => req.url?.startsWith('/socket.io') ?? false,
});

listen(http, values.port);

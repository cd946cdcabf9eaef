#!/usr/bin/env node
// A pipelined request flood on one WebSocket connection (issue 9, defect 5): sends N requests
// without waiting (one corked write, or --batch frames per event-loop turn), then counts the
// replies by code until all arrived, the connection closed, or 15 s passed.
//
//   node bench/flood.mjs --url ws://127.0.0.1:8812/ws --requests 30000 --code 1 [--batch 1000]
//
// code 1: subscribes without ids over 50 topics; code 7: backend requests with ids (30005
// each when no backend is connected). Prints one JSON line; note `cat /proc/loadavg` beside it.
import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';

const { values: o } = parseArgs({
  options: { url: { type: 'string', default: 'ws://127.0.0.1:8812/ws' }, requests: { type: 'string', default: '30000' }, code: { type: 'string', default: '1' }, batch: { type: 'string', default: '0' } },
});
const N = Number(o.requests);
const code = Number(o.code);
const batch = Number(o.batch);
const ws = new WebSocket(o.url);
const tally = {};
let replies = -1; // the first frame is `connected`
let last = 0;
let closed;
let t0 = Date.now();
ws.on('message', (d) => {
  replies++;
  last = Date.now() - t0;
  if (replies > 0) {
    const c = JSON.parse(d).code;
    tally[c] = (tally[c] ?? 0) + 1;
  }
});
ws.on('close', (c) => (closed = c));
await new Promise((r) => ws.once('open', r));
t0 = Date.now();
const frames = Array.from({ length: N }, (_, i) => JSON.stringify(code === 7 ? { code: 7, id: i, data: { i } } : { code, topic: `t${i % 50}` }));
if (batch === 0) {
  const sock = ws._socket;
  sock.cork();
  for (const f of frames) ws.send(f);
  process.nextTick(() => sock.uncork());
} else {
  for (let i = 0; i < N; i += batch) {
    for (const f of frames.slice(i, i + batch)) ws.send(f);
    await new Promise((r) => setImmediate(r));
  }
}
while (replies < N && closed === undefined && Date.now() - t0 < 15_000) await new Promise((r) => setTimeout(r, 20));
console.log(JSON.stringify({ requests: N, code, batch, replies, lastReplyMs: last, closed: closed ?? null, tally }));
ws.terminate();

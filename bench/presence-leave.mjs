#!/usr/bin/env node
// Time from a SIGKILL of node B to the leave of B's channel member reaching a protocol v1 client on node A (two CLI
// nodes, one private redis-server; the bound is --presence-ttl + ttl/3, docs/protocol.md). Needs `npm run build`.
// usage: node bench/presence-leave.mjs [ttl, default 3s] [runs, default 5]
import { spawn } from 'node:child_process';
import { WebSocket } from 'ws';
import { freePort, root } from './lib/common.mjs';
const [ttl = '3s', runs = '5'] = process.argv.slice(2);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const CH = JSON.stringify({ namespaces: { room: { presence: true, joinLeave: true } } });
const redisPort = await freePort();
const redis = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
await sleep(300);
const startNode = async () => {
  const [ws, http, grpc] = [await freePort(), await freePort(), await freePort()];
  const p = spawn(process.execPath, [`${root}dist/src/cli.js`, 'serve', '--host', '127.0.0.1', '--ws-port', String(ws), '--http-port', String(http), '--grpc-port', String(grpc), '--redis', `redis://127.0.0.1:${redisPort}`, '--channels', CH, '--presence-ttl', ttl], { stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise((resolve) => p.stdout.on('data', (d) => d.toString().includes('pushwire node listening') && resolve()));
  return { p, ws };
};
const client = async (wsPort) => {
  const ws = new WebSocket(`ws://127.0.0.1:${wsPort}/ws`, ['pushwire.v1.json']);
  const msgs = [];
  const waiters = [];
  ws.on('message', (d) => { for (const l of d.toString().split('\n')) if (l.trim()) msgs.push(JSON.parse(l)); for (const w of waiters.splice(0)) w(); });
  await new Promise((r) => ws.once('open', r));
  let id = 0;
  const next = async (pred) => { for (;;) { const m = msgs.find(pred); if (m) return m; await new Promise((r) => waiters.push(r)); } };
  const cmd = async (body) => { const i = ++id; ws.send(JSON.stringify({ id: i, ...body })); return next((m) => m.id === i); };
  const cid = (await cmd({ connect: {} })).connect.client;
  return { ws, msgs, next, cmd, cid };
};
const a = await startNode();
const out = [];
for (let run = 0; run < Number(runs); run++) {
  const b = await startNode();
  const channel = `room:m${run}`;
  const ca = await client(a.ws);
  const cb = await client(b.ws);
  await ca.cmd({ subscribe: { channel } });
  await cb.cmd({ subscribe: { channel } });
  await ca.next((m) => m.join?.info.client === cb.cid);
  // Kill at a random point of B's refresh cycle.
  await sleep(Math.random() * 2000);
  const t0 = performance.now();
  b.p.kill('SIGKILL');
  await ca.next((m) => m.leave?.info.client === cb.cid);
  const ms = performance.now() - t0;
  out.push(Math.round(ms));
  console.log(`run ${run}: leave after ${Math.round(ms)} ms; leaves for it: ${ca.msgs.filter((m) => m.leave?.info.client === cb.cid).length}`);
  ca.ws.close();
}
console.log(`ttl ${ttl}: kill -> leave ms: ${out.join(', ')}; max ${Math.max(...out)}`);
a.p.kill('SIGTERM');
redis.kill('SIGKILL');
process.exit(0);

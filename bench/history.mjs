#!/usr/bin/env node
// npm run bench -- history [--pushes N] [--clients C] [--fanout-pushes P]
// Channel history and protocol v1 costs, side by side (see BENCHMARKS.md / bench/NOTES-history.md):
//  1. ingress: node CPU (and redis-server CPU) per accepted push, history off vs on (gRPC PushDataBatch of 100);
//  2. fan-out: node CPU per delivery for legacy raw, v1 JSON and v1 protobuf subscribers of one topic;
//  3. recovery: time from a v1 subscribe with since to its reply carrying 1,000 missed publications.
// CPU comes from /proc/<pid>/stat (utime+stime), so other load on the machine inflates it less than wall time;
// the run prints /proc/loadavg beside the figures. Ports: ephemeral (0) for the node, a free one for redis.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { credentials } from '@grpc/grpc-js';
import { WebSocket } from 'ws';
import { PushDataRequest, PushServiceClient } from '../dist/gen/pushwire/v1/push.js';
import { ClientFrame, ServerFrame } from '../dist/gen/pushwire/v1/client.js';
import { freePort, root, sleep } from './lib/common.mjs';

const { values: opt } = parseArgs({
  args: process.argv.slice(3),
  options: { pushes: { type: 'string' }, clients: { type: 'string' }, 'fanout-pushes': { type: 'string' }, rounds: { type: 'string' } },
});
const PUSHES = Number(opt.pushes ?? 20000);
const CLIENTS = Number(opt.clients ?? 1000);
const FANOUT_PUSHES = Number(opt['fanout-pushes'] ?? 200);
const ROUNDS = Number(opt.rounds ?? 3);
const CHANNELS = JSON.stringify({ namespaces: { h: { history: { size: 2000, ttl: '10m' } } } });
const CLK_TCK = 100;

const cpuMs = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
};
const loadavg = () => readFileSync('/proc/loadavg', 'utf8').trim();
const procs = [];
process.on('exit', () => procs.forEach((p) => p.kill('SIGKILL')));

async function startRedis() {
  const port = await freePort();
  const p = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  procs.push(p);
  await sleep(300);
  return { port, pid: p.pid };
}

async function startNode(redisPort) {
  const p = spawn(process.execPath, [`${root}dist/src/cli.js`, 'serve', '--host', '127.0.0.1', '--ws-port', '0', '--http-port', '0', '--grpc-port', '0', '--redis', `redis://127.0.0.1:${redisPort}`, '--channels', CHANNELS, '--log-level', 'info', '--max-queue-bytes', '16MiB'], { stdio: ['ignore', 'pipe', 'inherit'] });
  procs.push(p);
  let buf = '';
  const ports = await new Promise((resolve, reject) => {
    p.stdout.on('data', (d) => {
      buf += d;
      for (const line of buf.split('\n')) {
        if (!line.includes('pushwire node listening')) continue;
        const l = JSON.parse(line);
        resolve({ ws: l.wsPort, grpc: l.grpcPort });
      }
    });
    p.once('exit', (code) => reject(new Error(`node exited ${code}`)));
  });
  return { pid: p.pid, ...ports };
}

const batch = (client, pushes) =>
  new Promise((resolve, reject) => client.pushDataBatch({ pushes: pushes.map((x) => PushDataRequest.fromPartial(x)) }, (err) => (err ? reject(err) : resolve())));

/** CPU per accepted push (node and redis), pushes of 100 bytes in batches of 100, 4 batches in flight. */
async function ingress(node, redis, client, topic) {
  const data = Buffer.alloc(100, 'x');
  const pushes = Array.from({ length: 100 }, () => ({ topic, data }));
  for (let i = 0; i < 20; i++) await batch(client, pushes); // warm-up
  const n0 = cpuMs(node.pid);
  const r0 = cpuMs(redis.pid);
  const t0 = Date.now();
  let sent = 0;
  const worker = async () => {
    while (sent < PUSHES) {
      sent += 100;
      await batch(client, pushes);
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  const wall = (Date.now() - t0) / 1000;
  return { nodeUs: ((cpuMs(node.pid) - n0) * 1000) / sent, redisUs: ((cpuMs(redis.pid) - r0) * 1000) / sent, rate: sent / wall };
}

function openClient(url, kind, topic) {
  const protocols = kind === 'legacy' ? [] : [`pushwire.v1.${kind}`];
  const ws = new WebSocket(url, protocols);
  const c = { ws, got: 0 };
  return new Promise((resolve, reject) => {
    ws.once('error', reject);
    ws.on('message', (data, binary) => {
      if (kind === 'legacy') {
        const text = data.toString();
        if (text.startsWith('{"code":20000')) ws.send(JSON.stringify({ code: 1, topic }));
        else if (text.startsWith('{"code":20001')) resolve(c);
        else c.got++;
      } else if (kind === 'json') {
        const m = JSON.parse(data.toString());
        if (m.connect) ws.send(JSON.stringify({ id: 2, subscribe: { channel: topic } }));
        else if (m.subscribe) resolve(c);
        else if (m.pub) c.got++;
      } else {
        for (const m of ServerFrame.decode(data).messages) {
          if (m.connect) ws.send(ClientFrame.encode({ commands: [{ id: 2, subscribe: { channel: topic, private: false } }] }).finish());
          else if (m.subscribe) resolve(c);
          else if (m.pub) c.got++;
        }
      }
    });
    ws.on('open', () => {
      if (kind === 'json') ws.send(JSON.stringify({ id: 1, connect: {} }));
      else if (kind === 'proto') ws.send(ClientFrame.encode({ commands: [{ id: 1, connect: { token: '', name: '', version: '' } }] }).finish());
    });
  });
}

/** Node CPU per delivery: CLIENTS subscribers of one kind, FANOUT_PUSHES pushes of 100 bytes at ~200/s. */
async function fanout(node, client, kind, topic) {
  const url = `ws://127.0.0.1:${node.ws}/ws`;
  const clients = [];
  for (let i = 0; i < CLIENTS; i += 100) clients.push(...(await Promise.all(Array.from({ length: Math.min(100, CLIENTS - i) }, () => openClient(url, kind, topic)))));
  const data = Buffer.from(JSON.stringify({ n: 1, text: 'x'.repeat(80) }));
  await batch(client, [{ topic, data }]);
  while (clients.some((c) => c.got < 1)) await sleep(10);
  const c0 = cpuMs(node.pid);
  for (let i = 0; i < FANOUT_PUSHES; i++) {
    await batch(client, [{ topic, data }]);
    await sleep(5);
  }
  const want = FANOUT_PUSHES + 1;
  while (clients.some((c) => c.got < want)) await sleep(10);
  const us = ((cpuMs(node.pid) - c0) * 1000) / (FANOUT_PUSHES * CLIENTS);
  for (const c of clients) c.ws.terminate();
  await sleep(700);
  return us;
}

/** ms from sending a subscribe with since to receiving its reply with 1,000 publications (v1 JSON). */
async function recovery(node, client) {
  const topic = `h:recover-${Date.now()}`;
  const data = Buffer.from('{"n":1}');
  for (let i = 0; i < 10; i++) await batch(client, Array.from({ length: 100 }, () => ({ topic, data })));
  const ws = new WebSocket(`ws://127.0.0.1:${node.ws}/ws`, ['pushwire.v1.json']);
  await new Promise((r) => ws.once('open', r));
  const replies = new Map();
  ws.on('message', (d) => {
    const m = JSON.parse(d.toString());
    replies.get(m.id)?.(m);
  });
  const command = (id, body) =>
    new Promise((resolve) => {
      replies.set(id, resolve);
      ws.send(JSON.stringify({ id, ...body }));
    });
  await command(1, { connect: {} });
  const times = [];
  for (let i = 0; i < 7; i++) {
    const t0 = process.hrtime.bigint();
    const r = await command(10 + i, { subscribe: { channel: topic, since: { offset: 0, epoch: '' } } });
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (!r.subscribe.recovered || r.subscribe.publications.length !== 1000) throw new Error(`recovery returned ${r.subscribe.publications?.length}`);
    await command(100 + i, { unsubscribe: { channel: topic } });
  }
  ws.close();
  times.sort((a, b) => a - b);
  return { median: times[3], min: times[0], max: times[6] };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const redis = await startRedis();
const node = await startNode(redis.port);
const client = new PushServiceClient(`127.0.0.1:${node.grpc}`, credentials.createInsecure());
console.log(`history bench: ${PUSHES} pushes per ingress round, ${CLIENTS} clients × ${FANOUT_PUSHES} pushes per fan-out round, ${ROUNDS} rounds; loadavg before: ${loadavg()}`);

const off = [];
const on = [];
for (let r = 0; r < ROUNDS; r++) {
  off.push(await ingress(node, redis, client, `plain-${r}`));
  on.push(await ingress(node, redis, client, `h:bench-${r}`));
}
const fmt = (xs, k) => median(xs.map((x) => x[k])).toFixed(1);
console.log(`ingress, history off: node ${fmt(off, 'nodeUs')} µs CPU/push, redis ${fmt(off, 'redisUs')} µs/push, ${fmt(off, 'rate')} pushes/s`);
console.log(`ingress, history on:  node ${fmt(on, 'nodeUs')} µs CPU/push, redis ${fmt(on, 'redisUs')} µs/push, ${fmt(on, 'rate')} pushes/s`);
const nodeRatio = median(on.map((x) => x.nodeUs)) / median(off.map((x) => x.nodeUs));
const totalRatio = median(on.map((x) => x.nodeUs + x.redisUs)) / median(off.map((x) => x.nodeUs + x.redisUs));
console.log(`  history costs ${((nodeRatio - 1) * 100).toFixed(0)} % more node CPU per push (${((totalRatio - 1) * 100).toFixed(0)} % node+redis); target ≤ 25 %`);

const fan = { legacy: [], json: [], proto: [] };
for (let r = 0; r < ROUNDS; r++) for (const kind of ['legacy', 'json', 'proto']) fan[kind].push(await fanout(node, client, kind, `fan-${kind}-${r}`));
for (const kind of ['legacy', 'json', 'proto']) {
  const us = median(fan[kind]);
  const rel = kind === 'legacy' ? '' : ` (${((us / median(fan.legacy) - 1) * 100).toFixed(0)} % vs legacy raw; target within 10 %)`;
  console.log(`fan-out ${kind.padEnd(6)}: ${us.toFixed(2)} µs node CPU per delivery${rel}`);
}

const rec = await recovery(node, client);
console.log(`recovery of 1,000 missed publications (v1 JSON, Redis): median ${rec.median.toFixed(1)} ms (min ${rec.min.toFixed(1)}, max ${rec.max.toFixed(1)}); target ≤ 20 ms`);
console.log(`loadavg after: ${loadavg()}`);
client.close();
process.exit(0);

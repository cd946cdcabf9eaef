#!/usr/bin/env node
// SDK soak: N client SDK instances (client/dist, over the `ws` package) across two pushwire nodes behind one
// Redis, a steady REST push rate, and each node in turn drained (SIGTERM, 1012) and restarted on the same
// ports, for a number of rounds. At the end every client must hold every offset of each of its channels
// exactly once, in order. Prints a JSON report (stdout) and progress (stderr). Bounded in time: every wait
// has a deadline, and every process it started is killed on exit. Writes bench/results/sdk-soak.md, which
// `npm run bench -- report` carries into BENCHMARKS.md.
//   npm run build && node bench/sdk-soak.mjs [--clients 1000] [--rate 20] [--rounds 2] [--groups 10]
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { Client } from '../client/dist/index.js';
import { cpuUs, freePort, installExitHandlers, killAll, log, root, sleep, track } from './lib/common.mjs';
import { startRedis } from './lib/systems.mjs';

const { values: opt } = parseArgs({
  options: {
    clients: { type: 'string', default: '1000' },
    rate: { type: 'string', default: '20' }, // pushes per second, all channels together
    rounds: { type: 'string', default: '2' }, // each round drains and restarts A, then B
    groups: { type: 'string', default: '10' }, // each client: soak:all plus one of soak:g0..g<groups-1>
  },
});
const N = Number(opt.clients);
const RATE = Number(opt.rate);
const ROUNDS = Number(opt.rounds);
const GROUPS = Number(opt.groups);
const CHANNELS = JSON.stringify({ namespaces: { soak: { history: { size: 10_000, ttl: '30m' } } } });

installExitHandlers();
const started = Date.now();
const load0 = loadavg();

async function until(check, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

/** A pushwire node on fixed ports, so its clients' URL stays valid across restarts. */
class Node {
  constructor(name, redisUrl) {
    this.name = name;
    this.redisUrl = redisUrl;
    this.cpuUs = 0; // CPU of the instances that already exited
  }
  async init() {
    this.ports = { ws: await freePort(), http: await freePort(), grpc: await freePort() };
    this.ws = `ws://127.0.0.1:${this.ports.ws}/ws`;
    this.http = `http://127.0.0.1:${this.ports.http}`;
  }
  async start() {
    const args = [`${root}dist/src/cli.js`, 'serve', '--host', '127.0.0.1', '--ws-port', String(this.ports.ws), '--http-port', String(this.ports.http),
      '--grpc-port', String(this.ports.grpc), '--redis', this.redisUrl, '--node-id', this.name, '--channels', CHANNELS, '--log-level', 'warn'];
    this.proc = track(spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] }));
    createInterface({ input: this.proc.stdout }).on('line', (l) => {
      if (!l.includes('"level":30')) process.stderr.write(`[${this.name}] ${l}\n`);
    });
    this.up = false;
    await until(() => this.proc.exitCode === null, 1000, 'spawn');
    const deadline = Date.now() + 30_000;
    for (;;) {
      const ok = await fetch(`${this.http}/readyz`).then((r) => r.ok, () => false);
      if (ok) break;
      if (this.proc.exitCode !== null) throw new Error(`${this.name} exited with ${this.proc.exitCode}`);
      if (Date.now() > deadline) throw new Error(`${this.name} not ready within 30 s`);
      await sleep(100);
    }
    this.up = true;
  }
  async drain() {
    this.up = false;
    const proc = this.proc;
    this.cpuUs += cpuUs([proc.pid]);
    const exited = new Promise((r) => proc.once('exit', (code, signal) => r(code ?? signal)));
    proc.kill('SIGTERM');
    const code = await Promise.race([exited, sleep(20_000).then(() => 'timeout')]);
    if (code === 'timeout') proc.kill('SIGKILL');
    return code;
  }
  cpuNowUs() {
    return this.cpuUs + (this.proc && this.proc.exitCode === null ? cpuUs([this.proc.pid]) : 0);
  }
}

const redis = await startRedis();
const nodes = [new Node('soak-a', redis.url), new Node('soak-b', redis.url)];
for (const n of nodes) await n.init();
await Promise.all(nodes.map((n) => n.start()));
log(`nodes up: ${nodes.map((n) => `${n.name} ${n.ws}`).join(', ')}`);

// ---- clients ---------------------------------------------------------------------------------------------------
const clients = [];
const stats = { subscribedEvents: 0, recoveredTrue: 0, recoveredFalse: 0, reconnects: 0, connectingCodes: {}, errors: 0, errorSamples: [] };
for (let i = 0; i < N; i++) {
  const node = nodes[i % 2];
  const c = new Client(node.ws, { websocket: WebSocket, offlineHint: false, minReconnectDelay: 200, maxReconnectDelay: 2000, timeout: 10_000 });
  const rec = { client: c, got: new Map() };
  c.on('connecting', (e) => {
    if (e.code === 0) return;
    stats.reconnects++;
    stats.connectingCodes[e.code] = (stats.connectingCodes[e.code] ?? 0) + 1;
  });
  c.on('error', (e) => {
    stats.errors++;
    if (stats.errorSamples.length < 5) stats.errorSamples.push(e.error.message);
  });
  for (const channel of ['soak:all', `soak:g${i % GROUPS}`]) {
    const offsets = [];
    rec.got.set(channel, offsets);
    const sub = c.subscribe(channel);
    sub.on('publication', (p) => offsets.push(p.offset));
    sub.on('subscribed', (e) => {
      stats.subscribedEvents++;
      if (e.wasRecovering) e.recovered ? stats.recoveredTrue++ : stats.recoveredFalse++;
    });
    sub.on('error', (e) => {
      stats.errors++;
      if (stats.errorSamples.length < 5) stats.errorSamples.push(e.error.message);
    });
  }
  c.connect();
  clients.push(rec);
  if (i % 100 === 99) await sleep(20); // do not open a thousand sockets in one turn
}
const allSubscribed = () => clients.every((r) => r.client.state === 'connected' && r.client.subscriptions().every((s) => s.state === 'subscribed'));
await until(allSubscribed, 120_000, 'every client subscribed');
log(`${N} clients connected and subscribed`);

// ---- steady pusher ---------------------------------------------------------------------------------------------
const channels = ['soak:all', ...Array.from({ length: GROUPS }, (_, g) => `soak:g${g}`)];
const push = { accepted: 0, failed: 0, attempts: 0, retriedOnOtherNode: 0 };
let pushing = true;
let seq = 0;
const inFlight = new Set();
let pushStart = Date.now();
let pushEnd = 0;
async function pushOne(n) {
  // Every other push goes to soak:all (every client), the rest round-robin over the groups.
  const channel = n % 2 === 0 ? 'soak:all' : channels[1 + ((n >> 1) % GROUPS)];
  const body = JSON.stringify({ topic: channel, data: Buffer.from(JSON.stringify({ n })).toString('base64') });
  const order = [nodes[n % 2], nodes[(n + 1) % 2]].filter((x) => x.up);
  for (const [k, node] of order.entries()) {
    push.attempts++;
    const res = await fetch(`${node.http}/v1/pushData`, { method: 'POST', body, headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(5000) }).catch(() => undefined);
    if (res?.ok) {
      push.accepted++;
      if (k > 0) push.retriedOnOtherNode++;
      return;
    }
  }
  push.failed++;
}
const pusher = (async () => {
  // A steady rate whatever each push's latency: up to 32 pushes in flight (offsets are assigned by the
  // server, so concurrent pushes cannot break the check).
  const interval = 1000 / RATE;
  pushStart = Date.now();
  let next = pushStart;
  while (pushing) {
    if (inFlight.size < 32) {
      const p = pushOne(seq++).finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    next += interval;
    const wait = next - Date.now();
    if (wait > 0) await sleep(wait);
    else next = Date.now();
  }
  await Promise.all(inFlight);
  pushEnd = Date.now();
})();

// ---- rolling drains --------------------------------------------------------------------------------------------
const rolls = [];
await sleep(5000);
for (let round = 1; round <= ROUNDS; round++) {
  for (const node of nodes) {
    const t0 = Date.now();
    const code = await node.drain();
    await sleep(1000);
    await node.start();
    await until(allSubscribed, 120_000, `every client back after ${node.name} restart`);
    rolls.push({ round, node: node.name, exitCode: code, allBackMs: Date.now() - t0 });
    log(`round ${round}: ${node.name} drained (exit ${code}) and restarted; all clients back in ${Date.now() - t0} ms`);
    await sleep(3000);
  }
}
pushing = false;
await pusher;

// ---- verify ----------------------------------------------------------------------------------------------------
// The stream tops, read through one more SDK client (history: newest first, one publication).
const checker = new Client(nodes[0].ws, { websocket: WebSocket, offlineHint: false });
checker.connect();
await checker.ready(10_000);
const top = {};
for (const ch of channels) top[ch] = (await checker.history(ch, { limit: 1, reverse: true })).offset;
checker.close();
const totalTop = Object.values(top).reduce((a, b) => a + b, 0);
const complete = () => clients.every((r) => [...r.got].every(([ch, offs]) => offs.length >= top[ch]));
await until(complete, 60_000, 'every client caught up').catch((err) => log(err.message));

let exact = 0;
let duplicates = 0;
let missing = 0;
let outOfOrder = 0;
let deliveries = 0;
for (const r of clients) {
  let clientExact = true;
  for (const [ch, offs] of r.got) {
    deliveries += offs.length;
    const seen = new Set();
    let last = 0;
    for (const o of offs) {
      if (seen.has(o)) duplicates++;
      if (o < last) outOfOrder++;
      seen.add(o);
      last = o;
    }
    for (let o = 1; o <= top[ch]; o++) if (!seen.has(o)) missing++;
    if (offs.length !== top[ch] || seen.size !== top[ch] || offs.some((o, k) => o !== k + 1)) clientExact = false;
  }
  if (clientExact) exact++;
}
const nodeCpuUs = nodes.reduce((s, n) => s + n.cpuNowUs(), 0);
const soakCpu = process.cpuUsage();
const report = {
  clients: N,
  nodes: 2,
  rounds: ROUNDS,
  drains: rolls.length,
  ratePerSecond: RATE,
  achievedPushesPerSecond: +(push.accepted / ((pushEnd - pushStart) / 1000)).toFixed(1),
  pushesAccepted: push.accepted,
  pushesFailed: push.failed,
  pushesRetriedOnOtherNode: push.retriedOnOtherNode,
  streamOffsets: top,
  offsetsPerClientAvg: +((top['soak:all'] ?? 0) + (totalTop - (top['soak:all'] ?? 0)) / GROUPS).toFixed(1),
  deliveries,
  clientsWithEveryOffsetExactlyOnceInOrder: exact,
  duplicates,
  missing,
  outOfOrder,
  reconnects: stats.reconnects,
  connectingCodes: stats.connectingCodes,
  resubscribes: { recoveredTrue: stats.recoveredTrue, recoveredFalse: stats.recoveredFalse },
  sdkErrors: stats.errors,
  sdkErrorSamples: stats.errorSamples,
  rolls,
  durationS: Math.round((Date.now() - started) / 1000),
  cpu: { nodesS: +(nodeCpuUs / 1e6).toFixed(1), soakProcessS: +((soakCpu.user + soakCpu.system) / 1e6).toFixed(1), nodeCpuUsPerDelivery: +(nodeCpuUs / Math.max(1, deliveries)).toFixed(1) },
  loadavg: { start: load0.map((x) => +x.toFixed(2)), end: loadavg().map((x) => +x.toFixed(2)) },
};
console.log(JSON.stringify(report, null, 2));
const ok = exact === N && duplicates === 0 && missing === 0 && outOfOrder === 0;
const md = [
  '## Client SDK soak',
  '',
  `Command: \`node bench/sdk-soak.mjs --clients ${N} --rate ${RATE} --rounds ${ROUNDS} --groups ${GROUPS}\` (${new Date(started).toISOString()}, ${report.durationS} s; loadavg ${report.loadavg.start.join(', ')} at start, ${report.loadavg.end.join(', ')} at the end: other work shared the 2 cores).`,
  '',
  `${N} SDK clients (JSON, over \`ws\`, in one process) on two nodes behind one Redis, half on each; each subscribes to \`soak:all\` and one of ${GROUPS} group channels (history 10,000, recovery on). A pusher sends ${RATE} REST pushes/s to whichever node is up; each node in turn is drained (SIGTERM: 1012 with disconnect advice), restarted on the same ports after 1 s, and the run waits until every client is connected and subscribed again, ${ROUNDS} round(s).`,
  '',
  '| result | value |',
  '|---|---:|',
  `| **clients that hold every offset of each of their channels exactly once, in order** | **${exact} / ${N}** ${ok ? '(pass)' : '(FAIL)'} |`,
  `| duplicates / missing / out of order | ${duplicates} / ${missing} / ${outOfOrder} |`,
  `| pushes accepted (failed) | ${push.accepted} (${push.failed}), ${report.achievedPushesPerSecond}/s over ${((pushEnd - pushStart) / 1000).toFixed(0)} s |`,
  `| deliveries checked | ${deliveries.toLocaleString('en-US')} (${report.offsetsPerClientAvg} offsets per client on average) |`,
  `| drains | ${rolls.length}: ${rolls.map((r) => `${r.node} exit ${r.exitCode}, all clients back ${(r.allBackMs / 1000).toFixed(1)} s`).join('; ')} |`,
  `| reconnects (by code) | ${stats.reconnects} (${Object.entries(stats.connectingCodes).map(([c, n]) => `${c}: ${n}`).join(', ')}) |`,
  `| resubscribes recovered: true / false | ${stats.recoveredTrue} / ${stats.recoveredFalse} |`,
  `| SDK error events | ${stats.errors} |`,
  `| CPU: nodes / soak process (clients + pusher) | ${report.cpu.nodesS} s / ${report.cpu.soakProcessS} s (${report.cpu.nodeCpuUsPerDelivery} node µs per delivery, node restarts included) |`,
  '',
  '"All clients back" includes the node\'s own restart (a few seconds on this loaded machine) and the clients\' back-off (200 ms base, 2 s cap, full jitter).',
].join('\n');
writeFileSync(new URL('./results/sdk-soak.md', import.meta.url), `${md}\n`);
for (const r of clients) r.client.close();
killAll();
process.exit(ok ? 0 : 1);

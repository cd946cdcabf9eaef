// Chaos scenario (issue 9): a steady push stream into a two-node cluster while Redis and a node are hurt, counting
// every push's outcome and every delivery. Real parts only: redis-server, two nodes through the CLI, WebSocket
// clients over loopback, gRPC and REST pushes.
//
//   npm run chaos [-- --rate 1000 --observers 4 --max-in-flight N --port-base 22000 --out bench/results/chaos.json]
//
// Faults, in order, each followed by a settle period under the same stream: Redis SIGSTOP (8 s) then SIGCONT;
// CLIENT KILL of every client connection; Redis SIGKILL (3 s down) then restart on the same port; node A SIGKILL
// then restart (2 s later). Pushes alternate gRPC A, gRPC B, REST A, REST B, each carrying its sequence number.
//
// Outcomes: ok (200 / OK), refused (the node answered UNAVAILABLE / 503: nothing was published), unknown (the node
// answered DEADLINE_EXCEEDED / 504: sent, not confirmed), transport (the node could not be reached or the
// connection dropped mid-call: the client cannot tell), other. Deliveries are counted at the observers on node B,
// which is never killed: "ok, never delivered" is an ok push that some B observer never received (target 0; a
// push lost while a node's Redis subscriber was being re-established shows up here and in that node's
// pushwire_bus_gaps_total), "refused, delivered" is a refused push that any observer received (must be 0).
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { loadavg } from 'node:os';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { credentials } from '@grpc/grpc-js';
import { Redis } from 'ioredis';
import { WebSocket } from 'ws';
import { root, sleep } from './lib/common.mjs';

const { values: args } = parseArgs({
  options: {
    rate: { type: 'string', default: '1000' },
    observers: { type: 'string', default: '4' },
    'port-base': { type: 'string', default: '22000' },
    out: { type: 'string', default: 'bench/results/chaos.json' },
    // Passed to both nodes as --bus-max-in-flight (default: the node's default, 10000).
    'max-in-flight': { type: 'string' },
  },
});
const RATE = Number(args.rate);
const OBSERVERS = Number(args.observers);
const BASE = Number(args['port-base']);
const TOPIC = 'chaos';
const { PushServiceClient, PushDataRequest } = await import(new URL('../dist/gen/pushwire/v1/push.js', import.meta.url));

const children = new Set();
const cleanup = () => {
  for (const c of children) {
    try {
      c.kill('SIGCONT');
      c.kill('SIGKILL');
    } catch {}
  }
};
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));

// ---- processes -------------------------------------------------------------------------------------------------
const redisPort = BASE + 100;
let redisProc;
async function startRedis() {
  redisProc = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  children.add(redisProc);
  for (let i = 0; i < 200; i++) {
    const c = new Redis(redisPort, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    c.on('error', () => {});
    try {
      await c.connect();
      await c.ping();
      return;
    } catch {
      await sleep(25);
    } finally {
      c.disconnect();
    }
  }
  throw new Error('redis-server did not start');
}

const nodes = {
  A: { id: 'chaos-a', ws: BASE + 1, http: BASE + 2, grpc: BASE + 3, proc: undefined, warns: new Map() },
  B: { id: 'chaos-b', ws: BASE + 11, http: BASE + 12, grpc: BASE + 13, proc: undefined, warns: new Map() },
};
async function startNode(n) {
  const proc = spawn(
    process.execPath,
    [`${root}/dist/src/cli.js`, 'serve', '--host', '127.0.0.1', '--node-id', n.id, '--ws-port', String(n.ws), '--http-port', String(n.http), '--grpc-port', String(n.grpc),
      '--redis', `redis://127.0.0.1:${redisPort}`, '--ping-timeout', '600s', '--log-level', 'info',
      ...(args['max-in-flight'] ? ['--bus-max-in-flight', args['max-in-flight']] : [])],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  children.add(proc);
  n.proc = proc;
  let up;
  const listening = new Promise((r) => (up = r));
  createInterface({ input: proc.stdout }).on('line', (line) => {
    try {
      const l = JSON.parse(line);
      if (l.msg === 'pushwire node listening') up();
      if (l.level >= 40) n.warns.set(l.msg, (n.warns.get(l.msg) ?? 0) + 1);
    } catch {}
  });
  await listening;
}

function rssMiB(proc) {
  try {
    const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${proc.pid}/status`, 'utf8'))[1]);
    return kb / 1024;
  } catch {
    return NaN;
  }
}

async function metric(n, name) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port: n.http, path: '/metrics', timeout: 1000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => {
        let sum = 0;
        for (const line of body.split('\n')) if (line.startsWith(name) && (line[name.length] === ' ' || line[name.length] === '{')) sum += Number(line.split(' ').at(-1));
        resolve(sum);
      });
    });
    req.on('error', () => resolve(NaN));
    req.on('timeout', () => req.destroy());
  });
}

// ---- observers -------------------------------------------------------------------------------------------------
const MAX_PUSHES = RATE * 80;
class Observer {
  constructor(node) {
    this.node = node;
    this.got = new Uint8Array(MAX_PUSHES);
    this.connect();
  }
  connect() {
    const ws = new WebSocket(`ws://127.0.0.1:${this.node.ws}/ws`);
    this.ws = ws;
    ws.on('open', () => ws.send(JSON.stringify({ code: 1, topic: TOPIC, id: 1 })));
    ws.on('message', (data) => {
      const s = data.toString();
      if (s.startsWith('c:')) this.got[Number(s.slice(2))] = 1;
      else if (s.includes('"code":20001')) this.ready = true;
    });
    ws.on('error', () => {});
    ws.on('close', () => {
      this.ready = false;
      if (!stopping) setTimeout(() => this.connect(), 200);
    });
  }
}

// ---- pushes ----------------------------------------------------------------------------------------------------
const grpcClients = { A: new PushServiceClient(`127.0.0.1:${nodes.A.grpc}`, credentials.createInsecure()), B: new PushServiceClient(`127.0.0.1:${nodes.B.grpc}`, credentials.createInsecure()) };
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const outcome = new Uint8Array(MAX_PUSHES); // 0 pending, 1 ok, 2 refused, 3 unknown, 4 transport, 5 other
const NAMES = ['pending', 'ok', 'refused', 'unknown', 'transport', 'other'];
const sentAt = new Float64Array(MAX_PUSHES);
const answerMs = new Float64Array(MAX_PUSHES);
const phaseOf = new Uint8Array(MAX_PUSHES);
let seq = 0;
let phase = 0;
let stopping = false;

function send() {
  const k = seq++;
  if (k >= MAX_PUSHES) return;
  const t = performance.now();
  sentAt[k] = t;
  phaseOf[k] = phase;
  const data = `c:${k}`;
  const done = (o) => {
    outcome[k] = o;
    answerMs[k] = performance.now() - t;
  };
  const target = k % 2 === 0 ? nodes.A : nodes.B;
  if (k % 4 < 2) {
    grpcClients[target === nodes.A ? 'A' : 'B'].pushData(PushDataRequest.fromPartial({ topic: TOPIC, data: Buffer.from(data) }), { deadline: Date.now() + 30_000 }, (err) => {
      if (!err) return done(1);
      const d = String(err.details ?? '');
      if (err.code === 14 && d.startsWith('cluster bus')) return done(2);
      if (err.code === 4 && d.startsWith('push outcome unknown')) return done(3);
      if (err.code === 14 || err.code === 4 || err.code === 1 || err.code === 13) return done(4); // client-side: unreachable, dropped, deadline
      done(5);
    });
  } else {
    const body = JSON.stringify({ topic: TOPIC, data: Buffer.from(data).toString('base64') });
    const req = http.request(
      { agent, host: '127.0.0.1', port: target.http, path: '/v1/pushData', method: 'POST', timeout: 30_000, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        res.resume();
        res.on('end', () => done(res.statusCode === 200 ? 1 : res.statusCode === 503 ? 2 : res.statusCode === 504 ? 3 : 5));
      },
    );
    req.on('error', () => done(4));
    req.on('timeout', () => req.destroy());
    req.end(body);
  }
}

// ---- run -------------------------------------------------------------------------------------------------------
const load0 = loadavg().map((v) => v.toFixed(2)).join(', ');
const startedAt = new Date().toISOString();
await startRedis();
await Promise.all([startNode(nodes.A), startNode(nodes.B)]);
const observersA = Array.from({ length: OBSERVERS }, () => new Observer(nodes.A));
const observersB = Array.from({ length: OBSERVERS }, () => new Observer(nodes.B));
while (![...observersA, ...observersB].every((o) => o.ready)) await sleep(20);

const phases = [{ name: 'baseline', faultEnd: 0, start: performance.now() }];
const samples = []; // { t, phase, rssA, rssB, inflightA, inflightB }
const sampler = setInterval(async () => {
  const s = { phase, rssA: rssMiB(nodes.A.proc), rssB: rssMiB(nodes.B.proc) };
  [s.inflightA, s.inflightB] = await Promise.all([metric(nodes.A, 'pushwire_bus_in_flight'), metric(nodes.B, 'pushwire_bus_in_flight')]);
  samples.push(s);
}, 250);
const perTick = RATE / 100;
let carry = 0;
const pusher = setInterval(() => {
  carry += perTick;
  while (carry >= 1) {
    send();
    carry--;
  }
}, 10);

const begin = (name) => {
  phase = phases.length;
  phases.push({ name, faultEnd: 0, start: performance.now() });
  console.error(`[chaos] ${name}`);
};
const faultEnded = () => (phases[phase].faultEnd = performance.now());
const redisCmd = () => {
  const c = new Redis(redisPort, '127.0.0.1', { maxRetriesPerRequest: 0 });
  c.on('error', () => {});
  return c;
};

await sleep(3000);

begin('Redis SIGSTOP 8 s, SIGCONT');
redisProc.kill('SIGSTOP');
await sleep(8000);
redisProc.kill('SIGCONT');
faultEnded();
await sleep(6000);

begin('CLIENT KILL (every connection)');
{
  const c = redisCmd();
  await c.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
  await c.call('CLIENT', 'KILL', 'TYPE', 'normal'); // SKIPME yes: this connection survives
  c.disconnect();
}
faultEnded();
await sleep(5000);

begin('Redis SIGKILL, restart after 3 s');
redisProc.kill('SIGKILL');
await sleep(3000);
await startRedis();
faultEnded();
await sleep(6000);

begin('node A SIGKILL, restart after 2 s');
nodes.A.proc.kill('SIGKILL');
await sleep(2000);
await startNode(nodes.A);
faultEnded();
await sleep(6000);

clearInterval(pusher);
phases.push({ name: 'end', start: performance.now() });
stopping = true;
const total = seq;
// Stragglers: answers within the 30 s client deadline, deliveries shortly after.
for (let i = 0; i < 400 && outcome.subarray(0, total).includes(0); i++) await sleep(100);
await sleep(3000);
clearInterval(sampler);
const gaps = { A: await metric(nodes.A, 'pushwire_bus_gaps_total'), B: await metric(nodes.B, 'pushwire_bus_gaps_total') };

// ---- report ----------------------------------------------------------------------------------------------------
const rows = phases.slice(0, -1).map((p, i) => {
  const r = { phase: p.name, sent: 0, ok: 0, refused: 0, unknown: 0, transport: 0, other: 0, pending: 0, delivered: 0, okLost: 0, refusedDelivered: 0, unknownDelivered: 0, maxAnswerMs: 0, resumeMs: null };
  for (let k = 0; k < total; k++) {
    if (phaseOf[k] !== i) continue;
    r.sent++;
    r[NAMES[outcome[k]]]++;
    const allB = observersB.every((o) => o.got[k]);
    const anyObs = allB || observersB.some((o) => o.got[k]) || observersA.some((o) => o.got[k]);
    if (allB) r.delivered++;
    if (outcome[k] === 1 && !allB) r.okLost++;
    if (outcome[k] === 2 && anyObs) r.refusedDelivered++;
    if (outcome[k] === 3 && anyObs) r.unknownDelivered++;
    if (outcome[k] !== 4) r.maxAnswerMs = Math.max(r.maxAnswerMs, answerMs[k]);
    // Resume: from the fault's end to the first push sent after it that each node accepted; the later of the two.
  }
  if (p.faultEnd > 0) {
    const first = {};
    for (let k = 0; k < total; k++) {
      if (phaseOf[k] !== i || sentAt[k] < p.faultEnd || outcome[k] !== 1) continue;
      const n = k % 2 === 0 ? 'A' : 'B';
      first[n] ??= sentAt[k] - p.faultEnd;
    }
    r.resumeMs = first.A !== undefined && first.B !== undefined ? Math.round(Math.max(first.A, first.B)) : 'never';
  }
  const s = samples.filter((x) => x.phase === i);
  r.peakInFlight = Math.max(0, ...s.flatMap((x) => [x.inflightA, x.inflightB]).filter(Number.isFinite));
  r.peakRssA = Math.round(Math.max(0, ...s.map((x) => x.rssA).filter(Number.isFinite)));
  r.peakRssB = Math.round(Math.max(0, ...s.map((x) => x.rssB).filter(Number.isFinite)));
  r.maxAnswerMs = Math.round(r.maxAnswerMs);
  const seconds = (phases[i + 1].start - p.start) / 1000;
  r.seconds = Number(seconds.toFixed(1));
  r.ratePerSecond = Math.round(r.sent / seconds);
  // When the unknown outcomes of this phase were sent, relative to its start (a push sent at the end of one phase can
  // reach a loaded node after the next phase's fault began).
  const unknownAt = [];
  for (let k = 0; k < total; k++) if (phaseOf[k] === i && outcome[k] === 3) unknownAt.push(Math.round(sentAt[k] - p.start));
  r.unknownSentAtMs = unknownAt.length ? [Math.min(...unknownAt), Math.max(...unknownAt)] : null;
  return r;
});
const load1 = loadavg().map((v) => v.toFixed(2)).join(', ');
const result = {
  startedAt,
  command: `npm run chaos -- --rate ${RATE} --observers ${OBSERVERS}${args['max-in-flight'] ? ` --max-in-flight ${args['max-in-flight']}` : ''}`,
  loadavgBefore: load0,
  loadavgAfter: load1,
  rate: RATE,
  observersPerNode: OBSERVERS,
  gaps,
  warnings: { A: Object.fromEntries(nodes.A.warns), B: Object.fromEntries(nodes.B.warns) },
  rows,
};
mkdirSync(new URL('../bench/results', import.meta.url), { recursive: true });
writeFileSync(new URL(`../${args.out}`, import.meta.url), JSON.stringify(result, null, 2));

const head = '| phase | s | pushes/s | sent | ok | refused (UNAVAILABLE) | unknown (DEADLINE_EXCEEDED) | transport error | delivered to all B observers | **ok, never delivered** | **refused, delivered** | unknown, delivered | max answer ms | resume ms | peak in flight | peak RSS A / B MiB |';
console.log(head);
console.log(`|${head.split('|').slice(1, -1).map(() => '---').join('|')}|`);
for (const r of rows) {
  console.log(`| ${r.phase} | ${r.seconds} | ${r.ratePerSecond} | ${r.sent} | ${r.ok} | ${r.refused} | ${r.unknown} | ${r.transport + r.other + r.pending} | ${r.delivered} | ${r.okLost} | ${r.refusedDelivered} | ${r.unknownDelivered} | ${r.maxAnswerMs} | ${r.resumeMs ?? '—'} | ${r.peakInFlight} | ${r.peakRssA} / ${r.peakRssB} |`);
}
console.log(`\nloadavg before ${load0}, after ${load1}; bus gaps A=${gaps.A} B=${gaps.B}; warnings ${JSON.stringify(result.warnings)}`);
for (const o of [...observersA, ...observersB]) o.ws.close();
grpcClients.A.close();
grpcClients.B.close();
agent.destroy();
cleanup();
process.exit(0);
